"""The MCP server over a real stdio subprocess, driven by the MCP SDK's client.

One server process serves the whole module. Its stdout passes through ``tee`` into a file, so
the last test can check that every byte the server wrote to stdout was a protocol message.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import mcp.types as types
import pytest
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client

import vltools

from ._client import BackgroundSession
from .conftest import PYTHON, ROOT, many_docs

pytestmark = pytest.mark.skipif(shutil.which("tee") is None, reason="needs tee")


@pytest.fixture(scope="module")
def stdio(server_env, bm25_collection, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stdio")
    stdout_copy, stderr_log = tmp / "server_stdout.jsonl", tmp / "server_stderr.log"
    params = StdioServerParameters(
        command="bash",
        args=["-c", 'set -o pipefail; "$0" -m vltools.cli serve --transport stdio | tee -- "$1"',
              PYTHON, str(stdout_copy)],
        env=server_env,
        cwd=str(ROOT),
    )
    errlog = stderr_log.open("w")
    client = BackgroundSession(lambda: stdio_client(params, errlog=errlog)).start()
    client.stdout_copy, client.stderr_log = stdout_copy, stderr_log
    try:
        yield client
    finally:
        client.close()
        errlog.close()


def _call(stdio, name, args, **kw) -> types.CallToolResult:
    return stdio.call(lambda s: s.call_tool(name, args, read_timeout_seconds=timedelta(seconds=300), **kw))


def test_initialize_names_the_server(stdio):
    assert stdio.init_result.serverInfo.name == "vltools"
    assert stdio.init_result.capabilities.tools is not None


def test_lists_every_registry_tool_with_input_and_output_schemas(stdio):
    tools = stdio.call(lambda s: s.list_tools()).tools
    by_name = {t.name: t for t in tools}
    expected = {e.mcp_name: e for e in vltools.registry().list()}
    assert set(by_name) == set(expected)
    assert "retrieve_bm25" in by_name and "collection_add" in by_name
    for name, t in by_name.items():
        assert t.inputSchema["type"] == "object", name
        assert t.outputSchema is not None and t.outputSchema["type"] == "object", name
        assert t.description and expected[name].summary in t.description
    bm25 = by_name["retrieve_bm25"]
    assert {"collection", "query", "k"} <= set(bm25.inputSchema["properties"])
    assert "hits" in bm25.outputSchema["properties"]


def test_every_tool_has_annotations_from_its_effects(stdio):
    tools = {t.name: t for t in stdio.call(lambda s: s.list_tools()).tools}
    for e in vltools.registry().list():
        a = tools[e.mcp_name].annotations
        assert a is not None, e.name
        assert a.readOnlyHint is (e.effects == "read_only"), e.name
        assert a.destructiveHint is (e.effects == "destructive"), e.name
        assert a.idempotentHint is e.idempotent and a.openWorldHint is not None, e.name
    delete, bm25 = tools["collection_delete"].annotations, tools["retrieve_bm25"].annotations
    assert delete.destructiveHint is True and delete.readOnlyHint is False
    assert bm25.readOnlyHint is True and bm25.destructiveHint is False and bm25.openWorldHint is False
    assert tools["collection_add"].annotations.readOnlyHint is False
    assert tools["collection_add"].annotations.destructiveHint is False
    assert tools["llm_generate"].annotations.openWorldHint is True  # an openai: spec is a network endpoint


def test_retrieve_bm25_returns_a_structured_ranking(stdio, bm25_collection):
    args = {"collection": bm25_collection, "query": "jet engine turbine fuel", "k": 3}
    r = _call(stdio, "retrieve_bm25", args)
    assert not r.isError, r.content
    hits = r.structuredContent["hits"]
    assert 1 <= len(hits) <= 3 and hits[0]["id"] == "jet"
    assert "turbine" in hits[0]["text"] and isinstance(hits[0]["score"], float)
    assert json.loads(r.content[0].text) == r.structuredContent  # the text copy is the same JSON
    direct = vltools.call("retrieve.bm25", args).model_dump(mode="json")
    assert [(h["id"], h["score"]) for h in direct["hits"]] == [(h["id"], h["score"]) for h in hits]


def test_invalid_input_is_an_error_result_naming_the_field(stdio, bm25_collection):
    r = _call(stdio, "retrieve_bm25", {"collection": bm25_collection, "query": "jet", "k": 0})
    assert r.isError and r.structuredContent is None
    text = r.content[0].text
    assert text.startswith("invalid_input:") and "k:" in text
    r = _call(stdio, "retrieve_bm25", {"collection": bm25_collection, "k": 3})
    assert r.isError and "query" in r.content[0].text


def test_tool_errors_are_error_results_and_the_server_keeps_serving(stdio, bm25_collection):
    r = _call(stdio, "retrieve_bm25", {"collection": "no_such_collection", "query": "jet", "k": 3})
    assert r.isError and r.content[0].text.startswith("not_found:") and "no_such_collection" in r.content[0].text
    r = _call(stdio, "no_such_tool", {})
    assert r.isError and "no_such_tool" in r.content[0].text
    r = _call(stdio, "retrieve_bm25", {"collection": bm25_collection, "query": "honey bees", "k": 1})
    assert not r.isError and r.structuredContent["hits"][0]["id"] == "bee"


@pytest.mark.heavy
def test_progress_notifications_for_a_long_call(stdio):
    """collection_add on a MiniLM collection: the server loads the encoder and reports progress."""
    vltools.call("collection.create", {"name": "faces_dense", "kind": "text", "text_model": "minilm"})
    got: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        got.append((progress, total, message))

    docs = many_docs(40, "p")
    r = _call(stdio, "collection_add", {"collection": "faces_dense", "documents": docs, "batch_size": 8},
              progress_callback=on_progress)
    assert not r.isError, r.content
    assert r.structuredContent["added"] == 40 and r.structuredContent["count"] == 40
    assert len(got) >= 2, got
    values = [p for p, _, _ in got]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert all(m for _, _, m in got)
    assert vltools.call("collection.info", {"collection": "faces_dense"}).count == 40


def test_zz_stdout_carried_only_protocol_messages(stdio):
    """Runs last in this module: every line the server wrote to stdout is a JSON-RPC message."""
    stdio.call(lambda s: s.send_ping())
    lines = Path(stdio.stdout_copy).read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 8
    for line in lines:
        types.JSONRPCMessage.model_validate_json(line)
