"""Zero-shot VQA (P01, MacCap) on the easy-VQA **test** split, through `vqa.zero_shot`.

    python benchmarks/bench_vqa.py [--limit N] [--model demo]

Each question is asked with the 13 easy-VQA answers as the caller's open vocabulary (the tool keeps
those matching the question's type). Variants measured side by side in one run on the same
questions: full (subregion aggregation + noise-robust scoring), whole image only, no noise; and the
majority-answer baselines (overall majority answer, and majority answer per question type, both
taken from the train split). Accuracy overall and by question type (colour, shape, yes/no).
Writes benchmarks/results/vqa_easy_vqa.json and .md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {"full": {}, "whole_image": {"regions": False}, "no_noise": {"noise": 0.0}}


def demo_weights_hash() -> str:
    """First 16 hex digits of the demo CLIP weights' SHA-256 (read at the start of the run)."""
    import hashlib

    from vltools.models.clip_demo import weights_resource

    return hashlib.sha256(weights_resource().read_bytes()).hexdigest()[:16]


def qtype(question: str) -> str:
    q = question.lower()
    if "color" in q or "colour" in q:
        return "colour" if q.startswith("what") else "yes/no"
    if q.startswith("what"):
        return "shape"
    return "yes/no"


def _allow(folder: str) -> None:
    """Add ``folder`` to VLTOOLS_EXTRA_ROOTS for this process."""
    from vltools.core.settings import reset_settings

    extra = json.loads(os.environ.get("VLTOOLS_EXTRA_ROOTS") or "[]")
    os.environ["VLTOOLS_EXTRA_ROOTS"] = json.dumps([*extra, folder])
    reset_settings()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="use every k-th question so that about N are asked (0: all)")
    ap.add_argument("--model", default="demo-shapes")  # v1: the recorded figures
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default="vqa_easy_vqa")
    args = ap.parse_args(argv)

    import easy_vqa
    import torch

    torch.set_num_threads(2)
    import vltools

    answers = easy_vqa.get_answers()
    qs, ans, ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    # Only VLTOOLS_HOME is an allowed root by default: let the tools read the dataset's images.
    _allow(str(Path(next(iter(paths.values()) if isinstance(paths, dict) else paths[0])).parent))
    order = list(range(len(qs)))
    if args.limit and args.limit < len(qs):
        step = len(qs) / args.limit
        order = [int(i * step) for i in range(args.limit)]
    tr_q, tr_a, _ = easy_vqa.get_train_questions()
    overall_major = collections.Counter(tr_a).most_common(1)[0][0]
    by_type_major = {
        t: collections.Counter(a for q, a in zip(tr_q, tr_a, strict=True) if qtype(q) == t).most_common(1)[0][0]
        for t in ("colour", "shape", "yes/no")
    }
    variants = [v for v in args.variants.split(",") if v]
    args.weights = demo_weights_hash()
    correct = {v: collections.Counter() for v in variants + ["majority_overall", "majority_by_type"]}
    total = collections.Counter()
    seconds = collections.Counter()
    errors = []
    t_start = time.time()
    for n, i in enumerate(order):
        t = qtype(qs[i])
        total[t] += 1
        correct["majority_overall"][t] += overall_major == ans[i]
        correct["majority_by_type"][t] += by_type_major[t] == ans[i]
        for v in variants:
            t0 = time.perf_counter()
            out = vltools.call("vqa.zero_shot", {"image": paths[ids[i]], "question": qs[i], "candidates": answers,
                                                 "clip": args.model, **VARIANTS[v]})
            seconds[v] += time.perf_counter() - t0
            ok = out.answer == ans[i]
            correct[v][t] += ok
            if v == "full" and not ok and len(errors) < 25:
                errors.append({"question": qs[i], "image": ids[i], "truth": ans[i], "answer": out.answer})
        if (n + 1) % 200 == 0:
            done = {v: round(sum(correct[v].values()) / (n + 1), 4) for v in correct}
            print(f"[{n + 1}/{len(order)}] {time.time() - t_start:.0f}s {done}", file=sys.stderr, flush=True)
        if (n + 1) % 500 == 0 and n + 1 < len(order):  # partial results, in case the run is stopped
            _report(args, qs, order[: n + 1], correct, total, seconds, errors, overall_major, by_type_major,
                    variants, t_start, partial=True)
    _report(args, qs, order, correct, total, seconds, errors, overall_major, by_type_major, variants, t_start)
    return 0


def _report(args, qs, order, correct, total, seconds, errors, overall_major, by_type_major, variants, t_start,
            partial: bool = False) -> None:
    weights = args.weights
    types = ["colour", "shape", "yes/no"]
    table = {}
    for v in correct:
        table[v] = {"overall": round(sum(correct[v].values()) / max(1, sum(total.values())), 4)}
        for t in types:
            table[v][t] = round(correct[v][t] / total[t], 4) if total[t] else None
    n = len(order)
    subset = "all" if n == len(qs) else (
        f"first {n} questions in easy-VQA order (run stopped early)" if partial or not args.limit
        else f"every {len(qs) / n:.2f}-th question (fixed)")
    result = {
        "dataset": "easy-VQA test split",
        "questions": sum(total.values()),
        "questions_total": len(qs),
        "subset": subset,
        "partial": partial,
        "by_type_counts": dict(total),
        "model": args.model,
        "demo_weights_sha256_16": weights if args.model == "demo-shapes" else None,
        "accuracy": table,
        "majority_answers": {"overall": overall_major, **by_type_major},
        "seconds_per_question": {v: round(seconds[v] / max(1, n), 4) for v in variants},
        "wall_seconds": round(time.time() - t_start, 1),
        "sample_errors_full": errors,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Zero-shot VQA on easy-VQA test ({result['questions']} of {len(qs)} questions, CLIP `{args.model}`)",
        "",
        f"Subset: {subset}.",
        "",
        "| method | overall | colour | shape | yes/no |",
        "|---|---|---|---|---|",
    ]
    for v, row in table.items():
        lines.append(f"| {v} | {row['overall']:.3f} | " + " | ".join(f"{row[t]:.3f}" for t in types) + " |")
    lines += ["", f"Question counts: {dict(total)}; majority answers (train split): {result['majority_answers']}",
              f"Seconds per question per variant: {result['seconds_per_question']}",
              f"Demo weights sha256[:16]: {weights}"]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    if not partial:
        print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
