"""The MCP server over streamable HTTP on loopback, in a subprocess, with a bearer token set."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from mcp.client.streamable_http import streamablehttp_client

import vltools

from ._client import BackgroundSession
from .conftest import serve_http

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def http_server(server_env, bm25_collection, tmp_path_factory):
    log = tmp_path_factory.mktemp("http") / "server.log"
    with serve_http({**server_env, "VLTOOLS_HTTP_TOKEN": TOKEN}, log, "--host", "127.0.0.1") as url:
        yield url + "/mcp"


@pytest.fixture(scope="module")
def http_session(http_server):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client = BackgroundSession(lambda: streamablehttp_client(http_server, headers=headers)).start()
    yield client
    client.close()


def test_requests_without_the_token_get_401(http_server):
    client_info = {"name": "t", "version": "0"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client_info}}
    accept = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(http_server, json=init, headers=accept).status_code == 401
    assert httpx.post(http_server, json=init, headers={**accept, "Authorization": "Bearer nope"}).status_code == 401


def test_lists_and_calls_tools_over_http(http_session, bm25_collection):
    tools = {t.name: t for t in http_session.call(lambda s: s.list_tools()).tools}
    assert set(tools) == {e.mcp_name for e in vltools.registry().list()}
    assert tools["retrieve_bm25"].outputSchema["type"] == "object"
    args = {"collection": bm25_collection, "query": "sails and wind on the water", "k": 2}
    r = http_session.call(lambda s: s.call_tool("retrieve_bm25", args, read_timeout_seconds=timedelta(seconds=120)))
    assert not r.isError and r.structuredContent["hits"][0]["id"] == "boat"


def test_invalid_input_over_http(http_session, bm25_collection):
    args = {"collection": bm25_collection, "query": "", "k": 5}
    r = http_session.call(lambda s: s.call_tool("retrieve_bm25", args))
    assert r.isError and "query" in r.content[0].text


def test_progress_over_http(http_session):
    vltools.call("collection.create", {"name": "faces_http_add", "kind": "text", "text_model": "none"})
    got = []

    async def on_progress(progress, total, message):
        got.append((progress, total, message))

    from .conftest import many_docs

    args = {"collection": "faces_http_add", "documents": many_docs(30, "h")}
    r = http_session.call(lambda s: s.call_tool("collection_add", args, progress_callback=on_progress))
    assert not r.isError and r.structuredContent["added"] == 30
    assert got, "no progress notification arrived over HTTP"
    values = [v for v, _, _ in got]
    assert values == sorted(values) and len(set(values)) == len(values)
