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


def test_agent_ask_never_routes_to_itself():
    from vltools.agents.router import rank_entries
    from vltools.core.context import Context

    ranked = [n for n, _, _ in rank_entries("which tool should I use to do this, pick a tool and run it",
                                            Context().text())]
    assert "agent.ask" not in ranked and len(ranked) == len(vltools.registry().names()) - 1


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
    for execute in (True, False):  # a required field the request does not give: a question, not an error
        out = vltools.call("agent.ask", {"request": "lexical keyword lookup for photosynthesis", "execute": execute})
        assert out.missing == ["collection"] and out.input is None and out.output is None
        assert "collection" in out.questions[0] and notes in out.questions[0]
        assert not any(s.ran for s in out.plan)


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


# -- what must hold (issue 17) -------------------------------------------------------------------
DESTRUCTIVE = [e.name for e in vltools.registry().list() if e.effects == "destructive" and e.kind != "agent"]
# A complete, valid input per destructive entry; a new destructive entry must add one here.
DESTRUCTIVE_INPUTS = {"collection.delete": lambda: {"collection": "victim"}}
DESTRUCTIVE_REQUESTS = {"collection.delete": ["delete the victim collection", "Clean up the old entries in victim",
                                              "get rid of victim, I don't need it anymore"]}


@pytest.fixture
def spy(monkeypatch):
    """Names of every registry call made (agent.ask's own and the ones it makes)."""
    from vltools.core.registry import Registry

    called: list[str] = []
    real = Registry.call

    def call(self, name, inp=None, **kw):
        called.append(self.spec(name).name)
        return real(self, name, inp, **kw)

    monkeypatch.setattr(Registry, "call", call)
    return called


def test_every_destructive_entry_has_a_test_input():
    assert DESTRUCTIVE and set(DESTRUCTIVE) <= set(DESTRUCTIVE_INPUTS), "add the new destructive entry's input"


@pytest.mark.parametrize("name", DESTRUCTIVE)
def test_destructive_entries_never_run_without_confirm(name, spy):
    vltools.call("collection.create", {"name": "victim", "text_model": "none", "exist_ok": True})
    requests = [*DESTRUCTIVE_REQUESTS.get(name, []), *(get_examples(name))]
    for request in requests:
        for inputs in ({}, DESTRUCTIVE_INPUTS[name]()):
            spy.clear()
            out = vltools.call("agent.ask", {"request": request, "inputs": inputs, "execute": True})
            assert name not in spy[1:], f"{name} ran for {request!r} without confirm"
            if out.plan and out.plan[-1].tool == name and not out.missing:
                assert out.needs_confirmation and "confirm" in out.reason
                assert out.plan[-1].input and not out.plan[-1].ran
    assert "victim" in [c.name for c in vltools.call("collection.list", {}).collections]
    out = vltools.call("agent.ask", {"request": requests[0], "inputs": DESTRUCTIVE_INPUTS[name](), "confirm": True})
    assert out.plan[-1].tool == name and out.plan[-1].ran and not out.needs_confirmation


def get_examples(name: str) -> list[str]:
    return list(vltools.registry().spec(name).examples)


@pytest.mark.parametrize("request_", ["bake me a chocolate cake", "what's the weather in Paris tomorrow",
                                      "book a flight to Tokyo for next Monday"])
def test_out_of_scope_requests_run_nothing(request_, spy):
    out = vltools.call("agent.ask", {"request": request_})
    assert out.choice is None and out.plan == [] and out.output is None and "no tool fits" in out.reason
    assert spy == ["agent.ask"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("router_world")
    out = vltools.call("world.generate", {"out_dir": str(root / "w"), "images": 4, "videos": 0, "seed": 5,
                                          "single": True, "image_size": 64})
    return root, out


def test_cli_fills_images_and_labels_and_runs_image_classify(run_cli, world):
    img = world[1].image_files[0]
    code, out, err = run_cli("call", "agent.ask", "--json", json.dumps(
        {"request": f"which label fits {img} best: heart, star or circle?"}))
    assert code == 0, err
    res = json.loads(out)
    step = res["plan"][-1]
    assert step["tool"] == "image.classify" and step["ran"]
    assert step["input"]["images"] == [img] and step["input"]["labels"] == ["heart", "star", "circle"]
    result = res["output"]["results"][0]
    assert result["image"] == img and result["label"] in ("heart", "star", "circle")


def test_writes_never_go_into_the_input_folder(world, spy):
    root, gen = world
    folder = str(root / "w" / "images")
    before = sorted(p.name for p in (root / "w" / "images").iterdir())
    out = vltools.call("agent.ask", {"request": f"put every picture in {folder} into the shapes_in collection"})
    assert sorted(p.name for p in (root / "w" / "images").iterdir()) == before
    assert "world.generate" not in spy
    assert [s.tool for s in out.plan] == ["image.index"] and out.plan[0].input["collection"] == "shapes_in"
    assert out.output["added"] == len(before)


def test_multi_step_plan_feeds_each_step(world):
    root, _ = world
    folder = str(root / "w" / "images")
    out = vltools.call("agent.ask", {"request": f"index the pictures in {folder} into photos_ms, then find red hearts"})
    assert [(s.tool, s.ran) for s in out.plan] == [("image.index", True), ("image.search", True)]
    assert out.plan[0].input["paths"] == [folder] and out.plan[1].input == {"collection": "photos_ms",
                                                                            "query": "red hearts"}
    assert out.output["hits"] and out.output["hits"][0]["path"].startswith(folder)
    dry = vltools.call("agent.ask", {"request": "describe the photos_ms collection, then delete the photos_ms "
                                                "collection"})
    assert dry.needs_confirmation and not any(s.ran for s in dry.plan)  # nothing runs before a refused step


def test_agent_ask_with_a_tool_calling_llm_is_guarded(spy, monkeypatch):
    from tests.agents.openai_stub import StubChatServer
    from vltools.core.settings import reset_settings

    vltools.call("collection.create", {"name": "victim", "text_model": "none", "exist_ok": True})
    script = [[("collection_delete", {"collection": "victim"})], "I was not allowed to delete it."]
    with StubChatServer(script) as stub:
        # openai: specs name operator-configured endpoints (a raw URL in a call is refused)
        monkeypatch.setenv("VLTOOLS_LLM_ENDPOINTS", json.dumps({"stub": {"base_url": stub.base_url}}))
        reset_settings()
        try:
            out = vltools.call("agent.ask", {"request": "delete the victim collection",
                                             "llm": "openai:stub#stub-model"})
        finally:
            monkeypatch.undo()
            reset_settings()
        offered = [t["function"]["name"] for t in stub.requests[0]["tools"]]
    assert "collection_delete" in offered and "agent_ask" not in offered
    assert "collection.delete" not in spy and out.plan == [] and "refused" in out.reason
    assert "victim" in [c.name for c in vltools.call("collection.list", {}).collections]
