"""LLM reranker benchmark on Cranfield: nDCG@10 of BM25 alone and after each rerank.* tool with
``smollm2``, plus latency ratios FIRST ÷ listwise and ICR ÷ listwise measured side by side in the
same run (every method reranks the same BM25 list of each query, one query after another).

    .venv/bin/python benchmarks/bench_rerank.py [--queries 10] [--depth 20] [--passage-tokens 48]

First stage: bm25s (k1=0.9, b=0.4, English stopwords, Snowball stemmer) over corpus.jsonl, top
``--depth``. Queries: the first ``--queries`` of queries.jsonl (ids 1..N). Rank-R1 reasons by
generation and is far costlier, so it runs on the first ``--r1-queries`` queries over the BM25
top ``--r1-depth`` only (reported separately). Writes benchmarks/results/rerank.json and rerank.md
after every query (partial results survive an interrupted run). Uses torch with 1 thread: on the
shared 2-core machine, 2 OpenMP threads were 10-30x slower per forward pass under contention.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ["rerank.icr", "rerank.first", "rerank.listwise", "rerank.pointwise"]
NAME = "rerank"


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def load(data: Path) -> tuple[list[dict], list[dict], dict[str, dict[str, int]]]:
    docs = [json.loads(line) for line in (data / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (data / "queries.jsonl").open()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels.tsv").read_text().splitlines()[1:]:
        q, d, r = line.split()
        qrels.setdefault(q, {})[d] = int(r)
    return docs, queries, qrels


def ndcg10(qrels: dict[str, int], ranked: list[str]) -> float:
    import pytrec_eval

    run = {"q": {d: float(len(ranked) - i) for i, d in enumerate(ranked)}}
    ev = pytrec_eval.RelevanceEvaluator({"q": qrels}, {"ndcg_cut.10"})
    return ev.evaluate(run)["q"]["ndcg_cut_10"]


def sanity_sets(docs: list[dict], queries: list[dict], qrels: dict, n: int, seed: int = 7) -> list[tuple]:
    """Per query: its 2 most relevant abstracts among 6 random unjudged ones, shuffled (as in the ICR test)."""
    by_id = {d["id"]: d for d in docs if d["text"]}
    ids = sorted(by_id, key=int)
    rng = random.Random(seed)
    sets = []
    for q in queries[:n]:
        judged = qrels[q["id"]]
        relevant = [d for d, r in sorted(judged.items(), key=lambda x: -x[1]) if r > 0 and d in by_id][:2]
        others = [d for d in rng.sample(ids, 24) if d not in judged][: 8 - len(relevant)]
        passages = [{"id": d, "text": by_id[d]["text"]} for d in relevant + others]
        rng.shuffle(passages)
        sets.append((q["text"], passages, set(relevant)))
    return sets


def mrr(ids: list[str], relevant: set[str]) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ids) if d in relevant), 0.0)


def summarize(rows: dict, args: argparse.Namespace) -> dict:
    out: dict = {"methods": {}}
    for name, per in rows.items():
        if not per:
            continue
        out["methods"][name] = {
            "queries": len(per),
            "ndcg@10": statistics.mean(r["ndcg@10"] for r in per),
            "seconds_per_query": statistics.mean(r.get("seconds", 0.0) for r in per),
            "forward_passes_per_query": statistics.mean(r.get("forward_passes", 0) for r in per),
            "prompt_tokens_per_query": statistics.mean(r.get("prompt_tokens", 0) for r in per),
            "generated_tokens_per_query": statistics.mean(r.get("generated_tokens", 0) for r in per),
            "gflops_per_query": statistics.mean(r.get("flops", 0.0) for r in per) / 1e9,
        }
    m = out["methods"]
    if rows.get("rerank.rank_r1"):
        n = len(rows["rerank.rank_r1"])
        out["bm25_ndcg@10_on_rank_r1_queries"] = statistics.mean(r["ndcg@10"] for r in rows["bm25"][:n])
    if "rerank.listwise" in m:
        lw = sum(r["seconds"] for r in rows["rerank.listwise"])
        n = len(rows["rerank.listwise"])
        for other in ("rerank.first", "rerank.icr", "rerank.pointwise"):
            if other in rows and len(rows[other]) >= n:
                out[f"latency_ratio_{other.split('.')[1]}_over_listwise"] = (
                    sum(r["seconds"] for r in rows[other][:n]) / lw
                )
                lw_flops = sum(r.get("flops", 0.0) for r in rows["rerank.listwise"])
                if lw_flops:
                    out[f"flops_ratio_{other.split('.')[1]}_over_listwise"] = (
                        sum(r.get("flops", 0.0) for r in rows[other][:n]) / lw_flops
                    )
    return out


def write(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(result, indent=2))
    s, p = result["summary"], result["protocol"]
    lines = [
        "# LLM rerankers on Cranfield (smollm2)",
        "",
        f"BM25 top-{p['depth']} of the first {p['queries']} queries, passages cut to {p['passage_tokens']} tokens, "
        f"LLM `{p['llm']}` on CPU ({p['torch_threads']} torch thread). Rank-R1: first {p['r1_queries']} queries, "
        f"BM25 top-{p['r1_depth']}, depth {p['r1_sort_depth']}, {p['r1_think_tokens']} think tokens.",
        "",
        "| method | queries | nDCG@10 | s/query | forward passes/query | prompt tok/query | generated tok/query "
        "| GFLOPs/query |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in s["methods"].items():
        lines.append(
            f"| {name} | {v['queries']} | {v['ndcg@10']:.3f} | {v['seconds_per_query']:.1f} | "
            f"{v['forward_passes_per_query']:.1f} | {v['prompt_tokens_per_query']:.0f} | "
            f"{v['generated_tokens_per_query']:.0f} | {v['gflops_per_query']:.0f} |"
        )
    lines.append("")
    for key, val in s.items():
        if key.startswith(("latency_ratio", "flops_ratio", "bm25_")):
            lines.append(f"- {key}: {val:.3f}")
    for key, val in result.get("behaviour", {}).items():
        lines.append(f"- {key}: {val}")
    (RESULTS / f"{NAME}.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "cranfield")
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--passage-tokens", type=int, default=48)
    ap.add_argument("--llm", default="smollm2")
    ap.add_argument("--r1-queries", type=int, default=3)
    ap.add_argument("--r1-depth", type=int, default=10)
    ap.add_argument("--r1-sort-depth", type=int, default=3)
    ap.add_argument("--r1-think-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated rerank.* tools to compare")
    ap.add_argument("--name", default="rerank", help="results file stem under benchmarks/results/")
    ap.add_argument("--sanity-queries", type=int, default=8, help="ICR calibrated/uncalibrated on relevant+random sets")
    args = ap.parse_args()
    global NAME
    NAME = args.name
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLTOOLS_HOME", "/tmp/vltools-bench")

    import bm25s
    import Stemmer
    import torch

    torch.set_num_threads(args.threads)
    import vltools

    docs, queries, qrels = load(args.data)
    stem = Stemmer.Stemmer("english")
    bm25 = bm25s.BM25(k1=0.9, b=0.4)
    bm25.index(
        bm25s.tokenize([d["text"] for d in docs], stopwords="en", stemmer=stem, show_progress=False),
        show_progress=False,
    )
    t0 = time.perf_counter()
    vltools.call("rerank.first", {"query": "warm up", "passages": [{"id": "a", "text": "x"}], "llm": args.llm})
    load_s = time.perf_counter() - t0
    rows: dict[str, list[dict]] = {"bm25": [], "shuffled": [], **{m: [] for m in methods}, "rerank.rank_r1": []}
    behaviour: dict[str, object] = {}
    repairs = {"duplicates": 0, "unknown": 0, "missing": 0}
    r1_fallbacks = r1_comparisons = 0
    rng = random.Random(0)
    protocol = {
        "dataset": "cranfield",
        "queries": args.queries,
        "query_ids": [q["id"] for q in queries[: args.queries]],
        "depth": args.depth,
        "passage_tokens": args.passage_tokens,
        "llm": args.llm,
        "torch_threads": args.threads,
        "first_stage": "bm25s k1=0.9 b=0.4, English stopwords, Snowball stemmer",
        "window": "listwise/FIRST: window 20, stride 10 (one window at depth 20); ICR: max_prompt_tokens 2048",
        "r1_queries": args.r1_queries,
        "r1_depth": args.r1_depth,
        "r1_sort_depth": args.r1_sort_depth,
        "r1_think_tokens": args.r1_think_tokens,
        "model_load_seconds": round(load_s, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs (shared with other jobs)",
    }
    for qi, q in enumerate(queries[: args.queries]):
        ids, _ = bm25.retrieve(
            bm25s.tokenize([q["text"]], stopwords="en", stemmer=stem, show_progress=False),
            k=args.depth,
            show_progress=False,
        )
        passages = [{"id": docs[i]["id"], "text": docs[i]["text"]} for i in ids[0]]
        qrel = qrels.get(q["id"], {})
        rows["bm25"].append({"ndcg@10": ndcg10(qrel, [p["id"] for p in passages])})
        shuffled = [p["id"] for p in passages]
        rng.shuffle(shuffled)
        rows["shuffled"].append({"ndcg@10": ndcg10(qrel, shuffled)})
        for m in methods:
            out = vltools.call(
                m,
                {"query": q["text"], "passages": passages, "llm": args.llm, "max_passage_tokens": args.passage_tokens},
                timeout=3600,
            )
            rows[m].append({"ndcg@10": ndcg10(qrel, [h.id for h in out.hits]), **out.stats.model_dump()})
            if m == "rerank.listwise":
                for k, v in out.parse_repairs.items():
                    repairs[k] += v
                behaviour.setdefault("listwise_sample_outputs", []).append(out.responses[0][:200])
            log(f"q{q['id']} {m}: ndcg={rows[m][-1]['ndcg@10']:.3f} s={out.stats.seconds:.1f}")
        if qi < args.r1_queries:
            out = vltools.call(
                "rerank.rank_r1",
                {
                    "query": q["text"],
                    "passages": passages[: args.r1_depth],
                    "llm": args.llm,
                    "max_passage_tokens": args.passage_tokens,
                    "depth": args.r1_sort_depth,
                    "think_tokens": args.r1_think_tokens,
                },
                timeout=3600,
            )
            ranked = [h.id for h in out.hits] + [p["id"] for p in passages[args.r1_depth :]]
            rows["rerank.rank_r1"].append({"ndcg@10": ndcg10(qrel, ranked), **out.stats.model_dump()})
            r1_fallbacks += out.fallbacks
            r1_comparisons += len(out.comparisons)
            if out.comparisons:
                behaviour.setdefault("rank_r1_sample_reasoning", []).append(out.comparisons[0].reasoning[:200])
            log(f"q{q['id']} rank_r1: ndcg={rows['rerank.rank_r1'][-1]['ndcg@10']:.3f} s={out.stats.seconds:.1f}")
        behaviour["listwise_parse_repairs_total"] = dict(repairs)
        behaviour["rank_r1_unparsable_answers"] = f"{r1_fallbacks} of {r1_comparisons} comparisons"
        result = {"protocol": protocol, "summary": summarize(rows, args), "per_query": rows, "behaviour": behaviour}
        write(result)
    if args.sanity_queries:
        found: dict[str, list[float]] = {"shuffled": [], "icr calibrated": [], "icr uncalibrated": []}
        for query, passages, relevant in sanity_sets(docs, queries, qrels, args.sanity_queries):
            found["shuffled"].append(mrr([p["id"] for p in passages], relevant))
            for name, cal in (("icr calibrated", True), ("icr uncalibrated", False)):
                out = vltools.call(
                    "rerank.icr",
                    {
                        "query": query,
                        "passages": passages,
                        "llm": args.llm,
                        "max_passage_tokens": args.passage_tokens,
                        "calibrate": cal,
                    },
                    timeout=3600,
                )
                found[name].append(mrr([h.id for h in out.hits], relevant))
        result["icr_sanity"] = {
            "protocol": f"first {args.sanity_queries} queries; each: its 2 most relevant abstracts among 6 random "
            "unjudged abstracts, shuffled (seed 7); MRR of a relevant abstract",
            **{k: statistics.mean(v) for k, v in found.items()},
        }
        behaviour["icr_sanity_mrr"] = {k: round(v, 3) for k, v in result["icr_sanity"].items() if k != "protocol"}
        write(result)
    log(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
