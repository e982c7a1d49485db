"""Call a tool on a running ``vltools serve --transport http`` (the warm CLI).

A short-lived ``vltools call`` pays for importing torch and loading the model on every call;
sending the call to a server that keeps them loaded answers in milliseconds. The transport is
the MCP SDK's streamable-HTTP client, the same one any other MCP client uses, so the server
needs nothing special. Tool errors come back as the same `ToolError` (code, message, hint) a
local call raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from vltools.core.errors import BackendUnavailable, InvalidInput, ToolError

_RENDERED = re.compile(r"^(?P<code>[a-z_]+): (?P<message>.*?)(?: \(hint: (?P<hint>.*)\))?$", re.S)


def server_url(url: str) -> str:
    """``http://HOST:PORT`` or a full ``.../mcp`` URL -> the MCP endpoint URL."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise InvalidInput(f"--server {url!r} is not an http(s) URL", hint="e.g. --server http://127.0.0.1:8765")
    return url if url.endswith("/mcp") else url + "/mcp"


def error_from_text(text: str) -> ToolError:
    """The `ToolError` a server rendered as ``code: message (hint: ...)``."""
    m = _RENDERED.match(text.strip())
    if not m:
        return ToolError("remote", text.strip() or "the server reported an error without a message")
    return ToolError(m["code"], m["message"], hint=m["hint"])


async def _call(
    url: str,
    name: str,
    arguments: dict[str, Any],
    *,
    token: str | None,
    timeout: float | None,
    progress: Callable[[float, float | None, str], None] | None,
) -> Any:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    headers = {"Authorization": f"Bearer {token}"} if token else None

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if progress is not None:
            progress(value, total, message or "")

    async with streamablehttp_client(url, headers=headers) as (read, write, _), ClientSession(read, write) as s:
        await s.initialize()
        result = await s.call_tool(
            name.replace(".", "_"),
            arguments,
            read_timeout_seconds=timedelta(seconds=timeout) if timeout else None,
            progress_callback=on_progress if progress is not None else None,
        )
    text = "".join(getattr(c, "text", "") for c in result.content)
    if result.isError:
        raise error_from_text(text)
    if result.structuredContent is not None:
        return result.structuredContent
    return json.loads(text) if text else None


def call_remote(
    url: str,
    name: str,
    arguments: dict[str, Any],
    *,
    token: str | None = None,
    timeout: float | None = None,
    progress: Callable[[float, float | None, str], None] | None = None,
) -> Any:
    """Run ``name`` on the MCP server at ``url`` and return its JSON result (a dict for most tools).

    Raises:
        ToolError: the tool's own error, as the server reported it.
        BackendUnavailable: the server cannot be reached or refused the connection.
    """
    import anyio
    import httpx

    endpoint = server_url(url)
    try:
        return anyio.run(lambda: _call(endpoint, name, arguments, token=token, timeout=timeout, progress=progress))
    except ToolError:
        raise
    except BaseException as err:  # the SDK wraps transport failures in exception groups
        leaf = _first_leaf(err)
        if isinstance(leaf, ToolError):
            raise leaf from None
        if isinstance(leaf, KeyboardInterrupt):
            raise leaf from None
        if isinstance(leaf, httpx.HTTPStatusError) and leaf.response.status_code == 401:
            raise InvalidInput(f"the server at {endpoint} wants a bearer token",
                               hint="set VLTOOLS_HTTP_TOKEN to the server's token") from None
        if isinstance(leaf, httpx.HTTPError | OSError):
            raise BackendUnavailable(
                f"cannot reach the vltools server at {endpoint}: {type(leaf).__name__}: {leaf}",
                hint="start it with `vltools serve --transport http`, or drop --server / VLTOOLS_SERVER",
            ) from None
        raise


def _first_leaf(err: BaseException) -> BaseException:
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err
