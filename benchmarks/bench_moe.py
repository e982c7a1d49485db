"""adapt.upcycle_moe (P37, CLIP-MoE) on the demo CLIP vs the base and plain adapt.finetune, same data, same budget.

Protocol (one run, deterministic by seed; the data of bench_adapt.py):
- new task: NEW held-out concepts of world v2, TRAIN_PER single-object scenes each for training (seeds
  60,000,000+), TEST_PER other scenes each for testing (seeds 61,000,000+);
- old task: OLD train concepts (the demo's original zero-shot skill), OLD_PER scenes each (seeds 62,000,000+);
- same budget: plain adapt.finetune runs as many passes over the training images as upcycle_moe's stages and
  router together ((experts - 1) * stage_epochs + router_epochs), same batch size and seed (each tool its lr).
The test split reports the tools' defaults (experts 4, top-2, the last 2 blocks, 4 clusters, 4 epochs per
stage and for the router, stage lr 1e-3, balance weight 0.1, router only; finetune lr 3e-4). upcycle_moe's stage
lr and balance weight were chosen with --split dev (other held-out concepts, other seeds) by the mean of new and
old accuracy; the dev runs are in benchmarks/results/moe_dev.json. Accuracy = top-1 zero-shot among the task's
class names.

    PYTHONPATH=. nice -n 19 python benchmarks/bench_moe.py [--stage-epochs 4 --router-epochs 4]

Writes benchmarks/results/moe.json and .md.
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

from benchmarks.bench_adapt import NEW, OLD, OLD_PER, TEST_PER, TRAIN_PER, make_folder  # noqa: E402


def render(res: dict) -> list[str]:
    """The markdown table of a result (images/s: each MoE beside the base timed in turn in its own run)."""
    runs, pr = res["runs"], res["protocol"]
    b = runs[0]["before"]
    budget = pr["finetune_epochs"]
    lines = ["# adapt.upcycle_moe vs plain adapt.finetune on the demo CLIP", "",
             f"{NEW} held-out concepts x {TRAIN_PER} training images, tested on {NEW * TEST_PER} other images; old "
             f"task: {OLD} original concepts x {OLD_PER} images; {budget} passes each, 1 CPU thread "
             f"({pr.get('split', 'test')} split).", "",
             "| model | new classes | old concepts | change on old | image-tower params (active) | "
             "images/s (base, same run) | steps | wall s |", "|---|---|---|---|---|---|---|---|"]
    moe0 = next((r for r in runs if "image_params_base" in r), None)
    base_params = f"{moe0['image_params_base']:,}" if moe0 else "-"
    lines.append(f"| base demo | {b['new_accuracy']:.1%} | {b['old_accuracy']:.1%} | - | {base_params} | - | - | - |")
    for r in runs:
        a = r["after"]
        params = f"{r['image_params_moe']:,} ({r['active_image_params']:,})" if "image_params_moe" in r \
            else base_params
        speed = f"{r['moe_images_per_s']} ({r['base_images_per_s']})" if "moe_images_per_s" in r else "-"
        lines.append(f"| {r['variant']} | **{a['new_accuracy']:.1%}** | **{a['old_accuracy']:.1%}** | "
                     f"{(a['old_accuracy'] - b['old_accuracy']) * 100:+.1f} pt | {params} | {speed} | "
                     f"{r['steps']} | {r['wall_s']} |")
    for r in runs:
        if "stages" in r:
            lines += ["", f"{r['variant']}: each expert alone (dense), new / old; kept negatives:"]
            lines += [f"- stage {s['stage']}: {s['scores']['new_accuracy']:.1%} / {s['scores']['old_accuracy']:.1%}; "
                      f"{s['kept_negatives']:.2f}" for s in r["stages"]]
            lines += [f"- {x['path']}: load {x['load']}, {x['distinct_routes']} distinct routes, expert distance "
                      f"{x['expert_distance']:.3f}" for x in r["layers"]]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--stage-epochs", type=int, default=4)
    ap.add_argument("--router-epochs", type=int, default=4)
    ap.add_argument("--variants", default="finetune,moe,moe_experts")
    ap.add_argument("--split", choices=["dev", "test"], default="test",
                    help="dev: other held-out concepts and seeds, for choosing the tool's defaults")
    ap.add_argument("--moe-args", default="{}", help="JSON of extra adapt.upcycle_moe fields (dev sweeps)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "moe"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    from vltools.world.concept_table import concept_names

    if args.split == "test":  # bench_adapt.py's concepts and seeds
        new, old, seeds = concept_names("heldout")[::10][:NEW], concept_names("train")[::15][:OLD], 60_000_000
    else:  # disjoint concepts, other seeds
        new, old, seeds = concept_names("heldout")[5::10][:NEW], concept_names("train")[7::15][:OLD], 70_000_000
    extra = json.loads(args.moe_args)
    budget = (args.experts - 1) * args.stage_epochs + args.router_epochs
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folder(root / "new_train", new, TRAIN_PER, seeds)
        make_folder(root / "new_test", new, TEST_PER, seeds + 1_000_000)
        make_folder(root / "old", old, OLD_PER, seeds + 2_000_000)
        settings = Settings(allowed_roots=[root], home=root / "home", device="cpu")
        common = {"data": str(root / "new_train"), "eval_data": str(root / "new_test"), "old_data": str(root / "old"),
                  "model": "demo", "seed": 0}
        for variant in args.variants.split(","):
            t = time.time()
            if variant == "finetune":
                out = get_registry().call("adapt.finetune", {**common, "method": "plain", "epochs": budget},
                                          ctx=Context(settings=settings))
                row = {"variant": "plain finetune", "steps": out.steps}
            else:
                out = get_registry().call("adapt.upcycle_moe", {
                    **common, "experts": args.experts, "stage_epochs": args.stage_epochs,
                    "router_epochs": args.router_epochs, "train_experts": variant == "moe_experts", **extra},
                    ctx=Context(settings=settings))
                row = {"variant": "upcycle_moe" + (" (+experts)" if variant == "moe_experts" else " (router only)"),
                       "steps": out.steps, "kind": out.kind,
                       "layers": [layer.model_dump() for layer in out.layers],
                       "stages": [s.model_dump() for s in out.stages],
                       "image_params_base": out.image_params_base, "image_params_moe": out.image_params_moe,
                       "active_image_params": out.active_image_params,
                       "base_images_per_s": out.base_images_per_s, "moe_images_per_s": out.moe_images_per_s}
            row.update({"wall_s": round(time.time() - t, 1), "before": out.before.model_dump(),
                        "after": out.after.model_dump()})
            runs.append(row)
            print(json.dumps(row), file=sys.stderr)
    res = {"protocol": {"split": args.split, "moe_args": extra,
                        "new_concepts": new, "train_per_class": TRAIN_PER, "test_per_class": TEST_PER,
                        "old_concepts": len(old), "old_per_class": OLD_PER, "experts": args.experts,
                        "stage_epochs": args.stage_epochs, "router_epochs": args.router_epochs,
                        "finetune_epochs": budget, "model": "demo", "torch_threads": 1, "seed": 0},
           "runs": runs, "command": "PYTHONPATH=. nice -n 19 python benchmarks/bench_moe.py " + " ".join(argv or [])}
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = render(res)
    out_path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main(sys.argv[1:]))
