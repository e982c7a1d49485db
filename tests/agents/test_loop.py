"""The guarded tool-calling loop against a local scripted OpenAI-compatible server (langchain-openai)."""

from __future__ import annotations

import json

import pytest

import vltools
from tests.agents.openai_stub import StubChatServer
from vltools.agents.loop import run_tool_loop
from vltools.core.errors import NotFound

pytest.importorskip("langchain_openai")
DOCS = [{"id": "ice", "text": "Arctic sea ice has declined sharply since satellite records began in 1979."},
        {"id": "nep", "text": "The long orbital period of Neptune results in seasons lasting forty years."}]


@pytest.fixture
def loop_notes():
    vltools.call("collection.create", {"name": "loop_notes", "text_model": "none", "exist_ok": True})
    vltools.call("collection.add", {"collection": "loop_notes", "documents": DOCS, "upsert": True})
    vltools.call("collection.create", {"name": "loop_scratch", "text_model": "none", "exist_ok": True})
    yield "loop_notes"
    for name in ("loop_notes", "loop_scratch"):
        try:
            vltools.call("collection.delete", {"collection": name})
        except NotFound:
            pass


@pytest.fixture(autouse=True)
def _endpoints(monkeypatch):
    """openai: specs name operator-configured endpoints; each test names its stub server 'stub'."""
    from vltools.core.settings import reset_settings

    monkeypatch.setenv("VLTOOLS_LLM_ENDPOINTS", "{}")  # recorded, so undo() removes what _spec sets
    yield
    monkeypatch.undo()
    reset_settings()


def _spec(stub: StubChatServer) -> str:
    import os

    from vltools.core.settings import reset_settings

    os.environ["VLTOOLS_LLM_ENDPOINTS"] = json.dumps({"stub": {"base_url": stub.base_url}})
    reset_settings()
    return "openai:stub#stub-model"


def _exists(name: str) -> bool:
    return name in [c.name for c in vltools.call("collection.list", {}).collections]


def test_guard_stops_a_destructive_call_and_the_rest_runs(loop_notes):
    script = [[("collection_delete", {"collection": "loop_scratch"}),
               ("retrieve_bm25", {"collection": loop_notes, "query": "sea ice"})],
              "Searched; I did not delete loop_scratch."]
    with StubChatServer(script) as stub:
        out = run_tool_loop(_spec(stub), "clean up loop_scratch and search loop_notes for ice",
                            ["collection.delete", "retrieve.bm25", "agent.ask"])
        sent_back = stub.tool_messages(1)
        tools_offered = [t["function"]["name"] for t in stub.requests[0]["tools"]]
    assert _exists("loop_scratch"), "the guard let a destructive call run"
    assert [c[0] for c in out["calls"]] == ["retrieve.bm25"]
    assert len(out["refused"]) == 1 and "destructive" in out["refused"][0]
    refusal = next(m for m in sent_back if "Refused" in m["content"])
    assert "confirm" in refusal["content"]  # the model is told why
    assert any('"ice"' in m["content"] for m in sent_back)  # the allowed call ran and its result went back
    assert "agent_ask" not in tools_offered and "collection_delete" in tools_offered
    assert out["answer"].startswith("Searched")


def test_with_confirm_the_destructive_call_runs(loop_notes):
    script = [[("collection_delete", {"collection": "loop_scratch"})], "Deleted."]
    with StubChatServer(script) as stub:
        out = run_tool_loop(_spec(stub), "delete loop_scratch", ["collection.delete"],
                            confirm=True)
    assert not _exists("loop_scratch") and out["refused"] == [] and out["calls"][0][0] == "collection.delete"


def test_guard_stops_writes_into_an_input_folder(loop_notes, tmp_path):
    src = tmp_path / "pics"
    src.mkdir()
    (src / "mine.png").write_bytes(b"not really a png")
    script = [[("world_generate", {"out_dir": str(src), "images": 3, "videos": 0})], "ok"]
    with StubChatServer(script) as stub:
        out = run_tool_loop(_spec(stub),
                            f"put every picture in {src} into the shapes collection", ["world.generate", "image.index"])
        content = stub.tool_messages(1)[0]["content"]
    assert sorted(p.name for p in src.iterdir()) == ["mine.png"], "world.generate wrote into the user's folder"
    assert "reads from" in out["refused"][0] and "Refused" in content and out["calls"] == []


def test_tool_errors_reach_the_model(loop_notes):
    script = [[("retrieve_bm25", {"collection": "missing_coll", "query": "x"})], "That collection does not exist."]
    with StubChatServer(script) as stub:
        out = run_tool_loop(_spec(stub), "search missing_coll for x", ["retrieve.bm25"])
        msg = stub.tool_messages(1)[0]
    assert "missing_coll" in msg["content"] and out["refused"] == []
    assert json.dumps(stub.requests[0]["messages"][-1]).find("search missing_coll") > 0
