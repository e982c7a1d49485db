"""graph.fact_check: multi-hop retrieval guided by natural logic, on real CLIMATE-FEVER sentences."""

from __future__ import annotations

import json

import pytest

import vltools
from vltools.core.errors import InvalidInput, NotFound, TooLarge

pytestmark = pytest.mark.heavy  # WordNet + MiniLM + a BM25 collection

A = "Carbon dioxide:20"  # "Carbon dioxide is the most significant long-lived greenhouse gas in Earth's atmosphere."
B = "Carbon dioxide:144"  # "Plants require carbon dioxide to conduct photosynthesis."
# Support split across two documents, bridged by "carbon dioxide", which the claim never names.
BRIDGE_CLAIM = ("Plants require the most significant long-lived greenhouse gas in Earth's atmosphere "
                "to conduct photosynthesis.")


@pytest.fixture(scope="module")
def climate_collection(shared_data):
    """300 real evidence sentences (the two bridge sentences among them) in a BM25 collection."""
    rows = [json.loads(line) for line in (shared_data / "climate-fever" / "corpus.jsonl").open()]
    keep = [r for r in rows if r["id"] in (A, B)] + [r for r in rows if r["id"] not in (A, B)][:298]
    docs = [{"id": r["id"], "title": r["title"], "text": r["text"]} for r in keep]
    vltools.call("collection.create", {"name": "cf_graph_test", "text_model": "none", "exist_ok": True})
    vltools.call("collection.add", {"collection": "cf_graph_test", "documents": docs, "upsert": True})
    return "cf_graph_test"


def test_split_support_is_verified_in_two_hops(climate_collection):
    """The rules' proof pools the sentences: each covers part of the claim (the learnt model, judging one
    sentence at a time, accepts sentence A alone: see test_the_model_path_records_hops)."""
    notes = []
    out = vltools.call("graph.fact_check", {"claim": BRIDGE_CLAIM, "collection": climate_collection, "k": 1,
                                            "per_hop": 1, "max_hops": 3, "operator_model": False},
                       progress=lambda d, t, n: notes.append(n))
    assert out.verdict == "SUPPORTS"
    assert out.hops == 2  # stopped as soon as the proof was decisive
    by_hop = {e.hop: e.doc_id for e in out.evidence}
    assert set(by_hop.values()) == {A, B} and set(by_hop) == {1, 2}
    assert len(out.queries) == 2 and out.queries[1] != out.queries[0]  # hop 2 conditioned on hop 1's evidence
    assert out.proof and out.states[-1] == "SUPPORTS"
    assert any(n.startswith("retrieve") for n in notes) and any(n.startswith("prove") for n in notes)
    parts = {p.claim_span: out.evidence[p.evidence_index].doc_id for p in out.parts if p.evidence_index is not None}
    assert parts["Plants"] == B and parts["greenhouse"] == A  # which sentence covered which part
    assert out.hop_log[1].query != BRIDGE_CLAIM and "Carbon dioxide" in out.hop_log[1].query  # uncovered + bridge
    # joint document/sentence retrieval: hop 2 expands the document of hop 1's best sentence (A's article)
    assert out.hop_log[0].expanded is None and out.hop_log[1].expanded == "Carbon dioxide"
    assert out.hop_log[1].query.endswith("Carbon dioxide")
    one = vltools.call("graph.fact_check", {"claim": BRIDGE_CLAIM, "collection": climate_collection, "k": 1,
                                            "per_hop": 1, "max_hops": 1, "operator_model": False})
    assert one.verdict == "NOT ENOUGH INFO" and one.hops == 1 and one.uncovered  # one hop is not enough


def test_antonym_refutes_with_given_evidence():
    evidence = ["Currently, surface temperatures are rising by about 0.2 °C per decade."]
    out = vltools.call("graph.fact_check", {"claim": "Currently, surface temperatures are falling by about "
                                            "0.2 °C per decade.", "evidence": evidence})
    assert out.verdict == "REFUTES" and out.hops == 0
    assert any(p.claim_span == "falling" and p.evidence_span == "rising" and p.source == "antonym"
               for p in out.proof)
    assert out.evidence[0].doc_id == "given:0"


@pytest.mark.parametrize(("hops", "used"), [(0, 1), (1000, 5)])
def test_hop_budget_is_clamped_with_a_notice(hops, used):
    out = vltools.call("graph.fact_check", {"claim": "Plants need carbon dioxide.", "max_hops": hops,
                                            "evidence": ["Plants require carbon dioxide to conduct photosynthesis."]})
    assert out.notices and f"clamped to {used}" in out.notices[0]
    assert out.verdict == "SUPPORTS"


def test_bad_inputs_are_clear_errors(climate_collection):
    with pytest.raises(InvalidInput, match="empty"):
        vltools.call("graph.fact_check", {"claim": "  ", "collection": climate_collection})
    with pytest.raises(TooLarge):
        vltools.call("graph.fact_check", {"claim": "x" * 100_000, "collection": climate_collection})
    with pytest.raises(InvalidInput, match="exactly one"):
        vltools.call("graph.fact_check", {"claim": "x", "collection": climate_collection, "evidence": ["y"]})
    with pytest.raises(NotFound):
        vltools.call("graph.fact_check", {"claim": "x", "collection": "no_such_collection"})


def test_cli_runs_the_graph(run_cli):
    code, out, _ = run_cli("call", "graph.fact_check", "--json", json.dumps(
        {"claim": "The U.S. had its coldest March–May on record in 2012.",
         "evidence": ["The U.S. had its warmest March–May on record in 2012."]}))
    assert code == 0
    assert json.loads(out)["verdict"] == "REFUTES"
    code, out, err = run_cli("call", "graph.fact_check", "--json", '{"claim": "", "evidence": ["a"]}')
    assert code == 2 and out == "" and "empty" in err


def test_graph_streams_node_progress_to_langgraph_custom_stream():
    from vltools.core.context import Context
    from vltools.graphs.fact_check import build_graph

    state = {"claim": "Plants need carbon dioxide.", "max_hops": 1, "params": {"llm": None},
             "evidence": [{"doc_id": "given:0", "text": "Plants require carbon dioxide.", "hop": 0, "score": 0.0}]}
    from vltools.core.registry import get_registry

    ctx = Context(registry=get_registry())  # nested tool calls run on the registry (core: Context.registry)
    events = list(build_graph().stream(state, {"configurable": {"vltools_ctx": ctx}}, stream_mode="custom"))
    assert [e["node"] for e in events] == ["prove"]
    final = build_graph().invoke(state, {"configurable": {"vltools_ctx": ctx}})  # the LangGraph state itself
    assert final["proof"]["verdict"] == final["proof"]["states"][-1]
    assert final["proof"]["proof"] and all(p["origin"] for p in final["proof"]["proof"])
    assert final["proof"]["parts"]


def test_graphs_and_the_agent_over_mcp_with_progress(climate_collection):
    """graph.fact_check and agent.ask are MCP tools with structured results and progress (graph.rag goes the same
    way through the registry; its CLI test covers it)."""
    import anyio
    from mcp.shared.memory import create_connected_server_and_client_session

    from vltools.server import build_server

    got: dict[str, list[float]] = {}

    async def run():
        async with create_connected_server_and_client_session(build_server()) as client:
            out = {}
            for name, args in [
                ("graph_fact_check", {"claim": BRIDGE_CLAIM, "collection": climate_collection, "k": 1,
                                      "per_hop": 1, "max_hops": 3, "operator_model": False}),
                ("agent_ask", {"request": "fact-check this claim against my climate collection: "
                               "the sea level is rising", "execute": False}),
                ("graph_fact_check", {"claim": "", "collection": climate_collection}),
            ]:
                seen = got.setdefault(name, [])

                async def on_progress(progress, total, message, seen=seen):
                    seen.append(progress)

                out.setdefault(name, []).append(await client.call_tool(name, args, progress_callback=on_progress))
            return out

    out = anyio.run(run)
    fc, bad = out["graph_fact_check"]
    assert not fc.isError and fc.structuredContent["verdict"] == "SUPPORTS" and fc.structuredContent["hops"] == 2
    assert [h["hop"] for h in fc.structuredContent["hop_log"]] == [1, 2]  # the hop log comes back over MCP
    assert {s["origin"] for s in fc.structuredContent["proof"]} <= {"wordnet", "rule", "embedding"}
    assert got["graph_fact_check"]  # node progress reached the client
    ask = out["agent_ask"][0]
    assert not ask.isError and "graph.fact_check" in [c["tool"] for c in ask.structuredContent["choice"][:3]]
    assert bad.isError and "claim" in bad.content[0].text


def test_llm_reaches_the_reranker_of_evidence_selection(climate_collection):
    """graph.fact_check's `llm` is the model every LLM step uses, the evidence reranker included."""
    from vltools.testing.scripted_llm import ScriptedLLM, installed

    with installed(ScriptedLLM({"carbon": 3.0}, spec="scripted-fc")) as llm:
        out = vltools.call("graph.fact_check", {"claim": BRIDGE_CLAIM, "collection": climate_collection, "k": 3,
                                                "per_hop": 1, "max_hops": 1, "reranker": "rerank.pointwise",
                                                "llm": "scripted-fc"})
    pointwise = [c for c in llm.calls if c[0] == "next_token" and c[2]["candidates"] == ["Yes", "No"]]
    assert pointwise, llm.calls
    assert out.evidence and out.hops == 1


def test_example_workflow_2013_claim_is_not_supported_and_hops_are_logged(shared_data):
    """The shipped example (examples/fact_check_claims.yaml): its corpus says the 2030s, mid-century, 2016 ± 3."""
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[2] / "examples" / "data" / "climate_corpus.jsonl"
    docs = [json.loads(line) for line in corpus.open()]
    vltools.call("collection.create", {"name": "cf_example_test", "text_model": "none", "exist_ok": True})
    vltools.call("collection.add", {"collection": "cf_example_test", "documents": docs, "upsert": True})
    out = vltools.call("graph.fact_check", {
        "claim": "Scientists project that the Arctic will be ice-free in the summer of 2013.",
        "collection": "cf_example_test", "max_hops": 2})
    assert out.verdict != "SUPPORTS"
    assert [h.hop for h in out.hop_log] == list(range(1, out.hops + 1))
    assert [h.query for h in out.hop_log] == out.queries
    for h in out.hop_log:
        assert set(h.used) <= set(h.retrieved)
        assert set(h.used) == {e.doc_id for e in out.evidence if e.hop == h.hop}


def test_the_model_path_records_hops(climate_collection):
    out = vltools.call("graph.fact_check", {"claim": BRIDGE_CLAIM, "collection": climate_collection, "k": 1,
                                            "per_hop": 1, "max_hops": 3})
    assert out.decided_by in ("model", "rules") and out.sentences
    assert len(out.sentences) == len(out.evidence)
    assert out.hop_log and out.hop_log[0].query == BRIDGE_CLAIM and out.hop_log[0].used == [A]
    assert out.states[-1] == out.verdict
