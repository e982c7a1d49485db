"""Open-vocabulary `vqa.zero_shot` on world v2 scenes: accuracy per question type, train vs held-out concepts.

``python benchmarks/bench_vqa_world.py [--scenes N] [--split dev|test] [--clip demo]``

Scenes: `vltools.world.generate_object_scene` with 1-3 objects, seeds 29,600,000 + k (never used in
training), ``split="train"`` (concepts the demo CLIP was trained on) and ``split="heldout"`` (the
held-out concepts: never in a training image or caption). dev = k < N, test = N <= k < 2N: anything
tuned is tuned on dev. Questions and exact answers are the world's own (``scene.qa``): "Is there a
X?" (present, and an absent concept), "How many objects are there?", "How many Xs are there?",
"What is on the left/right?", "Where is the X?". Each is sent through the registry with no
candidates (the demo CLIP's declared world supplies the vocabulary). Baselines: the majority answer
of each type on the same questions; for counting and left/right also the earlier methods, run on the
same questions in the same run (``objects: false``: noun shares for "how many objects", count
statements alone for "how many Xs", the left/right half of the image classified among the nouns),
and chance for left/right (1 / the number of nouns). ``--heldout-scenes`` sets fewer held-out scenes;
``--link-baseline L`` also answers "how many objects" with the object proposals' ``LINK`` set to L.
``--compare-superpixels`` also answers count_all, count_one, left and right with ``proposals:
"superpixels"`` (the SLIC proposals) beside the default (for the demo CLIP: the learned proposals),
on the same questions in the same run; the table then gives Wilson 95% intervals.
Writes results/vqa_world_{split}{tag}.json / .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SEED_BASE = 29_600_000
TYPES = ("exists_yes", "exists_no", "count_all", "count_one", "left", "right", "where")
OLD_TYPES = ("count_all", "count_one", "left", "right")


def qtype(qa: dict) -> str | None:
    t = qa["type"]
    if t == "exists":
        return "exists_yes" if qa["answer"] == "yes" else "exists_no"
    if t == "count":
        return "count_all" if "objects" in qa["question"] else "count_one"
    return t if t in ("left", "right", "where") else None


def _ci(rows: list[dict], key: str) -> str:
    """Accuracy of ``rows[key]`` with its Wilson 95% interval."""
    n, k = len(rows), sum(bool(r[key]) for r in rows)
    z = 1.96
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return f"{p:.3f} [{max(0.0, c - h):.2f}, {min(1.0, c + h):.2f}]"


def _report(rows: list[dict], args: argparse.Namespace, t0: float, world: int | None) -> None:
    """Write the JSON and the table for the questions answered so far."""
    acc: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[r["concepts"]][r["type"]].append(r["correct"])
    majority: dict[str, dict[str, float]] = defaultdict(dict)
    for cs in ("train", "heldout"):
        for t in TYPES:
            truths = [r["truth"] for r in rows if r["concepts"] == cs and r["type"] == t]
            if truths:
                majority[cs][t] = Counter(truths).most_common(1)[0][1] / len(truths)
    summary: dict[str, dict] = {}
    for cs in acc:
        summary[cs] = {}
        for t, v in sorted(acc[cs].items()):
            rs = [r for r in rows if r["concepts"] == cs and r["type"] == t]
            e = {"n": len(v), "accuracy": sum(v) / len(v), "majority": majority[cs].get(t)}
            if t in OLD_TYPES:
                e["accuracy_old"] = sum(r["correct_old"] for r in rs) / len(rs)
            if t in OLD_TYPES and all("correct_slic" in r for r in rs):
                e["accuracy_slic"] = sum(r["correct_slic"] for r in rs) / len(rs)
            if t in ("left", "right") and world:
                e["chance"] = 1.0 / world
            if t == "count_all" and all("correct_link_baseline" in r for r in rs):
                e["accuracy_link_baseline"] = sum(r["correct_link_baseline"] for r in rs) / len(rs)
            if t == "count_all":
                e["by_count"] = {c: {"n": len(g), "accuracy": sum(r["correct"] for r in g) / len(g),
                                     "accuracy_old": sum(r["correct_old"] for r in g) / len(g),
                                     **({"accuracy_link_baseline": sum(r["correct_link_baseline"] for r in g) / len(g)}
                                        if all("correct_link_baseline" in r for r in g) else {}),
                                     **({"accuracy_slic": sum(r["correct_slic"] for r in g) / len(g)}
                                        if all("correct_slic" in r for r in g) else {})}
                                 for c in sorted({r["truth"] for r in rs})
                                 for g in [[r for r in rs if r["truth"] == c]]}
            summary[cs][t] = e
    result = {"args": vars(args), "seconds": round(time.time() - t0, 1), "summary": summary, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"vqa_world_{args.split}{args.tag}.json").write_text(json.dumps(result, indent=1) + "\n")

    def fmt(s: dict | None) -> str:
        if not s:
            return "0 | - | - | -"
        old = f"{s['accuracy_old']:.3f}" if "accuracy_old" in s else "-"
        return f"{s['n']} | **{s['accuracy']:.3f}** | {old} | {s['majority']:.3f}"

    lines = ["| type | train: n | accuracy | earlier method | majority | held-out: n | accuracy | earlier method "
             "| majority |", "|---|---|---|---|---|---|---|---|---|"]
    for t in TYPES:
        lines.append(f"| {t} | {fmt(summary.get('train', {}).get(t))} | {fmt(summary.get('heldout', {}).get(t))} |")
    for cs in summary:
        for c, e in summary[cs].get("count_all", {}).get("by_count", {}).items():
            lines.append(f"| count_all = {c} ({cs}) | {e['n']} | **{e['accuracy']:.3f}** | {e['accuracy_old']:.3f} "
                         "| | | | | |")
    for cs in summary:
        e = summary[cs].get("count_all", {})
        if "accuracy_link_baseline" in e:
            by = ", ".join(f"{c}: {v['accuracy_link_baseline']:.3f}" for c, v in e["by_count"].items())
            lines.append(f"\ncount_all ({cs}) with LINK = {args.link_baseline}: {e['accuracy_link_baseline']:.3f} "
                         f"(by count {by})")
    if any("correct_slic" in r for r in rows):
        lines += ["", "Learned vs superpixel proposals (same questions, same run; Wilson 95% intervals):", "",
                  "| concepts | type | n | learned (default) | superpixels | objects: false |",
                  "|---|---|---|---|---|---|"]
        for cs in summary:
            for t in OLD_TYPES:
                rs = [r for r in rows if r["concepts"] == cs and r["type"] == t and "correct_slic" in r]
                groups = [(t, rs)] + ([(f"count_all = {c}", [r for r in rs if r["truth"] == c])
                                       for c in sorted({r["truth"] for r in rs})] if t == "count_all" else [])
                for name, g in groups:
                    if g:
                        lines.append(f"| {cs} | {name} | {len(g)} | {_ci(g, 'correct')} | {_ci(g, 'correct_slic')} "
                                     f"| {_ci(g, 'correct_old')} |")
    if world:
        lines.append(f"\nchance for left/right: 1/{world} = {1 / world:.4f}; seconds: {result['seconds']}")
    (out / f"vqa_world_{args.split}{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=40, help="scenes per concept split (dev and test each)")
    ap.add_argument("--heldout-scenes", type=int, default=None, help="held-out-concept scenes (default: --scenes)")
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--types", default=",".join(TYPES), help="question types to ask (default: all)")
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--link-baseline", type=int, default=None,
                    help="also answer count_all with the object proposals' LINK set to this (side by side)")
    ap.add_argument("--compare-superpixels", action="store_true",
                    help="also answer count/left/right with proposals: superpixels (side by side)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vqa_world_"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([str(tmp)])
    import vltools
    from vltools.world import generate_object_scene

    rows = []
    t0 = time.time()
    start = 0 if args.split == "dev" else args.scenes
    n_heldout = args.heldout_scenes if args.heldout_scenes is not None else args.scenes
    world = None
    for k in range(start, start + max(args.scenes, n_heldout)):  # interleaved: a stopped run keeps both splits
        for concept_split in ("train", "heldout"):
            if k - start >= (args.scenes if concept_split == "train" else n_heldout):
                continue
            seed = SEED_BASE + k + (0 if concept_split == "train" else 500_000)
            sc = generate_object_scene(seed, n_objects=1 + k % 3, split=concept_split)
            path = tmp / f"{concept_split}_{seed}.png"
            sc.image.save(path)
            for qa in sc.qa:
                t = qtype(qa)
                if t is None or t not in args.types.split(","):
                    continue
                out = vltools.call("vqa.zero_shot", {"image": str(path), "question": qa["question"],
                                                     "clip": args.clip})
                truth = qa["answer"].lower()
                ans = out.answer.lower()
                row = {"seed": seed, "concepts": concept_split, "type": t, "question": qa["question"],
                       "truth": truth, "answer": ans, "correct": ans == truth,
                       "objects": [o["concept"] for o in sc.labels["objects"]]}
                if t in OLD_TYPES:
                    old = vltools.call("vqa.zero_shot", {"image": str(path), "question": qa["question"],
                                                         "clip": args.clip, "objects": False})
                    row["answer_old"] = old.answer.lower()
                    row["correct_old"] = row["answer_old"] == truth
                if t in OLD_TYPES and args.compare_superpixels:
                    sp = vltools.call("vqa.zero_shot", {"image": str(path), "question": qa["question"],
                                                        "clip": args.clip, "proposals": "superpixels"})
                    row["answer_slic"] = sp.answer.lower()
                    row["correct_slic"] = row["answer_slic"] == truth
                if t == "count_all" and args.link_baseline is not None:
                    from vltools.tools import _objects

                    saved, _objects.LINK = _objects.LINK, args.link_baseline
                    try:
                        base = vltools.call("vqa.zero_shot", {"image": str(path), "question": qa["question"],
                                                              "clip": args.clip})
                    finally:
                        _objects.LINK = saved
                    row["answer_link_baseline"] = base.answer.lower()
                    row["correct_link_baseline"] = row["answer_link_baseline"] == truth
                if t in ("left", "right"):
                    world = world or len(out.candidates)
                rows.append(row)
        if (k - start) % 5 == 4:
            _report(rows, args, t0, world)
            print(f"scene {k - start + 1}: {len(rows)} questions, {time.time() - t0:.0f} s", file=sys.stderr)
    _report(rows, args, t0, world)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
