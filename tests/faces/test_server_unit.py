"""The MCP server's parts in-process: binding rule, bearer auth, result mapping, progress."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from vltools.core.errors import InvalidInput, NotFound
from vltools.server import BearerAuth, ProgressBridge, build_http_app, check_http_binding, is_loopback, run_tool

HEAVY = ("torch", "transformers", "open_clip", "faiss", "sentence_transformers")


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False)],
)
def test_loopback_rule(host, loopback):
    assert is_loopback(host) is loopback


def test_public_bind_needs_a_token():
    with pytest.raises(InvalidInput) as exc:
        check_http_binding("0.0.0.0", None)
    assert "VLTOOLS_HTTP_TOKEN" in exc.value.render() and "0.0.0.0" in exc.value.render()
    with pytest.raises(InvalidInput):
        check_http_binding("192.168.1.5", "")
    assert check_http_binding("0.0.0.0", "tok") == "tok"
    assert check_http_binding("127.0.0.1", None) is None
    assert check_http_binding("127.0.0.1", "tok") == "tok"  # a configured token is enforced everywhere


def test_cli_refuses_public_http_without_token(run_cli, monkeypatch):
    from vltools.core.settings import reset_settings

    monkeypatch.delenv("VLTOOLS_HTTP_TOKEN", raising=False)
    reset_settings()
    try:
        code, out, err = run_cli("serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1")
    finally:
        reset_settings()
    assert code == 2 and out == ""
    assert "VLTOOLS_HTTP_TOKEN" in err and len(err.strip().splitlines()) == 1


def _asgi_posts(app, header_sets: list[dict[str, str]], body: dict) -> list[httpx.Response]:
    """POST ``body`` to /mcp once per header set, inside one run of the app's lifespan."""

    async def go() -> list[httpx.Response]:
        inner = app.app if isinstance(app, BearerAuth) else app
        async with inner.router.lifespan_context(inner):  # runs the session manager
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return [await client.post("/mcp", json=body, headers=h) for h in header_sets]

    return asyncio.run(go())


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_http_app_off_loopback_answers_401_without_the_token():
    app = build_http_app(host="0.0.0.0", token="s3cret-token")
    bad = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"},
           {"Authorization": "s3cret-token"}]
    good = {"Authorization": "Bearer s3cret-token"}
    *refused, ok = _asgi_posts(app, [{**ACCEPT, **h} for h in [*bad, good]], INIT)
    for headers, r in zip(bad, refused, strict=True):
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert ok.status_code == 200
    assert '"serverInfo"' in ok.text and '"vltools"' in ok.text


def test_loopback_app_rejects_foreign_host_headers():
    """DNS-rebinding guard: a loopback server only answers Host: 127.0.0.1/localhost."""
    app = build_http_app(host="127.0.0.1")
    foreign, local = _asgi_posts(app, [{**ACCEPT, "Host": "evil.example:8765"}, {**ACCEPT, "Host": "127.0.0.1:8765"}],
                                 INIT)
    assert foreign.status_code in (400, 421)
    assert local.status_code == 200


class _FakeRegistry:
    """Just enough of Registry for run_tool: spec() and call()."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def spec(self, name):
        if name != "fake_tool":
            raise NotFound(f"no tool named {name!r}", hint="run `vltools list`")
        return type("S", (), {"name": "fake.tool"})()

    def call(self, name, inp, ctx=None):
        raise self.exc


def test_tool_errors_and_bugs_become_error_results():
    r = asyncio.run(run_tool(_FakeRegistry(RuntimeError("boom\nsecond line")), "fake_tool", {}))
    assert r.isError and r.content[0].text == "internal error: RuntimeError: boom second line"
    r = asyncio.run(run_tool(_FakeRegistry(InvalidInput("k: too big", hint="use k <= 100")), "fake_tool", {}))
    assert r.isError and r.content[0].text == "invalid_input: k: too big (hint: use k <= 100)"
    r = asyncio.run(run_tool(_FakeRegistry(RuntimeError()), "other", {}))
    assert r.isError and r.content[0].text.startswith("not_found: no tool named 'other'")


def test_progress_is_monotonic_across_phases():
    sent: list[tuple[float, float | None, str | None]] = []

    async def go() -> None:
        async def send(value, total, message):
            sent.append((value, total, message))

        bridge = ProgressBridge(send, asyncio.get_running_loop(), min_interval=0.0)

        def work() -> None:
            for i in range(1, 4):
                bridge(i, 3, "encode")
            for i in range(1, 3):
                bridge(i, 2, "index")
            bridge(2, 2, "index")  # a repeat is not re-sent

        await asyncio.to_thread(work)

    asyncio.run(go())
    values = [v for v, _, _ in sent]
    assert values == [1, 2, 3, 4, 5]
    assert sent[-1] == (5, 5, "index") and sent[2] == (3, 3, "encode")


def test_listing_and_a_bm25_call_import_no_model_library(bm25_collection, server_env):
    """What a stdio server does first (list tools, answer a BM25 query) loads no torch & co."""
    code = (
        "import asyncio, json, sys\n"
        "from vltools.core.registry import get_registry\n"
        "from vltools.server import list_mcp_tools, run_tool\n"
        "tools = list_mcp_tools(get_registry())\n"
        f"r = asyncio.run(run_tool(get_registry(), 'retrieve_bm25', {{'collection': {bm25_collection!r}, "
        "'query': 'jet engine', 'k': 2}))\n"
        f"print(json.dumps([len(tools), r.structuredContent['hits'][0]['id'], [m for m in {HEAVY!r} "
        "if m in sys.modules]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env=server_env)
    n, top, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == [], f"listing tool schemas or a BM25 call imported {heavy}"
    assert top == "jet"
    from vltools import registry

    assert n == len(registry().list())


def test_every_listed_schema_is_valid_json_schema():
    import jsonschema

    from vltools import registry
    from vltools.server import list_mcp_tools

    tools = list_mcp_tools(registry())
    assert tools
    for t in tools:
        for schema in (t.inputSchema, t.outputSchema):
            assert schema["type"] == "object", t.name
            jsonschema.validators.validator_for(schema).check_schema(schema)
        assert t.name == registry().spec(t.name).mcp_name and t.title == registry().spec(t.name).name


def test_descriptions_say_the_summary_once_then_the_docstring_body():
    from vltools import registry
    from vltools.server import list_mcp_tools

    for t in list_mcp_tools(registry()):
        spec, tool = registry().spec(t.name), registry().get(t.name)
        assert t.description.startswith(spec.summary) and t.description.count(spec.summary) == 1, t.name
        if tool.body:
            assert tool.body in t.description, t.name


def test_open_world_only_where_a_network_endpoint_is_reachable():
    from vltools import registry
    from vltools.server import list_mcp_tools

    hints = {t.name: t.annotations.openWorldHint for t in list_mcp_tools(registry())}
    assert all(hints[n] for n in ("llm_generate", "rerank_listwise", "graph_rag", "agent_ask", "evidence_select"))
    assert not any(hints[n] for n in ("retrieve_bm25", "image_search", "collection_delete", "world_generate"))


def test_a_cancelled_request_stops_the_running_tool():
    """notifications/cancelled -> the call's Context is cancelled and the tool's thread ends."""
    import threading

    import anyio
    import mcp.types as types
    from mcp.shared.exceptions import McpError
    from mcp.shared.memory import create_connected_server_and_client_session

    from vltools.core.registry import Registry
    from vltools.server import build_server

    reg = Registry(Registry.read_file(
        "tools:\n  - {name: sample.sleep, entry: 'tests.core.sample_tools:sleep', summary: Sleep.,"
        " effects: read_only}\n", "test"))

    def sleeping() -> bool:
        return any(t.name == "vltools:sample.sleep" and t.is_alive() for t in threading.enumerate())

    async def go() -> tuple[bool, bool]:
        async with create_connected_server_and_client_session(build_server(reg)) as client:
            started = anyio.Event()

            async def on_progress(progress, total, message):
                started.set()

            request_id = client._request_id  # the id (and progress token) of the next request

            async def call() -> None:
                try:
                    await client.call_tool("sample_sleep", {"seconds": 25}, progress_callback=on_progress)
                except McpError:
                    pass

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                with anyio.fail_after(20):
                    await started.wait()
                running = sleeping()
                await client.send_notification(types.ClientNotification(types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=request_id, reason="test"))))
                with anyio.fail_after(10):
                    while sleeping():
                        await anyio.sleep(0.05)
            return running, sleeping()

    running_before, running_after = asyncio.run(go())
    assert running_before and not running_after
