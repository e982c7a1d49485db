"""Object-proposal counts (`vltools.tools._objects`) on the DEV scenes of `bench_vqa_world.py`, by variant.

``python benchmarks/bench_objects_dev.py [--scenes 40]``

Scenes k < N (seeds 29,600,000 + k, train concepts, and + 500,000 held-out concepts; 1 + k % 3 objects):
the dev split of `bench_vqa_world.py`, never its test split. For each variant, the share of scenes
where the number of proposals equals the number of objects, and the under/over counts. No model.
Variants: the linking distance ``LINK`` (0, 1, 2 px), and, on top of link 1, two splits of merged
objects computed here: a neck split (a region whose erosion leaves two or more large cores) and a
colour split (a region whose pixel colours are bimodal, each mode one connected piece).
``--learned``: also the learned proposals (`_objects.learned_regions`, `vltools.models.objectness`;
``--weights`` another weights file) over a grid of decoding thresholds (foreground probability x
core centre-ness x merge depth x smallest area): the thresholds of `_objects` (``FG_THRESHOLD``, ``CORE``,
``DEPTH``, ``LEARNED_MIN_AREA``)
are chosen here (on dev scenes only).
Writes results/objects_dev{tag}.json / .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEED_BASE = 29_600_000
VARIANTS = {"link 0 (no linking)": {"link": 0}, "link 1 px": {"link": 1}, "link 2 px": {"link": 2}}
LEARNED_FG = (0.4, 0.5)
LEARNED_CORE = (0.3, 0.4, 0.5)
LEARNED_DEPTH = (0.0, 0.2, 0.3, 0.4)  # 0: never merge
LEARNED_AREA = (0.005, 0.01, 0.02)
# Splits of merged objects, tried on top of link 1 (evaluated here, not in the library):
SPLITS = {"link 1 + neck split (erosion 2 px, cores >= 2%)": ("neck", 2, 0.02),
          "link 1 + neck split (erosion 3 px, cores >= 4%)": ("neck", 3, 0.04),
          "link 1 + colour split (2-means, gap 5 sd, parts >= 2%)": ("colour", 5.0, 0.02),
          "link 1 + colour split (2-means, gap 3 sd, parts >= 2%)": ("colour", 3.0, 0.02)}


def _neck_parts(mask: np.ndarray, radius: int, core: float) -> int:
    """Parts of a region joined by necks narrower than 2 * radius: eroded cores of at least ``core`` of the image."""
    from scipy import ndimage as ndi

    cores, c = ndi.label(ndi.binary_erosion(mask, iterations=radius))
    sizes = np.bincount(cores.ravel(), minlength=c + 1)[1:]
    return max(1, int((sizes >= core * mask.size).sum()))


def _colour_parts(mask: np.ndarray, lab: np.ndarray, gap: float, part: float) -> int:
    """2 when the region's CIELAB pixels split by 2-means into two clusters ``gap`` pooled s.d. apart, each
    mostly one connected piece of at least ``part`` of the image (a bimodal colour histogram); else 1."""
    from scipy import ndimage as ndi

    if mask.sum() < 2 * part * mask.size:
        return 1
    x = lab[mask]
    i0 = int(np.argmax(((x - x.mean(0)) ** 2).sum(1)))
    c = x[[i0, int(np.argmax(((x - x[i0]) ** 2).sum(1)))]]
    lbl = np.zeros(len(x), int)
    for _ in range(10):
        lbl = ((x[:, None] - c[None]) ** 2).sum(2).argmin(1)
        if min((lbl == 0).sum(), (lbl == 1).sum()) == 0:
            return 1
        c = np.stack([x[lbl == j].mean(0) for j in (0, 1)])
    sd = float(np.sqrt(np.mean([x[lbl == j].var(0).sum() for j in (0, 1)])))
    if np.linalg.norm(c[0] - c[1]) <= gap * max(sd, 1e-6):
        return 1
    img = np.zeros(mask.shape, int)
    img[mask] = lbl + 1
    for j in (1, 2):
        cc, nc = ndi.label(ndi.binary_opening(img == j, iterations=1))
        if nc == 0:
            return 1
        biggest = np.bincount(cc.ravel())[1:].max()
        if biggest < 0.6 * (img == j).sum() or biggest < part * mask.size:
            return 1
    return 2


def _tally(counts: Any) -> dict:
    """Counted vs true object numbers ((k, n) pairs) -> right / under / over, per true count, accuracy."""
    r: dict = {"ok": 0, "under": 0, "over": 0, "by_count": {}}
    for k, n in counts:
        r["ok" if k == n else "under" if k < n else "over"] += 1
        b = r["by_count"].setdefault(str(n), [0, 0])
        b[0] += k == n
        b[1] += 1
    r["accuracy"] = r["ok"] / max(1, sum(b[1] for b in r["by_count"].values()))
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--learned", action="store_true", help="also the learned proposals over a threshold grid")
    ap.add_argument("--weights", default=None, help="learned: this weights file instead of the committed one")
    ap.add_argument("--no-superpixels", action="store_true", help="skip the superpixel variants")
    args = ap.parse_args(argv)
    from vltools.tools import _objects
    from vltools.world import generate_object_scene

    t0 = time.time()
    scenes = []
    for k in range(args.scenes):
        for split in ("train", "heldout"):
            sc = generate_object_scene(SEED_BASE + k + (0 if split == "train" else 500_000), n_objects=1 + k % 3,
                                       split=split)
            scenes.append((sc.image, len(sc.labels["objects"])))
    result: dict[str, dict] = {}
    if args.learned:
        from vltools.models import objectness

        maps = [objectness.predict(image, args.weights) for image, _ in scenes]
        for fg_t, core, depth, area in [(f, c, d, a) for f in LEARNED_FG for c in LEARNED_CORE for d in LEARNED_DEPTH
                                        for a in LEARNED_AREA]:
            result[f"learned (fg > {fg_t}, core > {core}, depth {depth}, area >= {area})"] = _tally(
                (len(_objects.decode(fg, cn, fg_threshold=fg_t, core=core, depth=depth, min_area=area)), n)
                for (fg, cn), (_, n) in zip(maps, scenes, strict=True))
    for name, kw in ({} if args.no_superpixels else VARIANTS).items():
        result[name] = _tally((len(_objects.object_regions(image, **kw)), n) for image, n in scenes)
    from skimage import color

    def split_count(image: Any, kind: str, a: float, b: float) -> int:
        lab = color.rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
        return sum(_neck_parts(g.mask, int(a), b) if kind == "neck" else _colour_parts(g.mask, lab, a, b)
                   for g in _objects.object_regions(image, link=1))

    for name, (kind, a, b) in ({} if args.no_superpixels else SPLITS).items():
        result[name] = _tally((split_count(image, kind, a, b), n) for image, n in scenes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"objects_dev{args.tag}.json").write_text(json.dumps(
        {"scenes": len(scenes), "seconds": round(time.time() - t0, 1), "variants": result}, indent=1) + "\n")
    lines = ["| variant | count right | under | over | 1 object | 2 objects | 3 objects |",
             "|---|---|---|---|---|---|---|"]
    for name, r in result.items():
        bc = [f"{r['by_count'][c][0]}/{r['by_count'][c][1]}" for c in sorted(r["by_count"])]
        lines.append(f"| {name} | {r['accuracy']:.4f} | {r['under']} | {r['over']} | " + " | ".join(bc) + " |")
    (out / f"objects_dev{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
