"""The operator model's claim-level aggregation (no WordNet, no encoder): the claim verdict follows
the strongest sentence judgements, the calibrated offsets turn confident verdicts into abstentions,
and the shipped weights hold one sentence and one claim model per text encoder, with the held-out
claims named apart."""

from __future__ import annotations

import json
import random

from vltools.tools.factcheck import _operator_model as om

CLASSES = ["NOT ENOUGH INFO", "REFUTES", "SUPPORTS"]


def row(**signals: float) -> list[float]:
    r = [0.0] * len(om.FEATURES)
    for name, v in signals.items():
        r[om.FEATURES.index(name)] = v
    return r


def toy_model(bias: dict[str, float] | None = None) -> dict:
    """Claim model: SUPPORTS score = 8*max_s, REFUTES score = 8*max_r, NEI score = 4 (no standardising)."""
    n = len(om.AGG_FEATURES)
    coef = {c: [0.0] * n for c in CLASSES}
    coef["SUPPORTS"][om.AGG_FEATURES.index("max_s")] = 8.0
    coef["REFUTES"][om.AGG_FEATURES.index("max_r")] = 8.0
    return {"claim": {"classes": CLASSES, "coef": [coef[c] for c in CLASSES], "intercept": [4.0, 0.0, 0.0],
                      "mean": [0.0] * n, "std": [1.0] * n}, "bias": bias or {}}


def p(s: float, r: float) -> dict[str, float]:
    return {"SUPPORTS": s, "REFUTES": r, "NOT ENOUGH INFO": 1 - s - r}


def test_claim_verdict_follows_the_strongest_sentence_and_names_it():
    probs = [p(0.1, 0.1), p(0.9, 0.05), p(0.2, 0.3)]
    rows = [row(coverage=0.2), row(coverage=0.9, lex_supports=1), row(n_num_mismatch=1)]
    verdict, at, cp = om.decide(toy_model(), probs, rows)
    assert (verdict, at) == ("SUPPORTS", 1) and abs(sum(cp.values()) - 1) < 1e-9
    verdict, at, _ = om.decide(toy_model(), [p(0.1, 0.05), p(0.05, 0.95)], rows[:2])
    assert (verdict, at) == ("REFUTES", 1)
    verdict, at, _ = om.decide(toy_model(), [p(0.2, 0.1), p(0.3, 0.2)], rows[:2])
    assert (verdict, at) == ("NOT ENOUGH INFO", None)  # no sentence is strong enough: abstain
    agg = om.aggregate(probs, rows)
    assert len(agg) == len(om.AGG_FEATURES)
    named = dict(zip(om.AGG_FEATURES, agg, strict=True))
    assert named["max_s"] == 0.9 and named["second_s"] == 0.2 and named["any_num_mismatch"] == 1.0
    assert named["max_coverage"] == 0.9 and named["votes_s"] == 1 / 3


def test_calibrated_offsets_are_the_abstention():
    probs, rows = [p(0.9, 0.05)], [row()]
    assert om.decide(toy_model(), probs, rows)[0] == "SUPPORTS"
    assert om.decide(toy_model({"SUPPORTS": -5.0}), probs, rows)[0] == "NOT ENOUGH INFO"
    assert om.decide(toy_model(), [], [])[0] == "NOT ENOUGH INFO"


def test_shipped_model_per_encoder_and_held_out_claims(shared_data):
    model = om.load()
    enc = om.encoder_model(model, "minilm")
    assert enc is not None and om.encoder_model(model, "no-such-encoder") is None
    sent = enc["sentence"]
    assert len(sent["coef"][0]) == len(om.FEATURES) + 2 * 384  # lexical features + MiniLM pair vector
    assert enc["claim"]["features"] == list(om.AGG_FEATURES) and set(enc["bias"]) == set(om.CLASSES)
    # the held-out claims are the seeded by-claim split's last 20%, and the report says how it was fitted
    ids = sorted(json.loads(line)["id"] for line in (shared_data / "climate-fever" / "claims.jsonl").open())
    random.Random(18).shuffle(ids)
    assert model["test_ids"] == sorted(ids[int(0.8 * len(ids)):])
    assert model["report"]["minilm"]["dev_claims"]["n"] > 200
