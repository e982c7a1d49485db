"""Open-vocabulary `vqa.zero_shot` on world v2 scenes: accuracy per question type, train vs held-out concepts.

``python benchmarks/bench_vqa_world.py [--scenes N] [--split dev|test] [--clip demo]``

Scenes: `vltools.world.generate_object_scene` with 1-3 objects, seeds 29,600,000 + k (never used in
training), ``split="train"`` (concepts the demo CLIP was trained on) and ``split="heldout"`` (the
held-out concepts: never in a training image or caption). dev = k < N, test = N <= k < 2N: anything
tuned is tuned on dev. Questions and exact answers are the world's own (``scene.qa``): "Is there a
X?" (present, and an absent concept), "How many objects are there?", "How many Xs are there?",
"What is on the left/right?", "Where is the X?". Each is sent through the registry with no
candidates (the demo CLIP's declared world supplies the vocabulary). Baseline: the majority answer
of each type on the same questions. Writes results/vqa_world_{split}.json / .md.
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


def qtype(qa: dict) -> str | None:
    t = qa["type"]
    if t == "exists":
        return "exists_yes" if qa["answer"] == "yes" else "exists_no"
    if t == "count":
        return "count_all" if "objects" in qa["question"] else "count_one"
    return t if t in ("left", "right", "where") else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=40, help="scenes per concept split (dev and test each)")
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vqa_world_"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([str(tmp)])
    import vltools
    from vltools.world import generate_object_scene

    rows = []
    t0 = time.time()
    start = 0 if args.split == "dev" else args.scenes
    for concept_split in ("train", "heldout"):
        for k in range(start, start + args.scenes):
            seed = SEED_BASE + k + (0 if concept_split == "train" else 500_000)
            sc = generate_object_scene(seed, n_objects=1 + k % 3, split=concept_split)
            path = tmp / f"{concept_split}_{seed}.png"
            sc.image.save(path)
            for qa in sc.qa:
                t = qtype(qa)
                if t is None:
                    continue
                out = vltools.call("vqa.zero_shot", {"image": str(path), "question": qa["question"],
                                                     "clip": args.clip})
                truth = qa["answer"].lower()
                ans = out.answer.lower()
                rows.append({"seed": seed, "concepts": concept_split, "type": t, "question": qa["question"],
                             "truth": truth, "answer": ans, "correct": ans == truth,
                             "objects": [o["concept"] for o in sc.labels["objects"]]})
        print(f"{concept_split}: {len(rows)} questions, {time.time() - t0:.0f} s", file=sys.stderr)
    acc: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[r["concepts"]][r["type"]].append(r["correct"])
    majority: dict[str, dict[str, float]] = defaultdict(dict)
    for cs in ("train", "heldout"):
        for t in TYPES:
            truths = [r["truth"] for r in rows if r["concepts"] == cs and r["type"] == t]
            if truths:
                majority[cs][t] = Counter(truths).most_common(1)[0][1] / len(truths)
    summary = {cs: {t: {"n": len(v), "accuracy": sum(v) / len(v), "majority": majority[cs].get(t)}
                    for t, v in sorted(acc[cs].items())} for cs in acc}
    result = {"args": vars(args), "seconds": round(time.time() - t0, 1), "summary": summary, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"vqa_world_{args.split}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| type | train concepts: n | accuracy | majority | held-out concepts: n | accuracy | majority |",
             "|---|---|---|---|---|---|---|"]
    for t in TYPES:
        a, b = summary.get("train", {}).get(t), summary.get("heldout", {}).get(t)
        fmt = lambda s: f"{s['n']} | {s['accuracy']:.3f} | {s['majority']:.3f}" if s else "0 | - | -"  # noqa: E731
        lines.append(f"| {t} | {fmt(a)} | {fmt(b)} |")
    (out / f"vqa_world_{args.split}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
