"""Retrieval benchmark: BM25, dense (MiniLM) and hybrid RRF on the judged text collections of
shared/data, indexed and evaluated through the registry (collection.add, eval.retrieval); plus
side-by-side ratios measured in the same run: bm25s vs rank-bm25 query throughput, FAISS flat vs
HNSW (and IVF) recall@10 and latency.

    .venv/bin/python benchmarks/bench_retrieval.py [--datasets cranfield cisi] [--data ../shared/data]

Writes benchmarks/results/retrieval.json and retrieval.md. Uses its own VLTOOLS_HOME
(default /tmp/vltools-bench) and lets vltools read the data folder (VLTOOLS_ALLOWED_ROOTS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Published check figures from each dataset's README (plain BM25, no stemming).
PUBLISHED = {
    "cranfield": {"ndcg@10": 0.33, "recall@100": 0.70, "what": "plain BM25 (k1=0.9, b=0.4, no stemming)"},
    "cisi": {"ndcg@10": 0.26, "recall@100": 0.38, "what": "plain BM25"},
}
HYBRID_GRID = [(bw, dw, rk) for rk in (10, 60) for bw, dw in ((1, 1), (1, 2), (2, 1), (1, 3), (3, 1))]


def setup_env(data: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLTOOLS_HOME", "/tmp/vltools-bench")
    roots = [str(data.resolve()), str(ROOT), "/tmp"]
    os.environ.setdefault("VLTOOLS_ALLOWED_ROOTS", json.dumps(roots))


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def evaluate(vltools, name: str, ds: Path, retriever: str, **extra) -> dict:
    out = vltools.call(
        "eval.retrieval",
        {
            "collection": name,
            "queries_path": str(ds / "queries.jsonl"),
            "qrels_path": str(ds / "qrels.tsv"),
            "retriever": retriever,
            "k": 10,
            "depth": 100,
            **extra,
        },
        timeout=3600,
    )
    return {"mean": out.mean, "per_query": out.per_query, "seconds": out.seconds, "num_queries": out.num_queries}


def two_fold(per_config: dict[str, dict], metric: str = "ndcg@10") -> dict:
    """Pick the hybrid setting on one half of the queries, score it on the other half (and swap)."""
    qids = sorted(next(iter(per_config.values()))["per_query"])
    folds = [qids[0::2], qids[1::2]]
    scored = []
    for pick, test in (folds, folds[::-1]):
        best = max(per_config, key=lambda c: statistics.mean(per_config[c]["per_query"][q][metric] for q in pick))
        scored.append((best, [per_config[best]["per_query"][q][metric] for q in test]))
    values = [v for _, vs in scored for v in vs]
    return {"chosen": [c for c, _ in scored], metric: statistics.mean(values)}


def bench_dataset(vltools, ds: Path) -> dict:
    from vltools.core.settings import get_settings
    from vltools.store import create_collection, delete_collection, list_collections

    settings = get_settings()
    name = f"bench-{ds.name}"
    res: dict = {"dataset": ds.name, "published": PUBLISHED.get(ds.name)}
    for n in (name, f"{name}-plain"):
        if n in list_collections(settings):
            delete_collection(n, settings)
    vltools.call("collection.create", {"name": name, "kind": "text", "text_model": "minilm"})
    t = time.monotonic()
    add = vltools.call("collection.add", {"collection": name, "path": str(ds / "corpus.jsonl")}, timeout=7200)
    res["index"] = {"documents": add.count, "seconds": round(time.monotonic() - t, 1)}
    log(f"{ds.name}: indexed {add.count} docs in {res['index']['seconds']} s")
    # BM25 without stemming and stop words, to set beside the README's plain-BM25 figure
    create_collection(
        f"{name}-plain", "text", model="none", settings=settings, bm25_params={"stemmer": None, "stopwords": None}
    )
    vltools.call("collection.add", {"collection": f"{name}-plain", "path": str(ds / "corpus.jsonl")}, timeout=600)
    runs = {"bm25 (plain: no stemming, no stop words)": evaluate(vltools, f"{name}-plain", ds, "bm25")}
    for r in ("bm25", "dense", "hybrid"):
        runs[r] = evaluate(vltools, name, ds, r)
        log(f"{ds.name} {r}: {runs[r]['mean']}")
    grid = {}
    for bw, dw, rk in HYBRID_GRID:
        key = f"bm25_weight={bw} dense_weight={dw} rrf_k={rk}"
        grid[key] = evaluate(vltools, name, ds, "hybrid", bm25_weight=bw, dense_weight=dw, rrf_k=rk)
        log(f"{ds.name} hybrid {key}: ndcg@10={grid[key]['mean']['ndcg@10']:.4f}")
    res["runs"] = {k: {"mean": v["mean"], "seconds": v["seconds"]} for k, v in runs.items()}
    res["num_queries"] = runs["bm25"]["num_queries"]
    res["hybrid_grid"] = {k: v["mean"] for k, v in grid.items()}
    res["hybrid_two_fold"] = two_fold(grid)
    res["_per_query"] = {k: v["per_query"] for k, v in runs.items()}
    return res


def bench_bm25_libraries(ds: Path, repeats: int = 3) -> dict:
    """Same tokens (vltools' analysis), same k1/b: query throughput of bm25s vs rank-bm25, top-100."""
    import bm25s
    import numpy as np

    try:
        import rank_bm25
    except ImportError as err:  # an extra: pip install 'vltools[bench]' (requirements.lock has it)
        raise SystemExit("bench_retrieval needs rank-bm25: pip install 'vltools[bench]'") from err

    from vltools.store import _bm25, index_text

    docs = [json.loads(line) for line in open(ds / "corpus.jsonl", encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in open(ds / "queries.jsonl", encoding="utf-8")]
    params = dict(_bm25.DEFAULT_PARAMS)
    corpus_tokens = _bm25.tokenize([index_text(d["title"], d["text"]) for d in docs], params)
    query_tokens = _bm25.tokenize(queries, params)
    t = time.perf_counter()
    fast = bm25s.BM25(k1=params["k1"], b=params["b"], method="lucene")
    fast.index(corpus_tokens, show_progress=False)
    build_bm25s = time.perf_counter() - t
    t = time.perf_counter()
    slow = rank_bm25.BM25Okapi(corpus_tokens, k1=params["k1"], b=params["b"])
    build_rank = time.perf_counter() - t

    def run_bm25s():
        out = []
        for q in query_tokens:
            ids = fast.get_tokens_ids(q)
            s = fast.get_scores(ids) if ids else np.zeros(len(docs))
            out.append(np.argpartition(-s, 99)[:100])
        return out

    def run_bm25s_batch():
        return fast.retrieve(query_tokens, k=100, show_progress=False)[0]

    def run_rank():
        return [np.argpartition(-slow.get_scores(q), 99)[:100] for q in query_tokens]

    timings = {}
    for label, fn in (("bm25s", run_bm25s), ("bm25s_batch_retrieve", run_bm25s_batch), ("rank_bm25", run_rank)):
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            top = fn()
            best = min(best, time.perf_counter() - t)
        timings[label] = {"seconds": best, "queries_per_s": len(queries) / best, "top": top}

    # how often the two libraries agree on the top-10 (they differ in idf: rank-bm25 floors low idf at epsilon)
    def top10(scores):
        return set(np.argsort(-scores, kind="stable")[:10].tolist())

    overlap = statistics.mean(
        len(top10(fast.get_scores(fast.get_tokens_ids(q))) & top10(slow.get_scores(q))) / 10
        for q in query_tokens
        if fast.get_tokens_ids(q)
    )
    for v in timings.values():
        v.pop("top")
    return {
        "corpus": ds.name,
        "documents": len(docs),
        "queries": len(queries),
        "build_seconds": {"bm25s": build_bm25s, "rank_bm25": build_rank},
        "query": timings,
        "speedup_bm25s_over_rank_bm25": timings["rank_bm25"]["seconds"] / timings["bm25s"]["seconds"],
        "top10_overlap": overlap,
    }


def bench_bm25_variants(ds: Path) -> dict:
    """BM25 analysis choices on one collection (bm25s, top-100, pytrec_eval): what stemming and stop words buy."""
    import bm25s
    import numpy as np
    import pytrec_eval

    from vltools.store import _bm25, index_text

    docs = [json.loads(line) for line in open(ds / "corpus.jsonl", encoding="utf-8")]
    queries = {q["id"]: q["text"] for q in map(json.loads, open(ds / "queries.jsonl", encoding="utf-8"))}
    qrels: dict[str, dict[str, int]] = {}
    for line in (ds / "qrels.tsv").read_text().splitlines()[1:]:
        q, d, r = line.split()
        qrels.setdefault(q, {})[d] = int(r)
    qids = [q for q in queries if q in qrels]
    both = [index_text(d["title"], d["text"]) for d in docs]
    text_only = [d["text"] for d in docs]

    def whitespace(texts):
        return [t.lower().split() for t in texts]

    def analysed(stemmer, stopwords):
        params = {**_bm25.DEFAULT_PARAMS, "stemmer": stemmer, "stopwords": stopwords}
        return lambda texts: _bm25.tokenize(texts, params)

    def score(texts, tok, k1=0.9, b=0.4) -> dict:
        r = bm25s.BM25(k1=k1, b=b, method="lucene")
        r.index(tok(texts), show_progress=False)
        run = {}
        for q, toks in zip(qids, tok([queries[q] for q in qids]), strict=True):
            ids = r.get_tokens_ids(toks)
            s = r.get_scores(ids) if ids else np.zeros(len(docs))
            top = np.argsort(-s, kind="stable")[:100]
            run[q] = {docs[i]["id"]: float(100 - j) for j, i in enumerate(top)}
        ev = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in qids}, {"ndcg_cut.10", "recall.100"}).evaluate(run)
        return {
            "ndcg@10": statistics.mean(v["ndcg_cut_10"] for v in ev.values()),
            "recall@100": statistics.mean(v["recall_100"] for v in ev.values()),
        }

    return {
        "text only, lower-case whitespace tokens": score(text_only, whitespace),
        "title+text, lower-case whitespace tokens": score(both, whitespace),
        "title+text, word tokens (no stemming, no stop words)": score(both, analysed(None, None)),
        "title+text, word tokens + stop words": score(both, analysed(None, "en")),
        "title+text, word tokens + stop words + Snowball stemming (vltools)": score(both, analysed("english", "en")),
        "same, k1=1.2 b=0.75 (Lucene/Elasticsearch defaults)": score(both, analysed("english", "en"), 1.2, 0.75),
    }


def bench_faiss(vltools, datasets: list[Path], synthetic_n: int = 100_000) -> dict:
    """Flat (exact) vs HNSW vs IVF as vltools builds them: recall@10 against flat, latency per query."""
    import numpy as np

    from vltools.core.settings import get_settings
    from vltools.store import _db as db
    from vltools.store import _faiss, open_collection

    settings = get_settings()
    out = {}
    # real: the MiniLM vectors of the indexed collections, queried with the MiniLM query vectors
    vecs, queries = [], []
    for ds in datasets:
        coll = open_collection(f"bench-{ds.name}", settings)
        conn = coll._conn()
        vecs.append(db.all_vectors(conn, coll.dim)[1])
        conn.close()
        texts = [json.loads(line)["text"] for line in open(ds / "queries.jsonl", encoding="utf-8")]
        queries.append(_encode(texts))
    real = (np.concatenate(vecs), np.concatenate(queries))
    rng = np.random.default_rng(0)
    # synthetic: like text embeddings, vectors with a low intrinsic dimension (a 32-d Gaussian latent
    # mapped linearly to 384-d, plus a little noise); queries are fresh draws from the same distribution.
    proj = rng.standard_normal((32, 384)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 32)).astype(np.float32) @ proj
        v += 0.1 * np.linalg.norm(v, axis=1, keepdims=True) / np.sqrt(384) * rng.standard_normal(v.shape)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    syn, sq = draw(synthetic_n), draw(1000)
    for label, (base, q) in {
        "minilm_" + "+".join(d.name for d in datasets): real,
        f"synthetic_{synthetic_n}": (syn, sq),
    }.items():
        rids = np.arange(len(base), dtype=np.int64)
        row = {"vectors": int(len(base)), "queries": int(len(q)), "dim": int(base.shape[1])}
        truth = None
        sweeps = {"flat": [{}], "hnsw": [{"ef_search": e} for e in (32, 64, 128)], "ivf": [{}, {"nprobe": 16}]}
        for kind in ("flat", "hnsw", "ivf"):
            params = dict(_faiss.DEFAULT_PARAMS[kind])
            t = time.perf_counter()
            index = _faiss.build(kind, base.shape[1], params, rids, base)
            build = time.perf_counter() - t
            for i, change in enumerate(sweeps[kind]):
                p = {**params, **change}
                _faiss.search(index, kind, p, q[:5], 10)  # warm-up
                t = time.perf_counter()
                found = np.concatenate([_faiss.search(index, kind, p, q[j : j + 1], 10)[1] for j in range(len(q))])
                single = (time.perf_counter() - t) / len(q)
                if kind == "flat":
                    truth = found
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))
                if kind == "ivf" and not p.get("nprobe"):
                    p["nprobe"] = f"auto={max(16, index.nlist // 8)}"
                entry = {
                    "params": {k: v for k, v in p.items() if v is not None and k != "trained_on"},
                    "build_s": build,
                    "ms_per_query": 1000 * single,
                    "recall@10_vs_flat": recall,
                }
                row[kind if i == 0 else f"{kind} {change}"] = entry
        row["latency_ratio_hnsw_over_flat"] = row["hnsw"]["ms_per_query"] / row["flat"]["ms_per_query"]
        row["latency_ratio_ivf_over_flat"] = row["ivf"]["ms_per_query"] / row["flat"]["ms_per_query"]
        out[label] = row
        log(f"faiss {label}: {row}")
    return out


def _encode(texts: list[str]):
    from vltools.core.settings import get_settings
    from vltools.models.text import get_text_encoder

    return get_text_encoder("minilm", get_settings()).encode(texts)


def write_md(result: dict, path: Path) -> None:
    lines = ["# Retrieval benchmark", "", f"Run {result['date']} on {result['machine']}.", ""]
    for rerun in result.get("reruns", []):
        lines += [f"Section `{rerun['section']}` re-run {rerun['date']} (same machine, same collections).", ""]
    for ds in result["datasets"]:
        pub = ds["published"]
        lines += [
            f"## {ds['dataset']} ({ds['index']['documents']} documents, {ds['num_queries']} judged queries)",
            "",
            f"Indexing through `collection.add` (MiniLM encode + FAISS flat + BM25): {ds['index']['seconds']} s.",
            "",
            "| retriever | nDCG@10 | R@10 | R@100 | MRR@10 | MAP@100 |",
            "|---|---|---|---|---|---|",
        ]
        if pub:
            lines.append(f"| published check: {pub['what']} | {pub['ndcg@10']:.2f} | | {pub['recall@100']:.2f} | | |")
        for r, v in ds["runs"].items():
            m = v["mean"]
            lines.append(
                f"| {r} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
                f"{m['map']:.4f} |"
            )
        lines += ["", "Hybrid (RRF) settings tried (nDCG@10 on all queries):", ""]
        for k, m in ds["hybrid_grid"].items():
            lines.append(f"- {k}: {m['ndcg@10']:.4f} (R@100 {m['recall@100']:.4f})")
        tf = ds["hybrid_two_fold"]
        lines += [
            "",
            f"Two-fold choice (pick on half the queries, score on the other half): nDCG@10 {tf['ndcg@10']:.4f}, "
            f"chosen {tf['chosen']}.",
            "",
        ]
    b = result["bm25_libraries"]
    lines += [
        f"## bm25s vs rank-bm25 ({b['corpus']}, {b['documents']} docs, {b['queries']} queries, top-100, same tokens)",
        "",
        "| library | queries/s | build s |",
        "|---|---|---|",
        f"| bm25s (get_scores, as vltools) | {b['query']['bm25s']['queries_per_s']:.0f} | "
        f"{b['build_seconds']['bm25s']:.3f} |",
        f"| bm25s (batch retrieve) | {b['query']['bm25s_batch_retrieve']['queries_per_s']:.0f} | |",
        f"| rank-bm25 BM25Okapi | {b['query']['rank_bm25']['queries_per_s']:.0f} | "
        f"{b['build_seconds']['rank_bm25']:.3f} |",
        "",
        f"bm25s is **{b['speedup_bm25s_over_rank_bm25']:.1f}x** faster per query; "
        f"mean top-10 overlap of the two libraries {b['top10_overlap']:.2f}.",
        "",
        "## BM25 analysis (k1=0.9, b=0.4 unless stated; nDCG@10 / R@100)",
        "",
        "| variant | " + " | ".join(result.get("bm25_variants", {})) + " |",
        "|---|" + "---|" * len(result.get("bm25_variants", {})),
    ]
    variants = result.get("bm25_variants", {})
    for name in next(iter(variants.values()), {}):
        cells = [f"{v[name]['ndcg@10']:.4f} / {v[name]['recall@100']:.4f}" for v in variants.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## FAISS flat vs HNSW vs IVF (single-query search, k=10, recall against flat, 1 OpenMP thread)",
        "",
        "| vectors | index | recall@10 | ms/query | build s |",
        "|---|---|---|---|---|",
    ]
    for label, row in result["faiss"].items():
        for kind, r in row.items():
            if not isinstance(r, dict):
                continue
            lines.append(
                f"| {label} ({row['vectors']}) | {kind.split()[0]} {r['params']} | {r['recall@10_vs_flat']:.4f} | "
                f"{r['ms_per_query']:.3f} | {r['build_s']:.2f} |"
            )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--datasets", nargs="+", default=["cranfield", "cisi"])
    ap.add_argument("--synthetic", type=int, default=100_000, help="size of the synthetic FAISS set")
    ap.add_argument(
        "--only",
        choices=["faiss", "bm25-libraries", "bm25-variants"],
        help="re-run one side-by-side section over the collections of an earlier full run; keep the rest",
    )
    args = ap.parse_args()
    data = Path(args.data)
    setup_env(data)
    import torch

    torch.set_num_threads(2)
    import vltools

    datasets = [data / d for d in args.datasets]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.only:
        result = json.loads((RESULTS / "retrieval.json").read_text())
        result.setdefault("reruns", []).append({"section": args.only, "date": stamp})
    else:
        result = {
            "date": stamp,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch threads 2",
            "datasets": [bench_dataset(vltools, ds) for ds in datasets],
        }
    if args.only in (None, "bm25-libraries"):
        result["bm25_libraries"] = bench_bm25_libraries(datasets[0])
        log("bm25 libraries:", result["bm25_libraries"])
    if args.only in (None, "bm25-variants"):
        result["bm25_variants"] = {ds.name: bench_bm25_variants(ds) for ds in datasets}
        log("bm25 variants:", result["bm25_variants"])
    if args.only in (None, "faiss"):
        result["faiss"] = bench_faiss(vltools, datasets, args.synthetic)
        result["faiss_date"] = stamp
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retrieval.json").write_text(json.dumps(result, indent=1))
    write_md(result, RESULTS / "retrieval.md")
    log((RESULTS / "retrieval.md").read_text())


if __name__ == "__main__":
    main()
