"""Call a tool on a running ``vltools serve --transport http`` (the warm CLI).

A short-lived ``vltools call`` pays for importing torch and loading the model on every call;
sending the call to a server that keeps them loaded avoids both. The wire protocol is MCP's
streamable HTTP (JSON-RPC over POST, answers as JSON or server-sent events): initialize, the
``initialized`` notification, ``tools/call`` with a progress token, then the session is closed.
It is spoken here with the standard library only, because importing the MCP SDK's client
(``mcp`` pulls in its server, pydantic models for the whole protocol and httpx) costs more than
the warm call itself; the tests run it against the real server. Tool errors come back as the
same `ToolError` (code, message, hint) a local call raises.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from vltools.core.errors import BackendUnavailable, InvalidInput, ToolError

PROTOCOL_VERSION = "2025-06-18"
_RENDERED = re.compile(r"^(?P<code>[a-z_]+): (?P<message>.*?)(?: \(hint: (?P<hint>.*)\))?$", re.S)
Progress = Callable[[float, float | None, str], None]


def server_url(url: str) -> str:
    """``http://HOST:PORT`` or a full ``.../mcp`` URL -> the MCP endpoint URL."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/]", url):
        raise InvalidInput(f"--server {url!r} is not an http(s) URL", hint="e.g. --server http://127.0.0.1:8765")
    return url if url.endswith("/mcp") else url + "/mcp"


def error_from_text(text: str) -> ToolError:
    """The `ToolError` a server rendered as ``code: message (hint: ...)``."""
    m = _RENDERED.match(text.strip())
    if not m:
        return ToolError("remote", text.strip() or "the server reported an error without a message")
    return ToolError(m["code"], m["message"], hint=m["hint"])


class _Session:
    """One MCP streamable-HTTP session over one keep-alive connection."""

    def __init__(self, endpoint: str, token: str | None, timeout: float | None) -> None:
        u = urlsplit(endpoint)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        self.endpoint = endpoint
        self.path = u.path or "/mcp"
        self.conn = cls(u.hostname or "127.0.0.1", u.port, timeout=timeout)
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.next_id = 0

    def _post(self, message: dict[str, Any]) -> http.client.HTTPResponse:
        self.conn.request("POST", self.path, body=json.dumps(message).encode(), headers=self.headers)
        resp = self.conn.getresponse()
        if resp.status == 401:
            raise InvalidInput(f"the server at {self.endpoint} wants a bearer token (or another one)",
                               hint="set VLTOOLS_HTTP_TOKEN to the server's token")
        if resp.status >= 400:
            body = resp.read().decode("utf-8", "replace")[:300]
            raise BackendUnavailable(f"the server at {self.endpoint} answered HTTP {resp.status}: {body}",
                                     hint="is it a `vltools serve --transport http` server?")
        return resp

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        resp = self._post({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})
        resp.read()

    def request(self, method: str, params: dict[str, Any], progress: Progress | None = None) -> Any:
        self.next_id += 1
        rid = self.next_id
        resp = self._post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        sid = resp.getheader("mcp-session-id")
        if sid:
            self.headers["mcp-session-id"] = sid
        for msg in _messages(resp):
            if msg.get("method") == "notifications/progress" and progress is not None:
                p = msg.get("params") or {}
                progress(float(p.get("progress", 0)), p.get("total"), p.get("message") or "")
            elif msg.get("id") == rid:
                resp.read()  # drain, so the connection can be reused
                if "error" in msg:
                    raise _rpc_error(msg["error"])
                return msg.get("result")
        raise BackendUnavailable(f"the server at {self.endpoint} closed the stream without answering {method}")

    def close(self) -> None:
        try:
            if "mcp-session-id" in self.headers:
                self.conn.request("DELETE", self.path, headers=self.headers)
                self.conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            self.conn.close()


def _messages(resp: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """JSON-RPC messages of a response: one JSON body, or the ``data:`` of each server-sent event."""
    ctype = (resp.getheader("content-type") or "").split(";")[0].strip()
    if ctype == "application/json":
        data = json.loads(resp.read() or b"null")
        yield from (data if isinstance(data, list) else [data] if data else [])
        return
    data: list[str] = []
    while True:
        raw = resp.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not line and data:  # end of one event
            yield json.loads("\n".join(data))
            data = []
    if data:
        yield json.loads("\n".join(data))


def _rpc_error(err: dict[str, Any]) -> ToolError:
    message = str(err.get("message", "error"))
    if err.get("code") == -32602 or "unknown tool" in message.lower():
        return InvalidInput(message, hint="`vltools list` shows the tool names")
    return BackendUnavailable(f"the server refused the call: {message}")


def call_remote(
    url: str,
    name: str,
    arguments: dict[str, Any],
    *,
    token: str | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> Any:
    """Run ``name`` on the MCP server at ``url`` and return its JSON result (a dict for most tools).

    Raises:
        ToolError: the tool's own error, as the server reported it.
        InvalidInput: a bad URL, or the server wants a (different) bearer token.
        BackendUnavailable: the server cannot be reached or does not speak MCP.
    """
    endpoint = server_url(url)
    session = _Session(endpoint, token, timeout)
    try:
        init = session.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "vltools-cli", "version": "1"},
        })
        session.headers["mcp-protocol-version"] = (init or {}).get("protocolVersion", PROTOCOL_VERSION)
        session.notify("notifications/initialized")
        result = session.request("tools/call", {
            "name": name.replace(".", "_"), "arguments": arguments, "_meta": {"progressToken": 1},
        }, progress)
    except TimeoutError:
        from vltools.core.errors import Timeout

        raise Timeout(f"{name} on {endpoint} did not answer within {timeout:g} s",
                      hint="raise --timeout, or check the server") from None
    except (OSError, http.client.HTTPException) as err:
        raise BackendUnavailable(
            f"cannot reach the vltools server at {endpoint}: {type(err).__name__}: {err}",
            hint="start it with `vltools serve --transport http`, or drop --server / VLTOOLS_SERVER",
        ) from None
    finally:
        session.close()
    result = result or {}
    text = "".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
    if result.get("isError"):
        raise error_from_text(text)
    if result.get("structuredContent") is not None:
        return result["structuredContent"]
    return json.loads(text) if text else None
