"""graph.rag: hybrid retrieval → rerank → grounded answer with citations; refusal when nothing is relevant."""

from __future__ import annotations

import json

import pytest

import vltools
from vltools.core.errors import InvalidInput, NotFound

pytestmark = pytest.mark.heavy  # MiniLM + SmolLM2

# Real sentences from CLIMATE-FEVER's evidence pool (Wikipedia).
DOCS = [
    ("sea", "Global mean sea level rose about 16–21 cm between 1900 and 2016."),
    ("co2", "Carbon dioxide is the most significant long-lived greenhouse gas in Earth's atmosphere."),
    ("photo", "Plants require carbon dioxide to conduct photosynthesis."),
    ("nep", "The long orbital period of Neptune results in seasons lasting forty years."),
    ("reef", "The corals could then overgrow the submerged hills, to form the present cays and reefs."),
    ("winter", "In many regions, winter is associated with snow and freezing temperatures."),
]


@pytest.fixture(scope="module")
def wiki():
    vltools.call("collection.create", {"name": "rag_wiki", "text_model": "minilm", "exist_ok": True})
    vltools.call("collection.add", {"collection": "rag_wiki", "upsert": True,
                                    "documents": [{"id": i, "text": t} for i, t in DOCS]})
    return "rag_wiki"


def test_answers_from_the_relevant_passage_with_progress_per_node(wiki):
    notes: list[str] = []
    out = vltools.call("graph.rag", {"question": "What do plants need to conduct photosynthesis?",
                                     "collection": wiki, "top_n": 2, "max_tokens": 24},
                       progress=lambda d, t, n: notes.append(n))
    assert out.answerable and out.answer.strip()
    assert out.sources[0].id == "photo"
    assert set(out.citations) <= {s.id for s in out.sources}
    assert out.reranker.startswith("cosine:")
    for node in ("retrieve", "rerank", "answer"):
        assert any(n.startswith(node) for n in notes), (node, notes)


def test_says_it_cannot_answer_when_nothing_is_relevant(wiki):
    out = vltools.call("graph.rag", {"question": "Who won the 1966 football World Cup final?", "collection": wiki})
    assert not out.answerable
    assert "cannot answer" in out.answer and out.sources == [] and out.citations == []


def test_chosen_reranker_orders_the_passages(wiki):
    out = vltools.call("graph.rag", {"question": "How much did sea level rise since 1900?", "collection": wiki,
                                     "reranker": "rerank.pointwise", "k": 3, "top_n": 2, "max_tokens": 16})
    assert out.reranker == "rerank.pointwise" and out.answerable
    scores = [s.score for s in out.sources]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    assert {s.id for s in out.sources} <= {i for i, _ in DOCS}


def test_bad_input(wiki, run_cli):
    with pytest.raises(InvalidInput, match="rerank"):
        vltools.call("graph.rag", {"question": "q", "collection": wiki, "reranker": "retrieve.bm25"})
    with pytest.raises(NotFound):
        vltools.call("graph.rag", {"question": "q", "collection": "nope_rag"})
    code, out, err = run_cli("call", "graph.rag", "--json", json.dumps({"question": "", "collection": wiki}))
    assert code == 2 and out == ""


def test_llm_reaches_the_reranker_and_the_answer(wiki):
    """graph.rag's `llm` is the model every LLM step uses: the reranker and the answer."""
    from vltools.testing.scripted_llm import ScriptedLLM, installed

    scripted = ScriptedLLM({"sea": 5.0, "level": 5.0}, spec="scripted-rag", respond=lambda m: "It rose [sea].")
    with installed(scripted) as llm:
        out = vltools.call("graph.rag", {"question": "How much did sea level rise since 1900?", "collection": wiki,
                                         "reranker": "rerank.first", "k": 4, "top_n": 2, "llm": "scripted-rag"})
    kinds = [c[0] for c in llm.calls]
    assert "next_token_after" in kinds and "complete" in kinds  # FIRST reranked, then the same model answered
    assert out.sources[0].id == "sea" and out.answer.startswith("It rose")
