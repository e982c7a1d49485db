"""The MCP face: every registry entry as an MCP tool, over stdio or streamable HTTP.

- Tool names use ``_`` for ``.`` (``retrieve.bm25`` -> ``retrieve_bm25``): MCP clients accept
  only ``[A-Za-z0-9_-]``. ``inputSchema`` is the tool's input model, ``outputSchema`` its output
  model; results carry ``structuredContent`` plus a JSON text copy.
- ``annotations`` come from the catalogue: ``readOnlyHint`` (effects read_only), ``destructiveHint``
  (effects destructive; ``writes`` only adds), ``idempotentHint`` (idempotent) and ``openWorldHint``
  (true only when the tool may reach a network endpoint: it can use an LLM, whose spec may be an
  ``openai:`` URL, or runs caller-chosen tools; see `may_reach_network`).
- A `ToolError` (including invalid input, which names the field) is an ``isError`` result with
  its one-line message as text and the error's ``{code, message, hint, details}`` in the result's
  ``_meta["vltools/error"]`` (not ``structuredContent``, which clients check against the tool's
  output schema); a bug inside a tool is the registry's `InternalError` (code ``internal``); any other
  exception is an ``isError`` result ``internal error: ...`` and the server keeps running.
- A client's ``notifications/cancelled`` cancels the call's context: the tool's backends stop at
  their next check (between tokens or batches), so the model is free for the next request.
- When the client sends a ``progressToken``, ``ctx.progress(...)`` becomes
  ``notifications/progress`` (throttled, monotonic across phases of one call).
- stdio: the protocol owns the real stdout; file descriptor 1 and ``sys.stdout`` are pointed at
  stderr for everything else, so stray prints (from tools or libraries, Python or C) never
  corrupt the stream.
- HTTP: sessions are capped (``VLTOOLS_MAX_MCP_SESSIONS``, 503 beyond) and closed after
  ``VLTOOLS_MCP_SESSION_IDLE_S`` seconds without a request.
  Binds 127.0.0.1 by default. Bound to any non-loopback address it refuses to start
  without ``VLTOOLS_HTTP_TOKEN`` and answers 401 to requests without
  ``Authorization: Bearer <token>``.

Importing this module loads the MCP SDK but no model library; tool modules are imported when
the tools are first listed (their schemas), models when a tool first needs one.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import NotificationOptions, Server

from vltools import __version__
from vltools.core.context import Context
from vltools.core.errors import InvalidInput, RegistryError, ToolError
from vltools.core.registry import EntrySpec, Registry, get_registry
from vltools.core.settings import get_settings
from vltools.core.tool import Tool

log = logging.getLogger("vltools.server")

SERVER_NAME = "vltools"
INSTRUCTIONS = (
    "vltools: typed retrieval, reranking, CLIP, fact-verification and video tools. Tool names are the "
    "registry names with '_' for '.'. Collections are named stores created with collection_create."
)
PROGRESS_MIN_INTERVAL_S = 0.1  # at most ~10 progress notifications a second per call
MCP_PATH = "/mcp"


# -- catalogue -> MCP tools ------------------------------------------------------------------
def _description(spec: EntrySpec, t: Tool) -> str:
    text = t.description(spec.summary)
    if spec.papers:
        text += "\n\nPapers: " + ", ".join(spec.papers)
    return text


def may_reach_network(spec: EntrySpec, t: Tool) -> bool:
    """True when a call may reach a network endpoint: the entry can use an LLM (an ``openai:`` spec is an
    HTTP endpoint, and ``settings.llm`` may be one), or it calls tools chosen by the caller (a ``reranker``,
    an agent). Everything else reads only local files and the local store."""
    fields = t.input_model.model_fields
    uses_llm = "llm" in fields or any(n == "llm" or n.startswith("llm:") for n in spec.needs)
    return uses_llm or "reranker" in fields or spec.kind == "agent"


def annotations_for(spec: EntrySpec, t: Tool) -> types.ToolAnnotations:
    """MCP tool annotations from the catalogue's ``effects`` and ``idempotent``."""
    return types.ToolAnnotations(
        title=spec.name,
        readOnlyHint=spec.effects == "read_only",
        destructiveHint=spec.effects == "destructive",
        idempotentHint=spec.idempotent,
        openWorldHint=may_reach_network(spec, t),
    )


def tool_definition(reg: Registry, spec: EntrySpec) -> types.Tool:
    """The MCP tool for one registry entry (imports the tool's module, loads no model)."""
    t = reg.get(spec.name)
    input_schema = t.input_model.model_json_schema()
    output_schema: dict[str, Any] | None = t.output_model.model_json_schema(mode="serialization")
    if output_schema.get("type") != "object":  # MCP requires an object; such tools answer text only
        output_schema = None
    return types.Tool(
        name=spec.mcp_name,
        title=spec.name,
        description=_description(spec, t),
        inputSchema=input_schema,
        outputSchema=output_schema,
        annotations=annotations_for(spec, t),
        _meta={"vltools/name": spec.name, "vltools/kind": spec.kind, "vltools/tags": spec.tags,
               "vltools/papers": spec.papers},
    )


def list_mcp_tools(reg: Registry) -> list[types.Tool]:
    """Every registry entry as an MCP tool; an entry whose module cannot load is skipped loudly."""
    tools: list[types.Tool] = []
    seen: dict[str, str] = {}
    for spec in reg.list():
        if spec.mcp_name in seen:
            log.error("skipping %s: its MCP name %s collides with %s", spec.name, spec.mcp_name, seen[spec.mcp_name])
            continue
        try:
            tools.append(tool_definition(reg, spec))
        except (RegistryError, ImportError) as err:
            log.error("skipping %s: %s", spec.name, err)
            continue
        seen[spec.mcp_name] = spec.name
    return tools


# -- results ---------------------------------------------------------------------------------
def error_result(error: str | ToolError) -> types.CallToolResult:
    """An ``isError`` result: the one-line message, plus ``_meta["vltools/error"]`` for a `ToolError`."""
    if isinstance(error, ToolError):
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=error.render())],
            isError=True,
            _meta={"vltools/error": error.to_dict()},
        )
    return types.CallToolResult(content=[types.TextContent(type="text", text=error)], isError=True)


def ok_result(data: Any) -> types.CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structuredContent=data if isinstance(data, dict) else None,  # a root-model output is text only
        isError=False,
    )


# -- progress --------------------------------------------------------------------------------
class ProgressBridge:
    """``ctx.progress`` callback (any thread) -> MCP progress notifications on the event loop.

    MCP wants ``progress`` to increase with every notification; a tool may report several
    phases (encode 0..n, then index 0..m), so each new phase is offset by the previous one's
    total. The note keeps the tool's own numbers. Calls are throttled, except the last of a
    phase; each send is awaited (bounded) so notifications precede the result.
    """

    def __init__(
        self,
        send: Callable[[float, float | None, str | None], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
        *,
        min_interval: float = PROGRESS_MIN_INTERVAL_S,
    ) -> None:
        self._send, self._loop, self._min_interval = send, loop, min_interval
        self._lock = threading.Lock()
        self._offset = 0.0
        self._last_done: float | None = None
        self._last_total: float | None = None
        self._last_sent_at = -math.inf
        self._last_value = -math.inf
        self.sent = 0

    def __call__(self, done: float, total: float | None, note: str) -> None:
        with self._lock:
            if self._last_done is not None and done < self._last_done:  # a new phase began
                self._offset += self._last_total if self._last_total is not None else self._last_done
            self._last_done, self._last_total = done, total
            value = self._offset + done
            now = time.monotonic()
            phase_end = total is not None and done >= total
            if value <= self._last_value or (not phase_end and now - self._last_sent_at < self._min_interval):
                return
            self._last_sent_at, self._last_value = now, value
            total_out = None if total is None else self._offset + total
        message = note or (f"{done:g}/{total:g}" if total is not None else f"{done:g}")
        fut = asyncio.run_coroutine_threadsafe(self._send(value, total_out, message), self._loop)
        try:
            fut.result(timeout=5.0)
            self.sent += 1
        except Exception:  # a slow or gone client must not fail the tool
            log.debug("progress notification not delivered", exc_info=True)


# -- the server ------------------------------------------------------------------------------
async def run_tool(
    reg: Registry,
    name: str,
    arguments: dict[str, Any] | None,
    *,
    progress: Callable[[float, float | None, str], None] | None = None,
) -> types.CallToolResult:
    """Run one registry tool in a worker thread and map the outcome to an MCP result.

    ``reg`` is any registry: its `call` puts itself on the context, so nested calls stay on it.
    """
    ctx = Context(progress=progress)
    try:
        spec = reg.spec(name)
        out = await anyio.to_thread.run_sync(
            lambda: reg.call(spec.name, arguments or {}, ctx=ctx), abandon_on_cancel=True
        )
        data = out.model_dump(mode="json")
    except ToolError as err:
        return error_result(err)
    except anyio.get_cancelled_exc_class():
        ctx.cancel()  # the abandoned worker's backends stop at their next check and free the model
        raise
    except Exception as err:  # a bug in a tool must not take the server down
        log.exception("tool %s failed", name)
        return error_result(f"internal error: {type(err).__name__}: {err}".replace("\n", " "))
    return ok_result(data)


def build_server(registry: Registry | None = None) -> Server:
    """The low-level MCP server over ``registry`` (default: the process registry)."""
    server: Server = Server(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS)
    cache: dict[str, list[types.Tool]] = {}
    cache_lock = anyio.Lock()

    def reg() -> Registry:
        return registry if registry is not None else get_registry()

    @server.list_tools()
    async def _list_tools() -> list[types.Tool]:
        async with cache_lock:
            if "tools" not in cache:  # imports every tool module once: off the event loop
                cache["tools"] = await anyio.to_thread.run_sync(list_mcp_tools, reg())
            return cache["tools"]

    # Input is validated by the registry (its messages name the field), not by the SDK.
    @server.call_tool(validate_input=False)
    async def _call_tool(name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        rctx = server.request_context
        token = rctx.meta.progressToken if rctx.meta is not None else None
        bridge = None
        if token is not None:
            session, request_id = rctx.session, rctx.request_id

            async def send(value: float, total: float | None, message: str | None) -> None:
                await session.send_progress_notification(
                    token, value, total, message, related_request_id=str(request_id)
                )

            bridge = ProgressBridge(send, asyncio.get_running_loop())
        return await run_tool(reg(), name, arguments, progress=bridge)

    return server


def initialization_options(server: Server):
    return server.create_initialization_options(NotificationOptions(tools_changed=False))


# -- stdio -----------------------------------------------------------------------------------
def _claim_stdout_for_protocol() -> Any:
    """Give the protocol a private copy of stdout; send fd 1 and ``sys.stdout`` to stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)  # C libraries and subprocesses writing to fd 1 now write to stderr
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", encoding="utf-8", newline="\n")


async def _serve_stdio(server: Server, proto_out: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server(stdout=anyio.wrap_file(proto_out)) as (read_stream, write_stream):
        await server.run(read_stream, write_stream, initialization_options(server))


# -- HTTP ------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1 (not reachable from other machines)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>`` (else 401)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self._token = app, token.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, given = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._token):
                body = json.dumps({"error": "unauthorized", "message": "missing or wrong bearer token"}).encode()
                await send({
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="vltools"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                })
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def check_http_binding(host: str, token: str | None) -> str | None:
    """The token to require for ``host`` (None on loopback); refuses a public bind without one."""
    if is_loopback(host):
        return token or None
    if not token:
        raise InvalidInput(
            f"--host {host} is not a loopback address, so the HTTP server needs a bearer token",
            hint="set VLTOOLS_HTTP_TOKEN to a long random secret, or bind 127.0.0.1",
        )
    return token


def build_http_app(*, host: str = "127.0.0.1", token: str | None = None, registry: Registry | None = None) -> Any:
    """The streamable-HTTP ASGI app at ``/mcp`` (bearer auth when ``token`` is set)."""
    import contextlib

    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Route

    server = build_server(registry)
    if is_loopback(host):  # DNS-rebinding protection: a browser page must not reach a loopback server
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*", host,
                           f"{host}:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", f"http://{host}:*"],
        )
    else:  # reachable from elsewhere: the bearer token is the guard
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    settings = get_settings()
    # Abandoned sessions must not pile up: at most max_mcp_sessions open (a new one beyond that gets
    # 503 until one ends), and a session with no request in flight for mcp_session_idle_s is closed.
    manager = StreamableHTTPSessionManager(
        app=server,
        security_settings=security,
        max_sessions=settings.max_mcp_sessions,
        session_idle_timeout=settings.mcp_session_idle_s,
    )

    class Endpoint:  # a class instance, so Starlette routes every method to it as a raw ASGI app
        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            await manager.handle_request(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        async with manager.run():
            yield

    app: Any = Starlette(routes=[Route(MCP_PATH, endpoint=Endpoint())], lifespan=lifespan)
    if token:
        app = BearerAuth(app, token)
    return app


# -- entry point -----------------------------------------------------------------------------
def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("vltools-mcp %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    # `vltools serve` owns its process, so it configures the root logger (setting log_level).
    level = get_settings().log_level.upper()
    root.setLevel(level)
    for noisy in ("mcp", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def serve(transport: str = "stdio", host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the MCP server until the client disconnects (stdio) or the process is stopped (HTTP)."""
    _setup_logging()
    if transport == "stdio":
        proto_out = _claim_stdout_for_protocol()
        anyio.run(_serve_stdio, build_server(), proto_out)
        return
    if transport != "http":
        raise InvalidInput(f"unknown transport {transport!r}", hint="use stdio or http")
    token = check_http_binding(host, get_settings().http_token)
    import uvicorn

    app = build_http_app(host=host, token=token)
    where = f"[{host}]" if ":" in host else host
    sys.stderr.write(
        f"vltools MCP server: http://{where}:{port}{MCP_PATH} (streamable HTTP"
        + (", bearer token required)" if token else ")") + "\n"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
