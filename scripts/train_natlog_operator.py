"""Train the natural-logic operator model of natlog.prove on CLIMATE-FEVER (reproduces the shipped JSON).

Split BY CLAIM (seeded shuffle of claim ids): 60% train, 20% dev, 20% test. The logistic
regression is fitted on the training claims' evidence-level labels; its regularisation is picked
on the dev claims' pairs; the claim-level thresholds (verdict or abstention) are calibrated on
the training claims from out-of-fold probabilities (grouped by claim), per text encoder. The
test claims are used for nothing here: their ids are written out for benchmarks/bench_fact_check.py.

    nice -n 19 .venv/bin/python scripts/train_natlog_operator.py [--text-model minilm ...] [--limit N]
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
        todo = [c for c in claims if spec not in done[c["id"]]["cos"]]
        if not todo:
            continue
        enc = get_text_encoder(spec, settings)
        texts = sorted({c["claim"] for c in todo} | {e["text"] for c in todo for e in c["evidence"]})
        vec = dict(zip(texts, enc.encode(texts), strict=True))
        for c in todo:
            done[c["id"]]["cos"][spec] = [float(vec[c["claim"]] @ vec[e["text"]]) for e in c["evidence"]]
    cache.write_text(json.dumps(done))
    return done


def rows_of(feats: dict, ids: list[str], spec: str) -> tuple[list[list[float]], list[str], list[str]]:
    X, y, groups = [], [], []
    for cid in ids:
        f = feats[cid]
        cos = f["cos"][spec]
        for row, lab, cs in zip(f["rows"], f["labels"], cos, strict=True):
            r = list(row)
            r[0], r[1] = cs, cs - max(cos)
            X.append(r)
            y.append(lab)
            groups.append(cid)
    return X, y, groups


def claim_scores(probs: list[dict], groups: list[str]) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for p, g in zip(probs, groups, strict=True):
        by.setdefault(g, []).append(p)
    return by


def metrics(gold: list[str], pred: list[str]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))
    return acc, float(f1_score(gold, pred, labels=list(LABEL.values()), average="macro", zero_division=0))


def calibrate(by_claim: dict[str, list[dict]], gold: dict[str, str]) -> tuple[dict[str, float], float, float]:
    """Grid search of the claim thresholds maximising macro-F1 + accuracy on the given claims."""
    from vltools.tools.factcheck._operator_model import decide

    ids = [c for c in by_claim if gold[c] != "DISPUTED"]
    g = [gold[c] for c in ids]
    best = None
    grid = [x / 40 for x in range(4, 37)]
    for ts in grid:
        for tr in grid:
            for margin in (-0.2, -0.1, 0.0, 0.1, 0.2):
                th = {"supports": ts, "refutes": tr, "margin": margin}
                pred = [decide(by_claim[c], th)[0] for c in ids]
                acc, f1 = metrics(g, pred)
                if best is None or acc + f1 > best[1] + best[2]:
                    best = (th, acc, f1)
    assert best is not None
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-model", action="append", default=None, help="encoders to calibrate (default: minilm)")
    ap.add_argument("--limit", type=int, default=0, help="claims (0 = all 1,535); for a quick check only")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vltools_natlog_features.json"))
    args = ap.parse_args()
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from vltools.tools.factcheck._operator_model import FEATURES, decide

    encoders = args.text_model or ["minilm"]
    claims = [json.loads(line) for line in (DATA / "claims.jsonl").open()]
    parts = split(claims)
    if args.limit:
        keep = set(parts["train"][: int(0.6 * args.limit)] + parts["dev"][: int(0.2 * args.limit)])
        claims = [c for c in claims if c["id"] in keep]
    fit_ids = {cid for cid in parts["train"] + parts["dev"]}
    feats = features([c for c in claims if c["id"] in fit_ids], encoders, args.cache)  # never the test claims
    gold = {c["id"]: LABEL.get(c["label"], c["label"]) for c in claims}
    train = [c for c in parts["train"] if c in feats]
    dev = [c for c in parts["dev"] if c in feats]
    model: dict = {"features": list(FEATURES), "classes": None, "calibration": {}, "report": {}}
    spec0 = encoders[0]
    X, y, groups = rows_of(feats, train, spec0)
    Xd, yd, gd = rows_of(feats, dev, spec0)
    Xa, Xda = np.array(X), np.array(Xd)
    mean, std = Xa.mean(0), Xa.std(0)
    std[std == 0] = 1.0
    std[-1] = 0.0  # the bias feature is constant; the intercept carries it
    Z, Zd = (Xa - mean) / np.where(std == 0, 1, std), (Xda - mean) / np.where(std == 0, 1, std)
    Z[:, -1], Zd[:, -1] = 0.0, 0.0
    best = None
    for C in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0):
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(Z, y)
        acc, f1 = metrics(yd, list(clf.predict(Zd)))
        model["report"].setdefault("dev_pairs_by_C", {})[str(C)] = {"accuracy": acc, "macro_f1": f1}
        if best is None or f1 > best[1]:
            best = (C, f1, clf)
    C, _, clf = best
    model.update(C=C, classes=list(clf.classes_), coef=clf.coef_.tolist(), intercept=clf.intercept_.tolist(),
                 mean=mean.tolist(), std=std.tolist())
    for spec in encoders:
        X, y, groups = rows_of(feats, train, spec)
        Z = (np.array(X) - mean) / np.where(std == 0, 1, std)
        Z[:, -1] = 0.0
        oof = cross_val_predict(LogisticRegression(C=C, class_weight="balanced", max_iter=2000), Z, y,
                                groups=groups, cv=GroupKFold(5), method="predict_proba")
        probs = [dict(zip(clf.classes_, map(float, row), strict=True)) for row in oof]
        th, acc, f1 = calibrate(claim_scores(probs, groups), gold)
        model["calibration"][spec] = th
        Xd, _, gd = rows_of(feats, dev, spec)
        from vltools.tools.factcheck._operator_model import predict

        dev_by = claim_scores(predict(model, Xd), gd)
        ids = [c for c in dev_by if gold[c] != "DISPUTED"]
        dacc, df1 = metrics([gold[c] for c in ids], [decide(dev_by[c], th)[0] for c in ids])
        model["report"][spec] = {"train_claims_oof": {"accuracy": acc, "macro_f1": f1},
                                 "dev_claims": {"accuracy": dacc, "macro_f1": df1, "n": len(ids)}}
    model["training"] = {
        "data": "CLIMATE-FEVER evidence-level labels (Diggelmann et al. 2020) of the train claims",
        "split": f"by claim: sorted ids shuffled with random.Random({SEED}); 60/20/20 train/dev/test",
        "n_claims": {k: len(v) for k, v in parts.items()},
        "train_pairs": len(rows_of(feats, train, spec0)[1]),
        "test_ids_sha1": hashlib.sha1("\n".join(sorted(parts["test"])).encode()).hexdigest(),
        "limit": args.limit or None,
    }
    model["test_ids"] = sorted(parts["test"])
    OUT.write_text(json.dumps(model, indent=1))
    sys.stderr.write(json.dumps(model["report"], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
