"""Index build time, memory and search latency vs collection size for flat / IVF-PQ / HNSW (issue 19).

    nice -n 19 python benchmarks/bench_cost_model.py [--sizes 10000,100000,1000000] [--hnsw-max 100000]

Synthetic L2-normalised 512-d vectors (ViT-B/32's width), built with vltools' own FAISS layer
(`vltools.store._faiss.build`, the collection defaults: IVF-PQ ~4*sqrt(n) lists capped by --nlist-max,
trained on a sample of --train-sample vectors, m=64 bytes per vector; HNSW M=32, efConstruction 80).
Per size and type: build seconds, index bytes (serialised), peak RSS growth; single-query search
latency (k=10, one FAISS thread as vltools searches) over 200 queries, median and p95. Index types
above --hnsw-max (HNSW) or --ivfpq-max are not built; their figures are projected in the README.
Writes benchmarks/results/cost_model.json and .md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--hnsw-max", type=int, default=100_000)
    ap.add_argument("--ivfpq-max", type=int, default=1_000_000)
    ap.add_argument("--nlist-max", type=int, default=1024)
    ap.add_argument("--train-sample", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=str(HERE / "results" / "cost_model"))
    args = ap.parse_args()

    import faiss
    import numpy as np

    from vltools.store import _faiss

    faiss.omp_set_num_threads(1)  # this script owns its process: one thread, as vltools searches
    rng = np.random.default_rng(0)
    sizes = [int(x) for x in args.sizes.split(",")]
    biggest = max(sizes)
    base = np.empty((biggest, args.dim), dtype=np.float32)
    for start in range(0, biggest, 100_000):
        chunk = rng.standard_normal((min(100_000, biggest - start), args.dim), dtype=np.float32)
        base[start : start + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    q = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    _faiss.TRAIN_SAMPLE = args.train_sample
    results: dict = {"dim": args.dim, "queries": args.queries, "cpus": os.cpu_count(), "faiss": faiss.__version__,
                     "train_sample": args.train_sample, "nlist_max": args.nlist_max, "runs": [],
                     "load_avg_start": os.getloadavg()}
    orig_nlist = _faiss._nlist_for
    _faiss._nlist_for = lambda n: min(orig_nlist(n), args.nlist_max)
    for n in sizes:
        vecs, rids = base[:n], np.arange(n, dtype=np.int64)
        exact = None
        for kind in ("flat", "ivfpq", "hnsw"):
            if (kind == "hnsw" and n > args.hnsw_max) or (kind == "ivfpq" and n > args.ivfpq_max):
                continue
            gc.collect()
            params = dict(_faiss.DEFAULT_PARAMS[kind])
            before = rss_mb()
            t = time.perf_counter()
            index = _faiss.build(kind, args.dim, params, rids, vecs)
            build_s = time.perf_counter() - t
            grown = rss_mb() - before
            size = int(faiss.serialize_index(index).nbytes)
            lat = []
            found = []
            for j in range(len(q)):
                t = time.perf_counter()
                _, ids = _faiss.search(index, kind, params, q[j : j + 1], 10)
                lat.append((time.perf_counter() - t) * 1000)
                found.append(ids[0])
            if kind == "flat":
                exact = found
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]))
            row = {"n": n, "index": kind, "build_s": build_s, "index_mb": size / 2**20, "rss_growth_mb": grown,
                   "search_ms_median": statistics.median(lat), "search_ms_p95": float(np.percentile(lat, 95)),
                   "recall_at_10_vs_flat": recall,
                   "params": {k: v for k, v in params.items() if k != "trained_on"}}  # fmt: skip
            results["runs"].append(row)
            log(json.dumps(row))
            write(results, Path(args.out))  # after every run: a long run that is stopped keeps what it measured
            del index
    write(results, Path(args.out))
    log(Path(args.out).with_suffix(".md").read_text())


def write(results: dict, out: Path) -> None:
    import faiss

    results["load_avg_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    md = ["# Index cost vs size (measured, one run)", "",
          f"Synthetic normalised {results['dim']}-d vectors, FAISS {faiss.__version__}, one thread, {os.cpu_count()} "
          f"shared cores (load average {results['load_avg_start'][0]:.1f} → {results['load_avg_end'][0]:.1f}).",
          "", "| n | index | build s | index MiB | RSS growth MiB | search ms (median / p95) | recall@10 vs flat |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["runs"]:
        md.append(f"| {r['n']:,} | {r['index']} | {r['build_s']:.1f} | {r['index_mb']:.1f} | {r['rss_growth_mb']:.0f} "
                  f"| {r['search_ms_median']:.2f} / {r['search_ms_p95']:.2f} | {r['recall_at_10_vs_flat']:.3f} |")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
