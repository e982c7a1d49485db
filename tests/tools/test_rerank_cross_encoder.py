"""rerank.cross_encoder: plumbing with a tiny randomly initialised cross-encoder saved to a temp
folder (no downloads): every passage once, ordered by the model's own pair scores."""

from __future__ import annotations

import pytest

import vltools
from vltools.core.errors import InvalidInput, NotFound

WORDS = "jet engine thrust noise wing lift bread yeast dough flight supersonic flow".split()
PASSAGES = [
    {"id": "jet", "text": "jet engine thrust noise"},
    {"id": "bread", "text": "bread yeast dough"},
    {"id": "wing", "text": "wing lift flight"},
    {"id": "flow", "text": "supersonic flow over a wing"},
]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-ce")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, num_labels=1)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_ranks_by_the_models_own_pair_scores(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    spec = f"hf:{tiny_cross_encoder}"
    out = vltools.call("rerank.cross_encoder", {"query": "jet thrust", "passages": PASSAGES, "cross_encoder": spec})
    reference = CrossEncoder(str(tiny_cross_encoder), device="cpu")
    expected = reference.predict([("jet thrust", p["text"]) for p in PASSAGES])
    by_id = {p["id"]: float(s) for p, s in zip(PASSAGES, expected, strict=True)}
    assert [h.id for h in out.hits] == sorted(by_id, key=lambda i: -by_id[i])
    assert all(h.score == pytest.approx(by_id[h.id], abs=1e-5) for h in out.hits)
    assert [h.rank for h in out.hits] == [1, 2, 3, 4] and out.cross_encoder == spec
    top = vltools.call("rerank.cross_encoder", {"query": "jet thrust", "passages": PASSAGES, "cross_encoder": spec,
                                                "k": 2, "batch_size": 3})
    assert [h.id for h in top.hits] == [h.id for h in out.hits[:2]] and top.stats.forward_passes == 2


def test_bad_specs_are_clear_errors(tmp_path):
    with pytest.raises(NotFound):
        vltools.call("rerank.cross_encoder", {"query": "q", "passages": PASSAGES, "cross_encoder": f"hf:{tmp_path}/x"})
    with pytest.raises(InvalidInput, match="cross-encoder spec"):
        vltools.call("rerank.cross_encoder", {"query": "q", "passages": PASSAGES, "cross_encoder": "minilm"})
    with pytest.raises(InvalidInput):
        vltools.call("rerank.cross_encoder", {"query": "q", "passages": PASSAGES, "cross_encoder": "hf:x", "llm": "a"})


def test_registry_entry_declares_effects_and_fidelity():
    from vltools.core.registry import get_registry

    spec = get_registry().spec("rerank.cross_encoder")
    assert spec.effects == "read_only" and spec.fidelity == "baseline" and spec.fidelity_note
