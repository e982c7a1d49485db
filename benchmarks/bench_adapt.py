"""adapt.finetune on the demo CLIP: learn held-out world concepts from a few images, with and without forgetting.

Protocol (one run, everything deterministic by seed; all three methods side by side on the same data):
- new task: NEW held-out concepts of world v2 (never in the demo CLIP's training), TRAIN_PER single-object
  scenes each for training (seeds 60,000,000+) and TEST_PER other scenes each for testing (seeds 61,000,000+);
- old task: OLD train concepts (the demo's original zero-shot skill), OLD_PER scenes each (seeds 62,000,000+);
- adapt.finetune with method plain / mixup / continual, the same epochs, lr and seed; before = the base demo.
Accuracy = top-1 zero-shot among the task's class names (templates of image.classify's default set).
Nothing is tuned here: the tool's defaults are used (lr 3e-4, batch 32; continual: 1000 replayed words, weight 1).

    PYTHONPATH=. nice -n 19 python benchmarks/bench_adapt.py [--epochs 10]

Writes benchmarks/results/adapt.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

NEW, TRAIN_PER, TEST_PER = 10, 8, 10
OLD, OLD_PER = 40, 5


def make_folder(folder: Path, names: list[str], per: int, seed: int) -> None:
    from vltools.world.objects import generate_object_scene

    for ci, name in enumerate(names):
        d = folder / name.replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per):
            sc = generate_object_scene(seed + ci * 1000 + k, concept_names=[name], n_objects=1, image_size=96)
            sc.image.save(d / f"{k}.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--methods", default="plain,mixup,continual")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "adapt"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    from vltools.world.concept_table import concept_names

    new = concept_names("heldout")[::10][:NEW]
    old = concept_names("train")[::15][:OLD]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.time()
        make_folder(root / "new_train", new, TRAIN_PER, 60_000_000)
        make_folder(root / "new_test", new, TEST_PER, 61_000_000)
        make_folder(root / "old", old, OLD_PER, 62_000_000)
        gen_s = time.time() - t0
        settings = Settings(allowed_roots=[root], home=root / "home", device="cpu")
        runs = []
        for method in args.methods.split(","):
            t = time.time()
            out = get_registry().call("adapt.finetune", {
                "data": str(root / "new_train"), "eval_data": str(root / "new_test"), "old_data": str(root / "old"),
                "model": "demo", "method": method, "epochs": args.epochs, "seed": 0}, ctx=Context(settings=settings))
            runs.append({"method": method, "wall_s": round(time.time() - t, 1), "steps": out.steps,
                         "before": out.before.model_dump(), "after": out.after.model_dump(), "log_last": out.log[-1]})
            print(f"{method}: {runs[-1]}", file=sys.stderr)
    res = {"protocol": {"new_concepts": new, "train_per_class": TRAIN_PER, "test_per_class": TEST_PER,
                        "old_concepts": len(old), "old_per_class": OLD_PER, "epochs": args.epochs, "model": "demo",
                        "torch_threads": 1, "data_generation_s": round(gen_s, 1)},
           "runs": runs, "command": "PYTHONPATH=. nice -n 19 python benchmarks/bench_adapt.py " + " ".join(argv or [])}
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.with_suffix(".json").write_text(json.dumps(res, indent=1))
    b = runs[0]["before"]
    lines = ["# adapt.finetune on the demo CLIP (held-out concepts, few images per class)", "",
             f"{NEW} held-out concepts x {TRAIN_PER} training images, tested on {NEW * TEST_PER} other images; "
             f"old task: {OLD} original (train) concepts x {OLD_PER} images; {args.epochs} epochs, 1 CPU thread.", "",
             "| method | new classes: before | after | old concepts: before | after | change on old | wall s |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        a = r["after"]
        lines.append(f"| {r['method']} | {b['new_accuracy']:.1%} | **{a['new_accuracy']:.1%}** | "
                     f"{b['old_accuracy']:.1%} | **{a['old_accuracy']:.1%}** | "
                     f"{(a['old_accuracy'] - b['old_accuracy']) * 100:+.1f} pt | {r['wall_s']} |")
    out_path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main(sys.argv[1:]))
