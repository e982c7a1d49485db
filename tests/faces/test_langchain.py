"""vltools as LangChain StructuredTools, inside a LangGraph graph with a ToolNode driven by a
scripted (offline) chat model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import vltools
from vltools.core.errors import NotFound

from .conftest import many_docs


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with the scripted messages in order; tool binding is a no-op (the script decides)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self


def _graph(tools: list[StructuredTool], script: list[AIMessage]):
    model = ScriptedChatModel(messages=iter(script)).bind_tools(tools)

    def agent(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    return g.compile()


def _call(name: str, args: dict, cid: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": cid, "type": "tool_call"}])


def test_tools_carry_the_registry_schemas():
    tools = vltools.as_langchain_tools(names=["retrieve.bm25", "collection_info"])
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {"retrieve_bm25", "collection_info"}
    t = vltools.registry().get("retrieve.bm25")
    bm25 = by_name["retrieve_bm25"]
    assert bm25.args_schema is t.input_model and bm25.handle_tool_error
    assert vltools.registry().spec("retrieve.bm25").summary in bm25.description
    assert all("." not in tool.name for tool in vltools.as_langchain_tools())
    with pytest.raises(NotFound):
        vltools.as_langchain_tools(names=["retrieve.bm52"])


def test_tags_select_tools():
    spec = vltools.registry().spec("retrieve.bm25")
    assert spec.tags, "retrieve.bm25 should carry tags"
    names = {t.name for t in vltools.as_langchain_tools(tags=[spec.tags[0]])}
    assert "retrieve_bm25" in names
    assert names == {e.mcp_name for e in vltools.registry().list(spec.tags[0])}


def test_direct_invoke_returns_the_output_as_a_dict(bm25_collection):
    (bm25,) = vltools.as_langchain_tools(names=["retrieve.bm25"])
    out = bm25.invoke({"collection": bm25_collection, "query": "glacier ice valleys", "k": 2})
    assert isinstance(out, dict) and out["hits"][0]["id"] == "ice"
    assert out == vltools.call("retrieve.bm25", {"collection": bm25_collection, "query": "glacier ice valleys",
                                                 "k": 2}).model_dump(mode="json")


def test_content_and_artifact_format(bm25_collection):
    from vltools.langchain_tools import as_langchain_tools

    (bm25,) = as_langchain_tools(names=["retrieve.bm25"], response_format="content_and_artifact")
    msg = bm25.invoke({"type": "tool_call", "id": "c1", "name": "retrieve_bm25",
                       "args": {"collection": bm25_collection, "query": "moon orbit", "k": 1}})
    assert isinstance(msg, ToolMessage) and json.loads(msg.content)["hits"][0]["id"] == "moon"
    assert msg.artifact.hits[0].id == "moon"  # the validated output model


def test_graph_with_toolnode_handles_results_and_errors(bm25_collection):
    vltools.call("collection.create", {"name": "faces_lc_add", "kind": "text", "text_model": "none"})
    tools = vltools.as_langchain_tools(names=["retrieve.bm25", "collection.add"])
    script = [
        _call("retrieve_bm25", {"collection": bm25_collection, "query": "steam trains railway", "k": 2}, "ok1"),
        _call("retrieve_bm25", {"collection": bm25_collection, "query": "trains", "k": 0}, "bad_k"),
        _call("retrieve_bm25", {"collection": "no_such_collection", "query": "trains", "k": 2}, "missing"),
        _call("collection_add", {"collection": "faces_lc_add", "documents": many_docs(24, "g")}, "add"),
        AIMessage("The railway document answers it."),
    ]
    graph = _graph(tools, script)
    custom: list[dict] = []
    final: dict | None = None
    for mode, chunk in graph.stream({"messages": [HumanMessage("find trains")]}, stream_mode=["custom", "values"]):
        if mode == "custom":
            custom.append(chunk)
        else:
            final = chunk
    assert final is not None
    msgs = {m.tool_call_id: m for m in final["messages"] if isinstance(m, ToolMessage)}
    assert set(msgs) == {"ok1", "bad_k", "missing", "add"}

    assert msgs["ok1"].status == "success"
    assert json.loads(msgs["ok1"].content)["hits"][0]["id"] == "rail"

    assert msgs["bad_k"].status == "error"
    assert msgs["bad_k"].content.startswith("invalid_input:") and "k:" in msgs["bad_k"].content

    assert msgs["missing"].status == "error"
    assert msgs["missing"].content.startswith("not_found:") and "no_such_collection" in msgs["missing"].content

    assert msgs["add"].status == "success" and json.loads(msgs["add"].content)["added"] == 24
    assert final["messages"][-1].content == "The railway document answers it."  # the graph went on to the end
    # collection.add reported progress, forwarded to LangGraph's custom stream
    assert custom and all(c["tool"] == "collection.add" for c in custom)
    assert custom[-1]["done"] == custom[-1]["total"] == 24


def test_async_invoke_and_async_errors(bm25_collection):
    import asyncio

    (bm25,) = vltools.as_langchain_tools(names=["retrieve.bm25"])

    async def go():
        ok = await bm25.ainvoke({"collection": bm25_collection, "query": "bees and honey", "k": 1})
        bad = await bm25.ainvoke({"type": "tool_call", "id": "c9", "name": "retrieve_bm25",
                                  "args": {"collection": "nope_collection", "query": "bees", "k": 1}})
        return ok, bad

    ok, bad = asyncio.run(go())
    assert ok["hits"][0]["id"] == "bee"
    assert isinstance(bad, ToolMessage) and bad.status == "error" and "nope_collection" in bad.content


def test_no_input_field_shadows_a_langchain_run_parameter():
    """StructuredTool passes these names itself; a tool argument so named would collide."""
    reserved = {"config", "run_manager", "callbacks", "tool_call_id"}
    for tool in vltools.as_langchain_tools():
        clash = reserved & set(tool.args_schema.model_fields)
        assert not clash, f"{tool.name} has input fields {clash}, which LangChain reserves"
