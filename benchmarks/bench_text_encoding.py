"""Faster CPU text encoding: torch fp32 vs onnxruntime fp32 vs onnxruntime int8, side by side (issue 19).

    nice -n 19 python benchmarks/bench_text_encoding.py [--data ../shared/data]

For Cranfield and CISI: encode every document (title + text, as collection.add does) with each
backend in the same process, one after another, timing docs/s; then dense retrieval nDCG@10 over
all queries (exact inner product, pytrec_eval) with each backend's vectors (queries encoded by the
same backend). Nothing is tuned: the default backend is the fastest one whose nDCG@10 stays within
0.005 of torch fp32 on both datasets. Writes benchmarks/results/text_encoding.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
BACKENDS = ["torch", "onnx", "onnx-int8"]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def load(ds: Path, max_docs: int | None = None) -> tuple[list[str], list[str], dict[str, str], dict]:
    """Documents, judged queries and qrels; with ``max_docs`` the first documents of the corpus only,
    the qrels restricted to them and the queries that keep at least one relevant document."""
    from vltools.store import index_text

    docs = [json.loads(line) for line in open(ds / "corpus.jsonl", encoding="utf-8") if line.strip()]
    docs = docs[:max_docs] if max_docs else docs
    keep = {str(d["id"]) for d in docs}
    queries = {q["id"]: q["text"] for q in map(json.loads, open(ds / "queries.jsonl", encoding="utf-8"))}
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(open(ds / "qrels.tsv", encoding="utf-8")):
        parts = line.split()
        if n == 0 and not parts[-1].lstrip("-").isdigit():
            continue
        if parts[1] in keep:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[-1])
    qrels = {q: r for q, r in qrels.items() if any(v > 0 for v in r.values())}
    queries = {q: t for q, t in queries.items() if q in qrels}
    return [str(d["id"]) for d in docs], [index_text(d.get("title"), d.get("text")) for d in docs], queries, qrels


def ndcg10(doc_ids, dvecs, queries, qvecs, qrels) -> float:
    import numpy as np
    import pytrec_eval

    scores = qvecs @ dvecs.T
    run = {}
    for qi, q in enumerate(queries):
        top = np.argsort(-scores[qi])[:100]
        run[q] = {doc_ids[j]: float(scores[qi, j]) for j in top}
    ev = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in queries}, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([v["ndcg_cut_10"] for v in ev.values()]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--datasets", default="cranfield,cisi")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-docs", type=int, default=None, help="first N documents per corpus (default: all)")
    ap.add_argument("--out", default=str(HERE / "results" / "text_encoding"))
    args = ap.parse_args()

    from vltools.core.settings import Settings
    from vltools.models.text import get_text_encoder

    cache = Path(tempfile.mkdtemp(prefix="bench_onnx_"))  # a fresh export: its time is part of the load
    encoders, load_s = {}, {}
    for b in BACKENDS:
        t = time.perf_counter()
        encoders[b] = get_text_encoder("minilm", Settings(text_backend=b, device="cpu", model_cache=cache,
                                                          max_loaded_models=4))
        load_s[b] = time.perf_counter() - t
        log(f"{b}: loaded (and exported) in {load_s[b]:.1f} s")
    result: dict = {"backends": BACKENDS, "load_s": load_s, "cpus": os.cpu_count(), "datasets": {},
                    "load_avg_start": os.getloadavg(), "batch_size": args.batch_size, "max_docs": args.max_docs}
    for name in args.datasets.split(","):
        doc_ids, texts, queries, qrels = load(Path(args.data) / name, args.max_docs)
        qtexts = list(queries.values())
        row: dict = {"docs": len(texts), "queries": len(queries)}
        log(f"{name}: {len(texts)} documents, {len(queries)} judged queries")
        for b in BACKENDS:
            enc = encoders[b]
            t = time.perf_counter()
            dvecs = enc.encode(texts, batch_size=args.batch_size)
            secs = time.perf_counter() - t
            qvecs = enc.encode(qtexts, batch_size=args.batch_size)
            row[b] = {"seconds": secs, "docs_per_s": len(texts) / secs,
                      "ndcg@10": ndcg10(doc_ids, dvecs, list(queries), qvecs, qrels)}
            if b == "torch":
                ref = dvecs
            else:
                row[b]["min_cosine_to_torch"] = float((ref * dvecs).sum(1).min())
                row[b]["mean_cosine_to_torch"] = float((ref * dvecs).sum(1).mean())
            log(f"{name} {b}: {row[b]}")
        for b in BACKENDS[1:]:
            row[b]["speedup"] = row[b]["docs_per_s"] / row["torch"]["docs_per_s"]
            row[b]["ndcg_delta"] = row[b]["ndcg@10"] - row["torch"]["ndcg@10"]
        result["datasets"][name] = row
    result["load_avg_end"] = os.getloadavg()
    ok = [b for b in BACKENDS[1:] if all(abs(r[b]["ndcg_delta"]) <= 0.005 for r in result["datasets"].values())]
    speed = {b: min(r[b]["speedup"] for r in result["datasets"].values()) for b in ok}
    result["within_0.005"] = ok
    result["chosen_default"] = max(speed, key=speed.get) if speed else "torch"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    md = ["# CPU text encoding: torch fp32 vs onnxruntime (measured, one run)", "",
          f"all-MiniLM-L6-v2 (bundled), batch {args.batch_size}, "
          + (f"the first {args.max_docs} documents of each corpus (qrels restricted to them), " if args.max_docs
             else "full corpora, ")
          + f"{os.cpu_count()} shared cores (load average "
          f"{result['load_avg_start'][0]:.1f} at the start, {result['load_avg_end'][0]:.1f} at the end).", "",
          "| dataset | backend | docs/s | speed-up | nDCG@10 | Δ nDCG@10 | min cos to fp32 |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in result["datasets"].items():
        for b in BACKENDS:
            r = row[b]
            md.append(f"| {name} ({row['docs']} docs) | {b} | {r['docs_per_s']:.1f} | {r.get('speedup', 1.0):.2f}x "
                      f"| {r['ndcg@10']:.4f} | {r.get('ndcg_delta', 0.0):+.4f} "
                      f"| {r.get('min_cosine_to_torch', 1.0):.4f} |")
    md += ["", f"Within 0.005 nDCG@10 of fp32 on every dataset: {', '.join(ok) or 'none'}. "
           f"Chosen CPU default (fastest of those): **{result['chosen_default']}**.",
           "Load times (incl. the one-off ONNX export into an empty cache): "
           + ", ".join(f"{b} {s:.1f} s" for b, s in load_s.items()) + "."]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    log("\n".join(md))


if __name__ == "__main__":
    main()
