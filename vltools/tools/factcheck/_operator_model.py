"""The learnt operator of a (claim, evidence sentence) pair and the claim-level aggregation: P39's
operator predictor, small.

Sentence level: features of the pair (the lexical natural-logic proof's edits, coverage and verdict,
number, direction and negation signals, contrast cues, the text encoder's cosine) plus the encoder's
pair interaction (u*v and |u-v| of the claim and sentence embeddings, as in InferSent) go into a
multinomial logistic regression trained on CLIMATE-FEVER's evidence-level labels of the training
claims, split by claim (``scripts/train_natlog_operator.py``). Its class maps to the natural-logic
operator of the pair: SUPPORTS -> forward entailment (the sentence entails the claim), REFUTES ->
alternation (negation when the proof has a polarity flip), NOT ENOUGH INFO -> independence.

Claim level: the sentences' probabilities and rule signals are aggregated across sentences (the
strongest, second strongest and mean support and refutation, votes, any exact-rule contradiction)
and a second logistic regression, trained on out-of-fold sentence probabilities of the training
claims, gives the verdict; its per-class offsets (the abstention) are calibrated on the dev claims,
per text encoder. The weights ship as JSON next to this module (no pickle).
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from typing import Any

CLASSES = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
CLASS_OPERATOR = {"SUPPORTS": "forward_entailment", "REFUTES": "alternation", "NOT ENOUGH INFO": "independence"}
WEIGHTS = "natlog_operator.json"
_CONTRAST = re.compile(r"\b(however|but|although|though|despite|contrary|myth|false|misconception|unlikely|"
                       r"uncertain|disputed|no evidence|not|no|never|little|rather than|instead)\b", re.I)
_HEDGE = re.compile(r"\b(may|might|could|possibly|suggests?|likely|projected|expected|estimated)\b", re.I)

FEATURES = (
    "cosine", "cosine_rel", "lex_supports", "lex_refutes", "lex_nei", "coverage", "n_equiv", "n_forward",
    "n_reverse_sub", "n_insert", "n_alt_wordnet", "n_num_match", "n_num_mismatch", "n_num_other", "n_direction",
    "negation_flip", "claim_neg", "evid_neg", "contrast", "hedge", "claim_len", "evid_len", "overlap", "bias_len",
)


def pair_features(claim: str, sentence: str, proof: Any, cosine: float, best_cosine: float) -> list[float]:
    """The feature vector of one (claim, sentence) pair; ``proof`` is ``prove(claim, [sentence])``."""
    ops = [(e.kind, e.operator, e.source) for e in proof.edits]
    content_c = max(1, sum(1 for k, _, _ in ops if k in ("substitution", "insertion")))

    def count(pred: Any) -> float:
        return float(sum(1 for k, o, s in ops if pred(k, o, s)))

    cw = set(re.findall(r"[a-z]{3,}", claim.lower()))
    ew = set(re.findall(r"[a-z]{3,}", sentence.lower()))
    return [
        cosine,
        cosine - best_cosine,
        float(proof.verdict == "SUPPORTS"),
        float(proof.verdict == "REFUTES"),
        float(proof.verdict == "NOT ENOUGH INFO"),
        proof.coverage,
        count(lambda k, o, s: k == "substitution" and o == "equivalence") / content_c,
        count(lambda k, o, s: k == "substitution" and o == "forward_entailment") / content_c,
        count(lambda k, o, s: k == "substitution" and o == "reverse_entailment") / content_c,
        count(lambda k, o, s: k == "insertion") / content_c,
        count(lambda k, o, s: o == "alternation" and s in ("antonym", "co-hyponym")),
        count(lambda k, o, s: s.startswith("number") and o in ("equivalence", "forward_entailment")),
        count(lambda k, o, s: s == "number mismatch"),
        count(lambda k, o, s: s in ("number (claim more precise)", "number (other head)")),
        count(lambda k, o, s: s == "rule: direction"),
        count(lambda k, o, s: k == "negation"),
        float(bool(re.search(r"\b(not|no|never|n't)\b", claim.lower()))),
        float(bool(re.search(r"\b(not|no|never|n't)\b", sentence.lower()))),
        float(len(_CONTRAST.findall(sentence))),
        float(len(_HEDGE.findall(sentence))),
        math.log1p(len(cw)),
        math.log1p(len(ew)),
        len(cw & ew) / max(1, len(cw)),
        1.0,
    ]


@cache
def load() -> dict[str, Any] | None:
    """The shipped weights, or None when the file is absent (then the rules decide alone)."""
    try:
        text = resources.files("vltools.tools.factcheck").joinpath(WEIGHTS).read_text()
    except (FileNotFoundError, OSError):
        return None
    return json.loads(text)


def encoder_model(model: dict[str, Any], encoder: str) -> dict[str, Any] | None:
    """The sentence and claim models trained and calibrated for ``encoder``, or None."""
    return model.get("encoders", {}).get(encoder)


def pair_vector(u: Any, v: Any) -> list[float]:
    """The encoder's pair interaction: u*v and |u-v| of unit-norm embeddings, scaled by 10."""
    return [10.0 * float(a * b) for a, b in zip(u, v, strict=True)] + [
        10.0 * abs(float(a - b)) for a, b in zip(u, v, strict=True)]


def _linear(block: dict[str, Any], rows: list[list[float]]) -> list[dict[str, float]]:
    mean, std = block["mean"], block["std"]
    out = []
    for row in rows:
        x = [(v - m) / s if s else 0.0 for v, m, s in zip(row, mean, std, strict=True)]
        scores = [b + sum(w * xi for w, xi in zip(ws, x, strict=True))
                  for ws, b in zip(block["coef"], block["intercept"], strict=True)]
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        z = sum(exp)
        out.append({c: e / z for c, e in zip(block["classes"], exp, strict=True)})
    return out


def predict(enc_model: dict[str, Any], rows: list[list[float]]) -> list[dict[str, float]]:
    """Sentence-level class probabilities per feature row (lexical features + pair vector)."""
    return _linear(enc_model["sentence"], rows)


AGG_FEATURES = (
    "max_s", "max_r", "mean_s", "mean_r", "min_n", "second_s", "second_r", "max_s_minus_r", "max_r_minus_s",
    "votes_s", "votes_r", "any_lex_supports", "any_lex_refutes", "any_num_mismatch", "any_direction",
    "any_negation_flip", "max_coverage",
)
_IDX = {name: i for i, name in enumerate(FEATURES)}


def aggregate(probs: list[dict[str, float]], rows: list[list[float]]) -> list[float]:
    """Claim-level features from its sentences' probabilities and lexical signals (cross-sentence)."""
    s = sorted((p["SUPPORTS"] for p in probs), reverse=True) or [0.0]
    r = sorted((p["REFUTES"] for p in probs), reverse=True) or [0.0]
    n = [p["NOT ENOUGH INFO"] for p in probs] or [1.0]
    k = max(1, len(probs))
    top = [max(p, key=p.get) for p in probs]

    def anyf(name: str) -> float:
        return float(any(row[_IDX[name]] > 0 for row in rows))

    return [
        s[0], r[0], sum(s) / k, sum(r) / k, min(n), s[1] if len(s) > 1 else 0.0, r[1] if len(r) > 1 else 0.0,
        max((p["SUPPORTS"] - p["REFUTES"] for p in probs), default=0.0),
        max((p["REFUTES"] - p["SUPPORTS"] for p in probs), default=0.0),
        top.count("SUPPORTS") / k, top.count("REFUTES") / k,
        anyf("lex_supports"), anyf("lex_refutes"), anyf("n_num_mismatch"), anyf("n_direction"), anyf("negation_flip"),
        max((row[_IDX["coverage"]] for row in rows), default=0.0),
    ]


def claim_probabilities(enc_model: dict[str, Any], agg: list[float]) -> dict[str, float]:
    """The claim-level model's class probabilities for the aggregated features."""
    return _linear(enc_model["claim"], [agg])[0]


def decide(enc_model: dict[str, Any], probs: list[dict[str, float]], rows: list[list[float]]
           ) -> tuple[str, int | None, dict[str, float]]:
    """Claim verdict from its sentences: the claim model's class with the largest log-probability plus
    its calibrated offset (NOT ENOUGH INFO is the abstention). Returns the verdict, the deciding
    sentence (the strongest for that verdict; None when abstaining) and the claim probabilities."""
    if not probs:
        return "NOT ENOUGH INFO", None, {c: float(c == "NOT ENOUGH INFO") for c in CLASSES}
    cp = claim_probabilities(enc_model, aggregate(probs, rows))
    bias = enc_model.get("bias", {})
    verdict = max(CLASSES, key=lambda c: math.log(max(cp[c], 1e-12)) + bias.get(c, 0.0))
    if verdict == "NOT ENOUGH INFO":
        return verdict, None, cp
    at = max(range(len(probs)), key=lambda i: probs[i][verdict])
    return verdict, at, cp
