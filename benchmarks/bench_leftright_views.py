"""Dev choice of how `vqa.zero_shot` presents the object it names for "What is on the left/right?".

``python benchmarks/bench_leftright_views.py [--scenes N] [--split dev|test] [--variants a,b,...]``

The same scenes and questions as `bench_vqa_world.py` (seeds 29,600,000 + k, train concepts, 1-3
objects; dev = k < N, test = N <= k < 2N), types left/right only. The object proposal
(`tools/_objects.py`) is the same for every variant; only the image CLIP names it from changes
(`_objects.naming_views` swapped per variant): the mask on grey (the second pass), its box on the
image's own background at several margins, the mask on the border's colour, an ensemble of box
margins (embeddings averaged), and each mixed with the half of the image it lies in. ``half`` is
``objects: false`` (the left/right half of the image). Two answer sets: the declared world's nouns
(no candidates) and a realistic candidate list (the scene's objects plus 9 other train concepts,
drawn with the scene's seed; other held-out concepts with ``--concepts heldout``).
``--proposals learned,superpixels`` runs every view with each object-proposal method of
`vqa.zero_shot` (rows ``VIEW@METHOD``), side by side on the same questions; the table then also
counts the scenes with two different objects on the left and right answered with one same noun
(a merged proposal's symptom).
Writes results/leftright_{split}{tag}.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SEED_BASE = 29_600_000


def _half(image, region):
    w, h = image.size
    x = region.centre[0]
    return image.crop((0, 0, round(w / 2), h)) if x < 0.5 else image.crop((round(w / 2), 0, w, h))


def _border_fill(image, region, margin=0.15):
    """The mask-adapted crop with the outside on the image border's median colour instead of grey."""
    from vltools.tools import _objects

    return _objects.mask_crop(image, region, margin)


def variants():
    from vltools.tools import _objects

    box = _objects.box_crop
    return {
        "grey": lambda im, r: _objects.crops(im, [r])[0:1],
        "box15": lambda im, r: [box(im, r, 0.15)],
        "box30": lambda im, r: [box(im, r, 0.3)],
        "box60": lambda im, r: [box(im, r, 0.6)],
        "box05": lambda im, r: [box(im, r, 0.05)],
        "border15": lambda im, r: [_border_fill(im, r)],
        "ens_box": lambda im, r: [box(im, r, m) for m in (0.1, 0.3, 0.6)],
        "grey+box15": lambda im, r: _objects.crops(im, [r])[0:1] + [box(im, r, 0.15)],
        "box15+half": lambda im, r: [box(im, r, 0.15), _half(im, r)],
        "grey+half": lambda im, r: _objects.crops(im, [r])[0:1] + [_half(im, r)],
        "ens_box+half": lambda im, r: [box(im, r, m) for m in (0.1, 0.3, 0.6)] + [_half(im, r)],
        "ens_border": lambda im, r: [_border_fill(im, r, m) for m in (0.1, 0.3, 0.6)],
        "ens_box+border15": lambda im, r: [box(im, r, m) for m in (0.1, 0.3, 0.6)] + [_border_fill(im, r)],
        "ens_box+border15+half": lambda im, r: ([box(im, r, m) for m in (0.1, 0.3, 0.6)] + [_border_fill(im, r)]
                                                + [_half(im, r)]),
        "adopted": _objects.naming_views,  # the library's current choice
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--variants", default=None, help="comma-separated (default: all), plus 'half'")
    ap.add_argument("--concepts", choices=("train", "heldout"), default="train",
                    help="heldout: the held-out-concept scenes of bench_vqa_world.py (seed + 500,000)")
    ap.add_argument("--proposals", default="auto", help="comma-separated proposal methods (auto, learned, superpixels)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="leftright_"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([str(tmp)])
    import vltools
    from vltools.tools import _objects
    from vltools.world import generate_object_scene
    from vltools.world.concept_table import concept_names

    allv = variants()
    names = args.variants.split(",") if args.variants else [*allv, "half"]
    methods = args.proposals.split(",")
    if methods != ["auto"]:
        names = [f"{v}@{m}" if v != "half" else v for v in names for m in methods if v != "half" or m == methods[0]]
    pool = concept_names(args.concepts)
    t0 = time.time()
    rows = []
    start = 0 if args.split == "dev" else args.scenes
    saved = _objects.naming_views
    try:
        for k in range(start, start + args.scenes):
            seed = SEED_BASE + k + (0 if args.concepts == "train" else 500_000)
            sc = generate_object_scene(seed, n_objects=1 + k % 3, split=args.concepts)
            path = tmp / f"{args.concepts}_{seed}.png"
            sc.image.save(path)
            present = [o["concept"] for o in sc.labels["objects"]]
            rng = random.Random(seed)
            cands = sorted(set(present) | set(rng.sample([c for c in pool if c not in present], 9)))
            for qa in sc.qa:
                if qa["type"] not in ("left", "right"):
                    continue
                truth = qa["answer"].lower()
                row = {"seed": seed, "type": qa["type"], "truth": truth, "objects": present}
                for v in names:
                    view, _, method = v.partition("@")
                    for cset, extra in (("world", {}), ("realistic", {"candidates": cands})):
                        inp = {"image": str(path), "question": qa["question"], "clip": "demo", **extra,
                               "proposals": method or "auto"}
                        if v == "half":
                            inp["objects"] = False
                        else:
                            _objects.naming_views = allv[view]
                        out = vltools.call("vqa.zero_shot", inp)
                        row[f"{v}/{cset}"] = out.answer.lower() == truth
                        row[f"{v}/{cset}:answer"] = out.answer.lower()
                rows.append(row)
    finally:
        _objects.naming_views = saved
    summary = {}
    pairs: dict[int, dict[str, dict]] = {}
    for r in rows:
        pairs.setdefault(r["seed"], {})[r["type"]] = r
    two = [p for p in pairs.values() if "left" in p and "right" in p and p["left"]["truth"] != p["right"]["truth"]]
    for key in [f"{v}/{c}" for v in names for c in ("world", "realistic")]:
        summary[key] = {t: (sum(r[key] for r in rows if r["type"] == t), sum(1 for r in rows if r["type"] == t))
                        for t in ("left", "right")}
        summary[key]["same_answer"] = (sum(p["left"][key + ":answer"] == p["right"][key + ":answer"] for p in two),
                                       len(two))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"args": vars(args), "seconds": round(time.time() - t0, 1), "summary": summary, "rows": rows}
    (out / f"leftright_{args.split}{args.tag}.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["| view | 714 world nouns: left | right | both | same noun for L and R | realistic list: left | right "
             "| both | same noun |", "|---|---|---|---|---|---|---|---|---|"]
    for v in names:
        cells = []
        for c in ("world", "realistic"):
            s = summary[f"{v}/{c}"]
            (a, n), (b, m) = s["left"], s["right"]
            cells += [f"{a}/{n}", f"{b}/{m}", f"{(a + b) / max(1, n + m):.3f}",
                      "{}/{}".format(*s["same_answer"])]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines.append(f"\nseconds: {res['seconds']}")
    (out / f"leftright_{args.split}{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
