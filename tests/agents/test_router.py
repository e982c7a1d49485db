"""agent.ask: tool retrieval on the labelled requests, input filling, chaining, the tool-calling loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

import vltools
from vltools.core.errors import InvalidInput

pytestmark = pytest.mark.heavy  # MiniLM

REQUESTS = Path(__file__).resolve().parents[1] / "data" / "router_requests.jsonl"
DOCS = [
    {"id": "co2", "text": "Plants require carbon dioxide to conduct photosynthesis. Bees pollinate many crops."},
    {"id": "ice", "text": "Arctic sea ice has declined sharply since satellite records began in 1979."},
    {"id": "nep", "text": "The long orbital period of Neptune results in seasons lasting forty years."},
]


@pytest.fixture(scope="module")
def notes():
    vltools.call("collection.create", {"name": "router_notes", "text_model": "none", "exist_ok": True})
    vltools.call("collection.add", {"collection": "router_notes", "documents": DOCS, "upsert": True})
    return "router_notes"


def test_labelled_requests_top3_at_least_90_percent():
    from vltools.agents.router import rank_entries
    from vltools.core.context import Context

    rows = [json.loads(line) for line in REQUESTS.open() if line.strip()]
    assert len(rows) >= 60
    names = set(vltools.registry().names())
    assert {r["expected"] for r in rows} <= names, "labelled set names tools that are not in the registry"
    enc = Context().text()
    ranks = []
    for r in rows:
        ranked = [n for n, _, _ in rank_entries(r["request"], enc)]
        ranks.append(ranked.index(r["expected"]) + 1)
    top1 = sum(k == 1 for k in ranks) / len(ranks)
    top3 = sum(k <= 3 for k in ranks) / len(ranks)
    assert top3 >= 0.9, f"top-3 {top3:.3f} (top-1 {top1:.3f})"
    assert top1 >= 0.6


def test_choose_only_reports_choice_reason_and_filled_input(notes):
    out = vltools.call("agent.ask", {"request": "keyword search router_notes for 'sea ice' top 2", "execute": False})
    assert out.choice[0].tool == "retrieve.bm25" and len(out.choice) == 3
    assert out.choice[0].score >= out.choice[1].score
    assert out.input == {"query": "sea ice", "collection": "router_notes", "k": 2}
    assert out.output is None and "retrieve.bm25" in out.reason and "collection 'router_notes'" in out.reason


def test_execute_runs_the_chosen_tool(notes):
    out = vltools.call("agent.ask", {"request": "keyword search router_notes for 'Neptune seasons'"})
    assert out.plan[-1].tool == "retrieve.bm25"
    assert out.output["hits"][0]["id"] == "nep"


def test_given_inputs_override_and_missing_fields_are_named(notes):
    out = vltools.call("agent.ask", {"request": "lexical keyword lookup for photosynthesis",
                                     "inputs": {"collection": notes, "k": 1}})
    assert out.output["hits"][0]["id"] == "co2" and out.input["k"] == 1
    with pytest.raises(InvalidInput, match="collection"):
        vltools.call("agent.ask", {"request": "lexical keyword lookup for photosynthesis"})
    dry = vltools.call("agent.ask", {"request": "lexical keyword lookup for photosynthesis", "execute": False})
    assert dry.missing == ["collection"] and dry.input is None


def test_chains_a_producer_when_an_input_is_consumed(notes):
    out = vltools.call("agent.ask", {
        "request": "select the evidence sentences relevant to the claim 'plants need carbon dioxide' from "
                   "documents retrieved from router_notes"})
    assert [s.tool for s in out.plan][-1] == "evidence.select"
    assert out.plan[0].tool.startswith("retrieve.")
    assert out.output["sentences"][0]["text"].startswith("Plants require carbon dioxide")


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with scripted messages; binding tools is a no-op (the script decides the calls)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self


def test_tool_calling_loop_over_registry_tools(notes):
    from vltools.agents.loop import run_tool_loop

    script = [
        AIMessage("", tool_calls=[{"name": "retrieve_bm25", "args": {"collection": notes, "query": "sea ice"},
                                   "id": "c1", "type": "tool_call"}]),
        AIMessage("", tool_calls=[{"name": "retrieve_bm25", "args": {"collection": "missing_coll", "query": "x"},
                                   "id": "c2", "type": "tool_call"}]),
        AIMessage("Arctic sea ice declined since 1979 [ice]."),
    ]
    out = run_tool_loop(ScriptedChatModel(messages=iter(script)), "what happened to arctic ice?",
                        ["retrieve.bm25", "retrieve.dense"])
    assert out["answer"].startswith("Arctic sea ice declined")
    assert [c[0] for c in out["calls"]] == ["retrieve.bm25", "retrieve.bm25"]
    tool_msgs = [m for m in out["messages"] if m.type == "tool"]
    assert '"ice"' in tool_msgs[0].content
    assert tool_msgs[1].status == "error" and "missing_coll" in tool_msgs[1].content  # errors reach the model


def test_bad_requests(run_cli):
    with pytest.raises(InvalidInput):
        vltools.call("agent.ask", {"request": "   "})
    with pytest.raises(InvalidInput, match="chat model spec"):
        vltools.call("agent.ask", {"request": "search my notes", "llm": "gpt-4"})
    with pytest.warns(DeprecationWarning, match="use 'llm'"), pytest.raises(InvalidInput, match="chat model spec"):
        vltools.call("agent.ask", {"request": "search my notes", "model": "gpt-4"})  # the old name, until 0.2
    code, out, err = run_cli("call", "agent.ask", "--json", json.dumps(
        {"request": "what is the natural logic relation between hot and cold", "execute": False}))
    assert code == 0 and json.loads(out)["choice"][0]["tool"] == "natlog.relate"
