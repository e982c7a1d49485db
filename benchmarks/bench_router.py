"""Benchmark agent.ask's offline tool choice on tests/data/router_requests.jsonl.

Top-1 and top-3 accuracy of the expected tool among agent.ask's ranked choices (execute=false),
overall and by family, with the misses listed. Writes benchmarks/results/router.json and .md.

    .venv/bin/python benchmarks/bench_router.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
REQUESTS = ROOT / "tests" / "data" / "router_requests.jsonl"


def evaluate(rows: list[dict]) -> dict:
    from vltools.agents.router import rank_entries
    from vltools.core.context import Context

    encoder = Context().text()
    results, t0 = [], time.time()
    for r in rows:
        ranked = [name for name, _, _ in rank_entries(r["request"], encoder)]
        rank = ranked.index(r["expected"]) + 1 if r["expected"] in ranked else None
        results.append({**r, "rank": rank, "top3": ranked[:3]})
    n = len(results)
    fam: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        fam[r["expected"].split(".")[0]].append(r)
    return {
        "n": n,
        "top1": sum(r["rank"] == 1 for r in results) / n,
        "top3": sum(r["rank"] is not None and r["rank"] <= 3 for r in results) / n,
        "by_family": {f: {"n": len(v), "top1": sum(r["rank"] == 1 for r in v) / len(v),
                          "top3": sum(r["rank"] is not None and r["rank"] <= 3 for r in v) / len(v)}
                      for f, v in sorted(fam.items())},
        "misses": [r for r in results if r["rank"] != 1],
        "ms_per_request": 1000 * (time.time() - t0) / n,
        "encoder": encoder.spec,
    }


def main() -> int:
    import torch

    torch.set_num_threads(1)  # shared machine
    rows = [json.loads(line) for line in REQUESTS.open() if line.strip()]
    res = evaluate(rows)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "router.json").write_text(json.dumps(res, indent=2))
    lines = ["# agent.ask tool choice", "", f"{res['n']} labelled requests ({REQUESTS.relative_to(ROOT)}), "
             f"encoder {res['encoder']}, {res['ms_per_request']:.0f} ms per request", "",
             f"top-1 {res['top1']:.3f}, top-3 {res['top3']:.3f}", "",
             "| family | n | top-1 | top-3 |", "|---|---|---|---|"]
    lines += [f"| {f} | {v['n']} | {v['top1']:.2f} | {v['top3']:.2f} |" for f, v in res["by_family"].items()]
    lines += ["", "Misses at top-1 (expected, rank, top-3):", ""]
    lines += [f"- {m['request']!r}: {m['expected']} at {m['rank']}, got {m['top3']}" for m in res["misses"]]
    (out / "router.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
