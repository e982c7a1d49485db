"""evidence.select: sentences of passages scored against a claim (MiniLM cosine or a reranker)."""

from __future__ import annotations

import pytest

import vltools
from vltools.core.errors import InvalidInput

pytestmark = pytest.mark.heavy  # loads MiniLM


def test_evidence_select_picks_the_relevant_sentence():
    passages = [
        {"id": "a", "text": "Plants require carbon dioxide to conduct photosynthesis. Bees pollinate flowers."},
        {"id": "b", "text": "The long orbital period of Neptune results in seasons lasting forty years."},
    ]
    out = vltools.call("evidence.select", {"claim": "Photosynthesis needs CO2.", "passages": passages, "k": 2})
    assert out.sentences[0].doc_id == "a"
    assert out.sentences[0].text.startswith("Plants require")
    assert out.scorer.startswith("cosine:")
    with pytest.raises(InvalidInput, match="rerank"):
        vltools.call("evidence.select", {"claim": "x", "passages": passages, "reranker": "retrieve.bm25"})
