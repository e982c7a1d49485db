"""mIoU of `segment.open_vocab` modes vs the plain dense-CLIP baseline on world v2 scenes (exact masks).

Scenes: objects theme, 1-3 objects, 128 px, every background kind, drawn from seeds 30,000,000 + k
(dev) and 31,000,000 + k (test), disjoint from the demo CLIP's training seeds (20,000,000 + k).
Test scenes come in two concept splits: **train** concepts (seen in the demo's training) and
**held-out** concepts (never in a training image or caption). The labels given are the concepts in
the scene (each must be found; the rest of the image is background); IoU per (scene, label)
against the union of that concept's visible masks, mIoU = their mean.

Configurations (image side computed once per scene and mode, text options on top):
plain (whole-image dense features, no text refinement: the baseline), plain + text refinement,
dense (Trident-style windows, no global step), dense + global step, dense + text refinement (P48),
dense + text refinement + WordNet expansion + prototype calibration (P27), proposals (+ text
refinement). The text-refinement strength and the calibration strength are chosen on the dev
scenes (train concepts) and then frozen for the test scenes.

    nice -n 19 .venv/bin/python benchmarks/bench_segment.py [--clip demo] [--dev 24] [--test 40]

Writes benchmarks/results/bench_segment.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
DEV_BASE, TEST_BASE = 30_000_000, 31_000_000


def scenes(base: int, n: int, split: str) -> list[tuple[object, list[str], dict[str, np.ndarray]]]:
    from vltools.world import generate_object_scene

    out = []
    for k in range(n):
        sc = generate_object_scene(base + k, n_objects=1 + k % 3, split=split, image_size=128, repeat_p=0.0)
        gt: dict[str, np.ndarray] = {}
        for o, m in zip(sc.labels["objects"], sc.visible_masks, strict=True):
            gt[o["concept"]] = gt.get(o["concept"], np.zeros_like(m)) | m
        out.append((sc.image, list(gt), gt))
    return out


def ious(res, gt: dict[str, np.ndarray]) -> list[float]:
    out = []
    for i, lab in enumerate(res.labels):
        p, g = res.label_map == i, gt[lab]
        u = (p | g).sum()
        out.append(float((p & g).sum() / u) if u else 1.0)
    return out


_TEXT: dict[tuple[str, ...], np.ndarray] = {}


def text_rows(backend, groups: list[list[str]]) -> np.ndarray:
    """Label (then background) embeddings, each group embedded once per run (the text side is the same
    whatever the image)."""
    from vltools.tools import _ovseg

    rows = []
    for g in [*groups, *([b] for b in _ovseg.BACKGROUND_PROMPTS)]:
        key = tuple(g)
        if key not in _TEXT:
            _TEXT[key] = _ovseg.label_embeddings(backend, [list(g)])[0]
        rows.append(_TEXT[key])
    return np.stack(rows)


def dense_both(backend, image) -> dict[tuple, object]:
    """Dense-mode features without and with the global step, from one encoding of the windows."""
    from vltools.tools import _ovseg

    canvas, crop = _ovseg.square_canvas(image)
    grid = 24
    spliced, glob = _ovseg.trident_features(backend, canvas, grid)
    refined = _ovseg.global_refine(spliced, glob, _ovseg.cell_colours(canvas, grid))
    emb = backend.encode_images([canvas])[0]
    return {("dense", flag): _ovseg.ImageFeatures("dense", canvas.size[0], crop, emb, f.reshape(grid * grid, -1),
                                                  grid=grid)
            for flag, f in ((False, spliced), (True, refined))}


def run(backend, data, configs, expansions) -> dict[str, float]:
    from vltools.tools import _ovseg

    per: dict[str, list[float]] = {name: [] for name in configs}
    for image, labels, gt in data:
        feats: dict[tuple, object] = {}
        for name, cfg in configs.items():
            img_key = (cfg["mode"], cfg.get("refine_global", True))
            if img_key not in feats and cfg["mode"] == "dense":
                feats.update(dense_both(backend, image))  # the windows are encoded once for both variants
            if img_key not in feats:
                feats[img_key] = _ovseg.image_features(backend, image, mode=cfg["mode"])
            names = [[lab, *(expansions(lab) if cfg.get("expand") else [])] for lab in labels]
            res = _ovseg.decide(backend, feats[img_key], names, calibration=cfg.get("calibration", 0.0),
                                text_refine=cfg.get("text_refine", 0.0), text=text_rows(backend, names))
            per[name] += ious(res, gt)
        sys.stderr.write(f"scene {len(per[name]) and sum(1 for _ in per[name])} ious done\n")
    return {k: float(np.mean(v)) for k, v in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="demo")
    ap.add_argument("--dev", type=int, default=24)
    ap.add_argument("--test", type=int, default=40)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from functools import lru_cache

    from vltools.core.settings import Settings
    from vltools.models.clip import get_clip
    from vltools.tools.segment import wordnet_expansions

    backend = get_clip(args.clip, Settings(device="cpu"))
    expansions = lru_cache(maxsize=None)(wordnet_expansions)
    t0 = time.time()
    # 1. dev (train concepts): text-refinement strength, then calibration strength with WordNet expansion.
    dev = scenes(DEV_BASE, args.dev, "train")
    grid_tr = {f"dense tr={s}": {"mode": "dense", "text_refine": s} for s in (0.0, 0.25, 0.5, 1.0)}
    dev_tr = run(backend, dev, grid_tr, expansions)
    best_tr = max((0.0, 0.25, 0.5, 1.0), key=lambda s: dev_tr[f"dense tr={s}"])
    grid_cal = {f"dense+wn cal={c}": {"mode": "dense", "text_refine": best_tr, "expand": True, "calibration": c}
                for c in (0.0, 0.25, 0.5)}
    dev_cal = run(backend, dev, grid_cal, expansions)
    best_cal = max((0.0, 0.25, 0.5), key=lambda c: dev_cal[f"dense+wn cal={c}"])
    dev_s = time.time() - t0
    # 2. test, train and held-out concepts, every configuration side by side.
    configs = {
        "plain (baseline)": {"mode": "plain"},
        "plain + text refine": {"mode": "plain", "text_refine": best_tr},
        "dense, windows only": {"mode": "dense", "refine_global": False},
        "dense (windows + global)": {"mode": "dense"},
        "dense + text refine": {"mode": "dense", "text_refine": best_tr},
        "dense + text refine + WordNet + calibration": {"mode": "dense", "text_refine": best_tr, "expand": True,
                                                         "calibration": best_cal},
        "proposals": {"mode": "proposals"},
        "proposals + text refine": {"mode": "proposals", "text_refine": best_tr},
    }
    test = {}
    for split in ("train", "heldout"):
        test[split] = run(backend, scenes(TEST_BASE, args.test, split), configs, expansions)
    result = {
        "clip": args.clip, "dev_scenes": args.dev, "test_scenes_per_split": args.test,
        "dev": {**dev_tr, **dev_cal}, "chosen": {"text_refine": best_tr, "calibration": best_cal},
        "test": test, "seconds": {"dev": round(dev_s, 1), "total": round(time.time() - t0, 1)},
        "configs": configs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_segment.json").write_text(json.dumps(result, indent=2))
    lines = [f"# segment.open_vocab mIoU on world v2 scenes ({args.clip})", "",
             f"Dev ({args.dev} scenes, train concepts) chose text_refine={best_tr}, calibration={best_cal}.", "",
             "| configuration | train concepts | held-out concepts |", "|---|---|---|"]
    for name in configs:
        lines.append(f"| {name} | {test['train'][name]:.3f} | {test['heldout'][name]:.3f} |")
    lines += ["", f"{args.test} test scenes per split; wall {result['seconds']['total']} s."]
    (RESULTS / "bench_segment.md").write_text("\n".join(lines) + "\n")
    sys.stderr.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
