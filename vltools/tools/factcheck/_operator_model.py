"""The learnt operator of a (claim, evidence sentence) pair: P39's operator predictor, small.

Features of the pair (the lexical natural-logic proof's edits, coverage and verdict, number,
direction and negation signals, contrast cues, and the text encoder's cosine) go into a
multinomial logistic regression trained on CLIMATE-FEVER's evidence-level labels, split by
claim (``scripts/train_natlog_operator.py``). Its class maps to the natural-logic operator
of the pair: SUPPORTS -> forward entailment (the sentence entails the claim), REFUTES ->
alternation (negation when the proof has a polarity flip), NOT ENOUGH INFO -> independence.
The weights ship as JSON next to this module (no pickle); the claim-level thresholds that
turn sentence probabilities into a verdict or an abstention are calibrated per text encoder.
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


def predict(model: dict[str, Any], rows: list[list[float]]) -> list[dict[str, float]]:
    """Class probabilities per feature row (standardised, then softmax of the linear scores)."""
    mean, std = model["mean"], model["std"]
    out = []
    for row in rows:
        x = [(v - m) / s if s else 0.0 for v, m, s in zip(row, mean, std, strict=True)]
        scores = [b + sum(w * xi for w, xi in zip(ws, x, strict=True))
                  for ws, b in zip(model["coef"], model["intercept"], strict=True)]
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        z = sum(exp)
        out.append({c: e / z for c, e in zip(model["classes"], exp, strict=True)})
    return out


def thresholds(model: dict[str, Any], encoder: str) -> dict[str, float] | None:
    """The claim-level thresholds calibrated for ``encoder`` on the training split, or None."""
    return model.get("calibration", {}).get(encoder)


def decide(probs: list[dict[str, float]], th: dict[str, float]) -> tuple[str, int | None]:
    """Claim verdict from its sentences' probabilities: REFUTES when the strongest refuting sentence
    clears its threshold and beats the strongest supporting one by the margin, SUPPORTS when the
    strongest supporting sentence clears its threshold, otherwise abstain (NOT ENOUGH INFO).
    Returns the verdict and the deciding sentence's index."""
    if not probs:
        return "NOT ENOUGH INFO", None
    i_s = max(range(len(probs)), key=lambda i: probs[i]["SUPPORTS"])
    i_r = max(range(len(probs)), key=lambda i: probs[i]["REFUTES"])
    s, r = probs[i_s]["SUPPORTS"], probs[i_r]["REFUTES"]
    if r >= th["refutes"] and r - s >= th["margin"]:
        return "REFUTES", i_r
    if s >= th["supports"]:
        return "SUPPORTS", i_s
    return "NOT ENOUGH INFO", None
