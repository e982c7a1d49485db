"""The MCP server through langchain-mcp-adapters (stdio), as a LangChain user would load it."""

from __future__ import annotations

import asyncio
import json

import pytest

import vltools

# An extra (`test`/`dev`); requirements.lock installs it, so CI runs this file.
pytest.importorskip("langchain_mcp_adapters", reason="langchain-mcp-adapters (extra: test) is not installed")
from langchain_mcp_adapters.client import MultiServerMCPClient  # noqa: E402
from langchain_mcp_adapters.tools import load_mcp_tools  # noqa: E402

from .conftest import PYTHON, ROOT


def test_adapters_load_and_invoke_vltools_tools(server_env, bm25_collection):
    client = MultiServerMCPClient({
        "vltools": {
            "transport": "stdio",
            "command": PYTHON,
            "args": ["-m", "vltools.cli", "serve"],
            "env": server_env,
            "cwd": str(ROOT),
        }
    })

    async def go():
        async with client.session("vltools") as session:  # one server process for the whole test
            tools = {t.name: t for t in await load_mcp_tools(session)}
            bm25 = tools["retrieve_bm25"]
            ok = await bm25.ainvoke({"type": "tool_call", "id": "c1", "name": "retrieve_bm25",
                                     "args": {"collection": bm25_collection, "query": "bread yeast dough", "k": 2}})
            bad = await bm25.ainvoke({"type": "tool_call", "id": "c2", "name": "retrieve_bm25",
                                      "args": {"collection": bm25_collection, "query": "bread", "k": 10**9}})
            return tools, ok, bad

    tools, ok, bad = asyncio.run(go())
    assert set(tools) == {e.mcp_name for e in vltools.registry().list()}
    assert tools["retrieve_bm25"].args_schema["properties"].keys() >= {"collection", "query", "k"}
    assert ok.status == "success"
    assert ok.artifact["structured_content"]["hits"][0]["id"] == "bread"
    text = ok.content if isinstance(ok.content, str) else ok.content[0]["text"]
    assert json.loads(text)["hits"][0]["id"] == "bread"
    assert bad.status == "error"
    bad_text = bad.content if isinstance(bad.content, str) else bad.content[0]["text"]
    assert "k" in bad_text and "invalid_input" in bad_text
