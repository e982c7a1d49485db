"""Plots of the measured benchmark results (matplotlib), drawn from benchmarks/results/*.json.

Nothing is re-measured: each figure reads a results file that a benchmark script wrote, and a
figure whose results file is missing is skipped with a message.

- ``plot_retrieval.png``  — retrieval metrics (nDCG@10, Recall@100, MAP) by method and dataset
  (``retrieval.json``);
- ``plot_rerank.png``     — reranker quality (nDCG@10) against seconds per query, BM25 depth 20 and
  depth 50 (``rerank.json``, ``rerank_top50.json``);
- ``plot_clip_robustness.png`` — demo CLIP top-1 under each degradation by level
  (``demo_clip_eval.json``);
- ``plot_etva.png``       — ETVA vs CLIPScore pairwise accuracy per perturbed fact (``etva_world_30.json``).

    .venv/bin/python benchmarks/plots.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict[str, Any] | None:
    p = RESULTS / name
    if not p.exists():
        sys.stderr.write(f"skipping: {p} not found (run its benchmark first)\n")
        return None
    return json.loads(p.read_text())


def _short(method: str) -> str:
    return method.replace(" (plain: no stemming, no stop words)", " plain")


def plot_retrieval(plt: Any) -> Path | None:
    data = _load("retrieval.json")
    if data is None:
        return None
    metrics = ["ndcg@10", "recall@100", "map"]
    datasets = data["datasets"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        methods = list(ds["runs"])
        width = 0.8 / len(metrics)
        for j, m in enumerate(metrics):
            vals = [ds["runs"][meth]["mean"][m] for meth in methods]
            xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(methods))]
            bars = ax.bar(xs, vals, width, label=m)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(methods)), [_short(m) for m in methods], rotation=15)
        ax.set_title(f"{ds['dataset']} ({len(ds.get('runs', {}))} methods)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.suptitle("Retrieval by method (retrieval.json)")
    return _save(plt, fig, "plot_retrieval.png")


def plot_rerank(plt: Any) -> Path | None:
    runs = [(name, _load(f)) for name, f in (("BM25 top-20", "rerank.json"), ("BM25 top-50", "rerank_top50.json"))]
    runs = [(n, d) for n, d in runs if d is not None]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, data), marker in zip(runs, ["o", "s"], strict=False):
        methods = data["summary"]["methods"]
        llm = {k: v for k, v in methods.items() if k.startswith("rerank.")}
        xs = [v["seconds_per_query"] for v in llm.values()]
        ys = [v["ndcg@10"] for v in llm.values()]
        ax.scatter(xs, ys, marker=marker, label=f"{label} ({data['protocol']['queries']} queries)")
        for k, x, y in zip(llm, xs, ys, strict=True):
            ax.annotate(k.removeprefix("rerank."), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8)
        if "bm25" in methods:
            ax.axhline(methods["bm25"]["ndcg@10"], ls="--", lw=0.8, color=ax.collections[-1].get_facecolor()[0],
                       label=f"{label}: BM25 alone")
    ax.set_xlabel("seconds per query (CPU, SmolLM2-135M)")
    ax.set_ylabel("nDCG@10 (Cranfield)")
    ax.set_title("Reranker quality vs time (rerank.json, rerank_top50.json)")
    ax.legend(fontsize=8)
    return _save(plt, fig, "plot_rerank.png")


def plot_clip_robustness(plt: Any) -> Path | None:
    data = _load("demo_clip_eval.json")
    if data is None or "degradations" not in data:
        return None
    deg = data["degradations"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, by_level in deg["top1"].items():
        levels = sorted(by_level, key=int)
        ax.plot([0, *map(int, levels)], [deg["clean_top1"], *(by_level[lv] for lv in levels)], marker="o", label=name)
    ax.set_xlabel("degradation level (0 = clean)")
    ax.set_ylabel("top-1 accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Demo CLIP under degradations ({deg['n']} held-out scenes)")
    ax.legend(fontsize=8)
    return _save(plt, fig, "plot_clip_robustness.png")


def plot_etva(plt: Any) -> Path | None:
    name = "etva_world_30.json" if (RESULTS / "etva_world_30.json").exists() else "etva_world.json"
    data = _load(name)
    if data is None:
        return None
    acc = data["pairwise_accuracy"]
    facts = [k for k in acc["etva"] if k != "mean"] + ["mean"]
    methods = [m for m in ("etva", "etva_soft", "clipscore") if m in acc]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(facts))]
        bars = ax.bar(xs, [acc[m][f] for f in facts], width, label=m)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(facts)), facts)
    ax.set_ylabel("pairwise accuracy (true caption > perturbed)")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"ETVA vs CLIPScore by perturbed fact ({data['videos']} videos, {name})")
    ax.legend(fontsize=8)
    return _save(plt, fig, "plot_etva.png")


def _save(plt: Any, fig: Any, name: str) -> Path:
    fig.tight_layout()
    out = RESULTS / name
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written = [p for p in (plot_retrieval(plt), plot_rerank(plt), plot_clip_robustness(plt), plot_etva(plt)) if p]
    for p in written:
        sys.stderr.write(f"wrote {p}\n")
    return written


if __name__ == "__main__":
    main()
