"""Benchmark graph.fact_check on CLIMATE-FEVER (../shared/data/climate-fever).

(a) gold evidence given: label accuracy and macro-F1 of the natural-logic verdicts vs the
    majority-class baseline, on SUPPORTS / REFUTES / NOT_ENOUGH_INFO claims (DISPUTED apart).
(b) retrieval: the pooled evidence corpus (5,240 sentences) as a collection; accuracy, how often
    a gold evidence sentence (sentence label SUPPORTS/REFUTES) was among those used, mean hops.

    .venv/bin/python benchmarks/bench_fact_check.py [--limit N] [--retrieval-limit N]
Writes benchmarks/results/fact_check.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "climate-fever"
REPO = Path(os.environ.get("VLTOOLS_BENCH_REPO", ROOT))  # the git repository holding --old-ref
LABELS = ["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"]


def norm(label: str) -> str:
    return "NOT ENOUGH INFO" if label == "NOT_ENOUGH_INFO" else label


def macro_f1(gold: list[str], pred: list[str]) -> float:
    f1s = []
    for lab in LABELS:
        tp = sum(g == p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(p == lab and g != lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


def summarise(rows: list[dict], majority: str) -> dict:
    main = [r for r in rows if r["gold"] != "DISPUTED"]
    gold, pred = [r["gold"] for r in main], [r["pred"] for r in main]
    out = {
        "n": len(main),
        "accuracy": sum(g == p for g, p in zip(gold, pred, strict=True)) / max(len(main), 1),
        "macro_f1": macro_f1(gold, pred),
        "majority_label": majority,
        "majority_accuracy": sum(g == majority for g in gold) / max(len(main), 1),
        "majority_macro_f1": macro_f1(gold, [majority] * len(gold)),
        "by_label": {},
        "confusion": {g: dict(Counter(r["pred"] for r in main if r["gold"] == g)) for g in LABELS},
        "disputed": {"n": sum(r["gold"] == "DISPUTED" for r in rows),
                     "predictions": dict(Counter(r["pred"] for r in rows if r["gold"] == "DISPUTED"))},
    }
    for lab in LABELS:
        sub = [r for r in main if r["gold"] == lab]
        out["by_label"][lab] = {"n": len(sub), "recall": sum(r["pred"] == lab for r in sub) / max(len(sub), 1)}
    return out


def run_gold(claims: list[dict], majority: str, operator_model: bool = True) -> dict:
    import vltools

    rows, t0 = [], time.time()
    for i, c in enumerate(claims):
        evidence = [e["text"] for e in c["evidence"]]
        if operator_model:
            out = vltools.call("graph.fact_check", {"claim": c["claim"], "evidence": evidence})
        else:  # ablation: the same proof, WordNet and the rules only
            out = vltools.call("natlog.prove", {"claim": c["claim"], "evidence": evidence, "operator_model": False})
        rows.append({"id": c["id"], "gold": norm(c["label"]), "pred": out.verdict})
        if i % 50 == 0:
            sys.stderr.write(f"gold {i}/{len(claims)} {time.time() - t0:.0f}s\n")
    res = summarise(rows, majority)
    res["seconds_per_claim"] = (time.time() - t0) / max(len(claims), 1)
    return res


_OLD_WORKER = """
import json, sys, torch, vltools
torch.set_num_threads(1)
collection = sys.argv[1] if len(sys.argv) > 1 else None
for line in sys.stdin:
    c = json.loads(line)
    if collection:
        out = vltools.call("graph.fact_check", {"claim": c["claim"], "collection": collection,
                                                "max_hops": int(sys.argv[2]), "k": 5, "per_hop": 3})
        row = {"id": c["id"], "pred": out.verdict, "hops": out.hops, "used": [e.doc_id for e in out.evidence]}
    else:
        out = vltools.call("graph.fact_check", {"claim": c["claim"], "evidence": [e["text"] for e in c["evidence"]]})
        row = {"id": c["id"], "pred": out.verdict}
    sys.stdout.write(json.dumps(row) + "\\n")
"""


def _old_rows(claims: list[dict], ref: str, extra: list[str]) -> dict[str, dict]:
    """Predictions of the version at git ``ref``, run in a subprocess on the same claims."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        feed = "".join(json.dumps(c) + "\n" for c in claims)
        done = subprocess.run([sys.executable, "-c", _OLD_WORKER, *extra], input=feed, capture_output=True,
                              text=True, env=env, cwd=tmp, check=True)
    return {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}


def run_old(claims: list[dict], majority: str, ref: str) -> dict:
    """The version before this change (git ``ref``), gold evidence, on the same claims."""
    t0 = time.time()
    preds = _old_rows(claims, ref, [])
    rows = [{"id": c["id"], "gold": norm(c["label"]), "pred": preds[c["id"]]["pred"]} for c in claims]
    res = summarise(rows, majority)
    res["seconds_per_claim"] = (time.time() - t0) / max(len(claims), 1)
    res["ref"] = ref
    return res


def run_retrieval(claims: list[dict], majority: str, collection: str, max_hops: int, ref: str | None = None) -> dict:
    """graph.fact_check with retrieval; ``ref``: the version at that git ref instead (in a subprocess)."""
    import vltools

    rows, t0 = [], time.time()
    old = _old_rows(claims, ref, [collection, str(max_hops)]) if ref else {}
    for i, c in enumerate(claims):
        if ref:
            o = old[c["id"]]
            verdict, hops, used = o["pred"], o["hops"], set(o["used"])
        else:
            out = vltools.call("graph.fact_check", {"claim": c["claim"], "collection": collection,
                                                    "max_hops": max_hops, "k": 5, "per_hop": 3})
            verdict, hops, used = out.verdict, out.hops, {e.doc_id for e in out.evidence}
        gold_ids = {e["id"] for e in c["evidence"] if e["label"] != "NOT_ENOUGH_INFO"}
        rows.append({"id": c["id"], "gold": norm(c["label"]), "pred": verdict, "hops": hops,
                     "gold_evidence_used": bool(gold_ids & used), "has_gold_evidence": bool(gold_ids)})
        if i % 25 == 0:
            sys.stderr.write(f"retrieval {i}/{len(claims)} {time.time() - t0:.0f}s\n")
    res = summarise(rows, majority)
    with_gold = [r for r in rows if r["has_gold_evidence"]]
    res["gold_evidence_hit_rate"] = sum(r["gold_evidence_used"] for r in with_gold) / max(len(with_gold), 1)
    res["claims_with_gold_evidence"] = len(with_gold)
    res["mean_hops"] = sum(r["hops"] for r in rows) / max(len(rows), 1)
    res["hops_by_label"] = {lab: sum(r["hops"] for r in rows if r["gold"] == lab) / max(1, sum(r["gold"] == lab
                            for r in rows)) for lab in [*LABELS, "DISPUTED"]}
    res["gold_hit_by_label"] = {  # None: no claim of that label has a SUPPORTS/REFUTES evidence sentence
        lab: (sum(r["gold_evidence_used"] for r in with_gold if r["gold"] == lab) / n_lab) if n_lab else None
        for lab in [*LABELS, "DISPUTED"]
        for n_lab in [sum(r["gold"] == lab for r in with_gold)]
    }
    res["seconds_per_claim"] = (time.time() - t0) / max(len(claims), 1)
    return res


def build_collection(name: str) -> None:
    import vltools

    docs = [json.loads(line) for line in (DATA / "corpus.jsonl").open()]
    vltools.call("collection.create", {"name": name, "text_model": "none", "exist_ok": True})
    info = vltools.call("collection.info", {"collection": name})
    if info.count < len(docs):
        vltools.call("collection.add", {"collection": name, "documents": docs, "upsert": True}, timeout=3600)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="held-out claims for (a); 0 = all of them")
    ap.add_argument("--retrieval-limit", type=int, default=60, help="held-out claims for (b) (first N, sorted ids)")
    ap.add_argument("--max-hops", type=int, default=3)
    ap.add_argument("--old-ref", default="646f3cb", help="git ref of the previous version (before this change)")
    ap.add_argument("--rules-only", action="store_true", help="also run the rules-only ablation")
    args = ap.parse_args()
    import torch

    from vltools.tools.factcheck._operator_model import load

    torch.set_num_threads(1)  # the machine is shared; one thread is several times faster under load
    model = load()
    if model is None:
        sys.stderr.write("no operator model: run scripts/train_natlog_operator.py first\n")
        return 1
    claims = {c["id"]: c for c in map(json.loads, (DATA / "claims.jsonl").open())}
    test_ids = sorted(model["test_ids"])  # held out by scripts/train_natlog_operator.py: never trained or tuned on
    train_ids = set(claims) - set(test_ids)
    majority = Counter(norm(claims[i]["label"]) for i in train_ids if claims[i]["label"] != "DISPUTED"
                       ).most_common(1)[0][0]
    test = [claims[i] for i in test_ids][: args.limit or None]
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"dataset": "CLIMATE-FEVER held-out test claims (split by claim in "
                                "scripts/train_natlog_operator.py; DISPUTED reported apart)",
                     "split": model["training"], "majority_from": "training + dev claims", "old_ref": args.old_ref}
    started = time.time()

    def save() -> None:  # after every stage: a run cut short keeps what it measured
        results["wall_seconds"] = round(time.time() - started, 1)
        (out / "fact_check.json").write_text(json.dumps(results, indent=2))
        if "retrieval" in results and "retrieval_old" in results:
            (out / "fact_check.md").write_text(render(results))

    results["gold_new"] = run_gold(test, majority)
    save()
    results["gold_old"] = run_old(test, majority, args.old_ref)
    save()
    if args.rules_only:
        results["gold_rules_only"] = run_gold(test, majority, operator_model=False)
        save()
    sub = test[: args.retrieval_limit]
    build_collection("bench_climate_fever")
    for key, ref in (("retrieval", None), ("retrieval_old", args.old_ref)):
        res = run_retrieval(sub, majority, "bench_climate_fever", args.max_hops, ref)
        res["subset"] = f"first {len(sub)} of the {len(test)} held-out claims (sorted ids)"
        res["setup"] = (f"BM25 over corpus.jsonl (5,240 sentences), k=5 per hop, 3 sentences per hop, "
                        f"max_hops={args.max_hops}")
        results[key] = res
        save()
    sys.stdout.write(render(results))
    return 0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(r: dict) -> str:
    g, t, to = r["gold_new"], r["retrieval"], r["retrieval_old"]
    lines = ["# graph.fact_check on CLIMATE-FEVER (held-out claims)", "",
             f"Split: {r['split']['split']}; {r['split']['n_claims']}. The operator models are trained on the train "
             "claims, their regularisation and the claim-level offsets chosen on the dev claims; "
             "the test claims below were used for neither.", "",
             "## (a) gold evidence given", "",
             f"{g['n']} labelled test claims (+{g['disputed']['n']} DISPUTED apart); all systems in one run", "",
             _row("system", "accuracy", "macro-F1", "s per claim"), _row("---", "---", "---", "---")]
    systems = [("gold_new", "new: sentence + claim models, rules (graph.fact_check)"),
               ("gold_old", f"previous version ({r['old_ref']})")]
    if "gold_rules_only" in r:
        systems.append(("gold_rules_only", "new, rules only (natlog.prove operator_model=false)"))
    for key, name in systems:
        x = r[key]
        lines.append(_row(name, f"{x['accuracy']:.3f}", f"{x['macro_f1']:.3f}", f"{x['seconds_per_claim']:.2f}"))
    lines.append(_row(f"majority class ({g['majority_label']})", f"{g['majority_accuracy']:.3f}",
                      f"{g['majority_macro_f1']:.3f}", "-"))
    for key in ("gold_new", "gold_old"):
        x = r[key]
        lines += ["", f"{key}:", "", _row("gold label", "n", "recall", "predictions"), _row("---", "---", "---", "---")]
        for lab in LABELS:
            lines.append(_row(lab, x["by_label"][lab]["n"], f"{x['by_label'][lab]['recall']:.3f}", x["confusion"][lab]))
        lines.append(_row("DISPUTED", x["disputed"]["n"], "-", x["disputed"]["predictions"]))
    lines += ["", "## (b) retrieval over the pooled evidence", "",
              f"{t['subset']}; {t['setup']}", "",
              _row("system", "accuracy", "macro-F1", "gold evidence used", "mean hops", "s per claim"),
              _row(*["---"] * 6)]
    for x, name in ((t, "new: natural logic + multi-hop retrieval"), (to, f"previous version ({r['old_ref']})")):
        lines.append(_row(name, f"{x['accuracy']:.3f}", f"{x['macro_f1']:.3f}", f"{x['gold_evidence_hit_rate']:.3f}",
                          f"{x['mean_hops']:.2f}", f"{x['seconds_per_claim']:.2f}"))
    lines.append(_row(f"majority class ({t['majority_label']})", f"{t['majority_accuracy']:.3f}",
                      f"{t['majority_macro_f1']:.3f}", "-", "-", "-"))
    lines += ["", _row("gold label (new)", "n", "recall", "gold evidence used", "mean hops", "predictions"),
              _row(*["---"] * 6)]
    for lab in LABELS:
        lines.append(_row(lab, t["by_label"][lab]["n"], f"{t['by_label'][lab]['recall']:.3f}",
                          _pct(t["gold_hit_by_label"][lab]), f"{t['hops_by_label'][lab]:.2f}", t["confusion"][lab]))
    lines.append(_row("DISPUTED", t["disputed"]["n"], "-", _pct(t["gold_hit_by_label"]["DISPUTED"]),
                      f"{t['hops_by_label']['DISPUTED']:.2f}", t["disputed"]["predictions"]))
    lines += ["", f"wall time of the whole run: {r.get('wall_seconds', 0):.0f} s", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
