"""Train the natural-logic operator model of natlog.prove on CLIMATE-FEVER (reproduces the shipped JSON).

Split BY CLAIM (seeded shuffle of claim ids): 60% train, 20% dev, 20% test. Per text encoder:
the sentence model (logistic regression over the lexical proof's features and the encoder's pair
interaction u*v, |u-v|) is fitted on the training claims' evidence-level labels, its regularisation
picked on the dev claims' pairs; the claim model (logistic regression over the sentences'
probabilities aggregated across sentences) is fitted on out-of-fold sentence probabilities of the
training claims (grouped by claim), its regularisation picked on the dev claims; its per-class
offsets (the abstention) are calibrated on the dev claims. The test claims are used for nothing
here: their ids are written out for benchmarks/bench_fact_check.py.

    nice -n 19 .venv/bin/python scripts/train_natlog_operator.py [--text-model minilm ...] [--limit N]
    (one run: ~1 min of fitting once the per-pair features and embeddings are cached; computing those
    is the long part, ~15 min on the shared 2-core machine)
Writes vltools/tools/factcheck/natlog_operator.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "climate-fever"
OUT = ROOT / "vltools" / "tools" / "factcheck" / "natlog_operator.json"
SEED = 18
LABEL = {"SUPPORTS": "SUPPORTS", "REFUTES": "REFUTES", "NOT_ENOUGH_INFO": "NOT ENOUGH INFO"}


def split(claims: list[dict]) -> dict[str, list[str]]:
    """Claim ids into train/dev/test (60/20/20), by a seeded shuffle of the sorted ids."""
    ids = sorted(c["id"] for c in claims)
    random.Random(SEED).shuffle(ids)
    a, b = int(0.6 * len(ids)), int(0.8 * len(ids))
    return {"train": ids[:a], "dev": ids[a:b], "test": ids[b:]}


def features(claims: list[dict], encoders: list[str], cache: Path) -> dict[str, dict]:
    """Per claim: the lexical-proof features of each evidence sentence (cached) and cosines per encoder."""
    from vltools.core.settings import Settings
    from vltools.models.text import get_text_encoder
    from vltools.tools.factcheck._natlog import Lexicon, prove
    from vltools.tools.factcheck._operator_model import pair_features
    from vltools.tools.factcheck._parse import parse
    from vltools.tools.factcheck._wordnet import get_wordnet

    done = json.loads(cache.read_text()) if cache.exists() else {}
    lex = Lexicon(get_wordnet())
    t0 = time.time()
    for i, c in enumerate(claims):
        if c["id"] in done:
            continue
        sents = [e["text"] for e in c["evidence"]]
        rows = []
        for s in sents:
            p = prove(c["claim"], [s], lex, parse=parse)
            rows.append(pair_features(c["claim"], s, p, 0.0, 0.0))
        done[c["id"]] = {"rows": rows, "labels": [LABEL[e["label"]] for e in c["evidence"]], "cos": {}}
        if i % 50 == 0:
            sys.stderr.write(f"features {i}/{len(claims)} {time.time() - t0:.0f}s\n")
            cache.write_text(json.dumps(done))
    settings = Settings()
    for spec in encoders:
        vec = embeddings(claims, spec, cache, settings, get_text_encoder)
        for c in claims:
            done[c["id"]]["cos"][spec] = [float(vec[c["claim"]] @ vec[e["text"]]) for e in c["evidence"]]
    cache.write_text(json.dumps(done))
    return done


def embeddings(claims: list[dict], spec: str, cache: Path, settings: object, get: object) -> dict:
    """Unit-norm embeddings of every claim and evidence text under encoder ``spec`` (cached beside ``cache``)."""
    import numpy as np

    path = cache.with_name(f"{cache.stem}_emb_{spec.replace(':', '_').replace('/', '_')}.npz")
    have: dict = {}
    if path.exists():
        z = np.load(path, allow_pickle=True)
        have = dict(zip(z["texts"].tolist(), z["V"], strict=True))
    texts = sorted({c["claim"] for c in claims} | {e["text"] for c in claims for e in c["evidence"]})
    todo = [t for t in texts if t not in have]
    if todo:
        enc = get(spec, settings)  # type: ignore[operator]
        have.update(zip(todo, enc.encode(todo), strict=True))
        keys = sorted(have)
        np.savez(path, texts=np.array(keys, dtype=object), V=np.stack([have[k] for k in keys]))
    return have


def rows_of(feats: dict, ids: list[str], spec: str, vec: dict, claims: dict
            ) -> tuple[list[list[float]], list[str], list[str]]:
    """Sentence rows (lexical features with this encoder's cosine, then the pair vector), labels, claim ids."""
    from vltools.tools.factcheck._operator_model import pair_vector

    X, y, groups = [], [], []
    for cid in ids:
        f = feats[cid]
        cos = f["cos"][spec]
        u = vec[claims[cid]["claim"]]
        for row, lab, cs, ev in zip(f["rows"], f["labels"], cos, claims[cid]["evidence"], strict=True):
            r = list(row)
            r[0], r[1] = cs, cs - max(cos)
            X.append(r + pair_vector(u, vec[ev["text"]]))
            y.append(lab)
            groups.append(cid)
    return X, y, groups


def metrics(gold: list[str], pred: list[str]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))
    return acc, float(f1_score(gold, pred, labels=list(LABEL.values()), average="macro", zero_division=0))


def _r(xs: object) -> object:
    """Round floats (nested lists) to 6 significant digits: the JSON stays small."""
    if isinstance(xs, list):
        return [_r(x) for x in xs]
    return float(f"{float(xs):.6g}")  # type: ignore[arg-type]


def _standardise(X: object) -> tuple[object, object]:
    import numpy as np

    Xa = np.asarray(X, dtype=float)
    mean, std = Xa.mean(0), Xa.std(0)
    std[std < 1e-9] = 0.0
    return mean, std


def _z(X: object, mean: object, std: object) -> object:
    import numpy as np

    Xa = np.asarray(X, dtype=float)
    return np.where(std > 0, (Xa - mean) / np.where(std > 0, std, 1.0), 0.0)


def train_encoder(spec: str, feats: dict, claims: dict, parts: dict, gold: dict, vec: dict) -> tuple[dict, dict]:
    """The sentence and claim models for one encoder, and their dev report."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from vltools.tools.factcheck import _operator_model as om

    train = [c for c in parts["train"] if c in feats]
    dev = [c for c in parts["dev"] if c in feats]
    X, y, groups = rows_of(feats, train, spec, vec, claims)
    Xd, yd, gd = rows_of(feats, dev, spec, vec, claims)
    mean, std = _standardise(X)
    Z, Zd = _z(X, mean, std), _z(Xd, mean, std)
    report: dict = {"dev_pairs_by_C": {}}
    best = None
    for C in (0.001, 0.003, 0.01, 0.03):
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(Z, y)
        acc, f1 = metrics(yd, list(clf.predict(Zd)))
        report["dev_pairs_by_C"][str(C)] = {"accuracy": round(acc, 4), "macro_f1": round(f1, 4)}
        if best is None or f1 > best[1]:
            best = (C, f1, clf)
    C, _, clf = best
    sentence = {"C": C, "classes": list(clf.classes_), "coef": _r(clf.coef_.tolist()),
                "intercept": _r(clf.intercept_.tolist()), "mean": _r(mean.tolist()), "std": _r(std.tolist())}
    oof = cross_val_predict(LogisticRegression(C=C, class_weight="balanced", max_iter=3000), Z, y,
                            groups=groups, cv=GroupKFold(5), method="predict_proba")
    dev_probs = clf.predict_proba(Zd)

    def claim_rows(P: object, rows: list, grp: list[str], ids: list[str]) -> list[list[float]]:
        by: dict[str, list[int]] = {}
        for i, g in enumerate(grp):
            by.setdefault(g, []).append(i)
        out = []
        for cid in ids:
            probs = [dict(zip(clf.classes_, map(float, P[i]), strict=True)) for i in by[cid]]  # type: ignore[index]
            out.append(om.aggregate(probs, [rows[i] for i in by[cid]]))
        return out

    tr_ids = [c for c in train if gold[c] != "DISPUTED"]
    dv_ids = [c for c in dev if gold[c] != "DISPUTED"]
    A, Ad = claim_rows(oof, X, groups, tr_ids), claim_rows(dev_probs, Xd, gd, dv_ids)
    ya, yad = [gold[c] for c in tr_ids], [gold[c] for c in dv_ids]
    amean, astd = _standardise(A)
    ZA, ZAd = _z(A, amean, astd), _z(Ad, amean, astd)
    best2 = None
    report["dev_claims_by_C"] = {}
    for C2 in (0.03, 0.1, 0.3, 1.0):
        for cw in (None, "balanced"):
            agg = LogisticRegression(C=C2, class_weight=cw, max_iter=3000).fit(ZA, ya)
            acc, f1 = metrics(yad, list(agg.predict(ZAd)))
            report["dev_claims_by_C"][f"{C2} {cw}"] = {"accuracy": round(acc, 4), "macro_f1": round(f1, 4)}
            if best2 is None or acc + f1 > best2[1]:
                best2 = ((C2, cw), acc + f1, agg)
    (C2, cw), _, agg = best2
    claim = {"C": C2, "class_weight": cw, "features": list(om.AGG_FEATURES), "classes": list(agg.classes_),
             "coef": _r(agg.coef_.tolist()), "intercept": _r(agg.intercept_.tolist()), "mean": _r(amean.tolist()),
             "std": _r(astd.tolist())}
    logp = np.log(np.clip(agg.predict_proba(ZAd), 1e-12, 1))
    cls = list(agg.classes_)
    best3 = None
    grid = [x / 10 for x in range(-10, 11)]
    for bs in grid:
        for br in grid:
            off = np.array([{"SUPPORTS": bs, "REFUTES": br}.get(c, 0.0) for c in cls])
            pred = [cls[i] for i in (logp + off).argmax(1)]
            acc, f1 = metrics(yad, pred)
            key = (acc + f1, -abs(bs) - abs(br))  # ties: the smaller offsets
            if best3 is None or key > best3[0]:
                best3 = (key, {"SUPPORTS": bs, "REFUTES": br, "NOT ENOUGH INFO": 0.0}, acc, f1)
    _, bias, dacc, df1 = best3
    oof_pred = [cls[i] for i in (np.log(np.clip(agg.predict_proba(ZA), 1e-12, 1)) + np.array(
        [bias[c] for c in cls])).argmax(1)]
    tacc, tf1 = metrics(ya, oof_pred)
    report.update(dev_claims={"accuracy": round(dacc, 4), "macro_f1": round(df1, 4), "n": len(dv_ids),
                              "note": "C, class weight and offsets were chosen on these claims (optimistic)"},
                  train_claims_oof={"accuracy": round(tacc, 4), "macro_f1": round(tf1, 4), "n": len(tr_ids)})
    return {"sentence": sentence, "claim": claim, "bias": bias}, report


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-model", action="append", default=None, help="encoders to calibrate (default: minilm)")
    ap.add_argument("--limit", type=int, default=0, help="claims (0 = all 1,535); for a quick check only")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vltools_natlog_features.json"))
    args = ap.parse_args()
    from vltools.core.settings import Settings
    from vltools.models.text import get_text_encoder
    from vltools.tools.factcheck._operator_model import FEATURES

    t0 = time.time()
    encoders = args.text_model or ["minilm"]
    claims = [json.loads(line) for line in (DATA / "claims.jsonl").open()]
    parts = split(claims)
    if args.limit:
        keep = set(parts["train"][: int(0.6 * args.limit)] + parts["dev"][: int(0.2 * args.limit)])
        claims = [c for c in claims if c["id"] in keep]
    fit_ids = {cid for cid in parts["train"] + parts["dev"]}
    fit_claims = [c for c in claims if c["id"] in fit_ids]  # never the test claims
    feats = features(fit_claims, encoders, args.cache)
    by_id = {c["id"]: c for c in fit_claims}
    gold = {c["id"]: LABEL.get(c["label"], c["label"]) for c in claims}
    model: dict = {"features": list(FEATURES), "pair_vector": "10*u*v, 10*|u-v| of the unit claim/sentence embeddings",
                   "encoders": {}, "report": {}}
    for spec in encoders:
        vec = embeddings(fit_claims, spec, args.cache, Settings(), get_text_encoder)
        model["encoders"][spec], model["report"][spec] = train_encoder(spec, feats, by_id, parts, gold, vec)
    model["training"] = {
        "data": "CLIMATE-FEVER evidence-level labels (Diggelmann et al. 2020) of the train claims",
        "split": f"by claim: sorted ids shuffled with random.Random({SEED}); 60/20/20 train/dev/test",
        "n_claims": {k: len(v) for k, v in parts.items()},
        "train_pairs": sum(len(feats[c]["rows"]) for c in parts["train"] if c in feats),
        "test_ids_sha1": hashlib.sha1("\n".join(sorted(parts["test"])).encode()).hexdigest(),
        "limit": args.limit or None,
        "seconds": round(time.time() - t0, 1),
    }
    model["test_ids"] = sorted(parts["test"])
    OUT.write_text(json.dumps(model, separators=(",", ":")))
    sys.stderr.write(json.dumps(model["report"], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
