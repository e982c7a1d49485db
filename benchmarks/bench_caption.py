"""`caption.zero_shot` (MacCap-style text-only decoder) vs nearest-caption retrieval on held-out world v2 scenes.

``python benchmarks/bench_caption.py --split dev|test|test3 [--scenes N] [--heldout-scenes M]``

Scenes: `vltools.world.generate_object_scene`, 1-3 objects (every other scene has one), never used
for training: ``--split test3`` seeds 29,820,000 + k (session 4's test scenes: fresh, nothing chosen
on them), ``--split test`` seeds 29,800,000 + k (session 3's test scenes), ``--split dev`` seeds
29,750,000 + k (where every option was chosen); ``split="train"`` concepts (the demo CLIP and the
decoder's corpus know them) and ``split="heldout"`` concepts (in no training image or caption;
+ 100,000 on the seed). All methods run side by side in one run with the `demo` CLIP:
- ``retrieval``: the training-corpus caption (all the demo CLIP's cached captions) with the highest
  cosine to the image embedding — the baseline; ``retrieval_memory``: the same over the decoder's
  8,000-caption projection memory only;
- test3: the previous default (grid regions, CLIP-S rerank), the tool's default (object views,
  object reward, fluency prior) and the default with guidance 1.0 (P40);
- dev ``--sweep objects``: the object views and the prior weight; ``--sweep projection``: session
  3's sweep over the projection temperature, regions, reranking and guidance;
- test (session 3): ``old_zero_shot`` (the previous committed decoder, ``--old-decoder``, with the
  default of then: gap shift, regions, CLIP-reward rerank), ``gap``, ``projection`` (whole image,
  most likely beam), ``zero_shot`` and ``guided``, all with session 3's decoding.
Metrics per caption: concept precision (named concepts that are in the scene) and recall (scene
concepts named; a concept is named when its name or an alias appears), count words right (for each
named concept, the number word matches its count), position words right (for each named concept
with a position phrase, it matches the object's 3x3 region), and for one-object scenes whether the
object is named (with its Wilson 95% interval). Writes results/caption_world_{split}.json / .md
(``_dev_objects`` for the objects sweep).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench_stats import wilson  # benchmarks/ (the script's folder) is on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEED_BASE = {"test": 29_800_000, "dev": 29_750_000, "test3": 29_820_000}
NUMBER = {"one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def named(caption: str, table: dict[str, dict]) -> dict[str, tuple[int | None, str | None]]:
    """Concepts a caption names -> (count word, position phrase) next to the name."""
    text = " " + caption.lower() + " "
    out = {}
    for name in sorted(table, key=len, reverse=True):
        forms = [name, *table[name]["aliases"]]
        for f in sorted(forms, key=len, reverse=True):
            if f not in text:  # cheap filter first: the regex below needs the form as a substring
                continue
            m = re.search(rf"(?:(\w+) )?(?:\w+ )?{re.escape(f)}\b(?: (on the left|on the right|at the top|at the "
                          rf"bottom|in the centre|in the top left|in the top right|in the bottom left|in the bottom "
                          rf"right))?", text)
            if m and not any(f in other for other in out if f != other):
                out[name] = (NUMBER.get(m.group(1) or ""), m.group(2))
                text = text.replace(f, " ")
                break
    return out


def score(caption: str, objects: list[dict], table: dict) -> dict[str, float | None]:
    from vltools.world.scene import position_phrase

    truth: dict[str, list[dict]] = {}
    for o in objects:
        truth.setdefault(o["concept"], []).append(o)
    got = named(caption, table)
    hits = [c for c in got if c in truth]
    prec = len(hits) / len(got) if got else 0.0
    rec = len(hits) / len(truth)
    counts = [got[c][0] == len(truth[c]) for c in hits if got[c][0] is not None]
    pos = [got[c][1] == position_phrase(truth[c][0]["position"]) for c in hits if got[c][1] and len(truth[c]) == 1]
    return {"precision": prec, "recall": rec, "count_ok": float(np.mean(counts)) if counts else None,
            "position_ok": float(np.mean(pos)) if pos else None,
            "one_named": (rec == 1.0) if len(objects) == 1 else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=60, help="scenes per concept split")
    ap.add_argument("--split", choices=["dev", "test", "test3"], default="test3")
    ap.add_argument("--heldout-scenes", type=int, default=None, help="scenes of held-out concepts (default: --scenes)")
    ap.add_argument("--sweep", choices=["projection", "objects"], default="objects",
                    help="dev: the projection sweep (session 3) or the object-view / prior sweep (session 4)")
    ap.add_argument("--concepts", default="train,heldout", help="concept splits to run (comma-separated)")
    ap.add_argument("--old-decoder", default=None,
                    help="the previous decoder weights (e.g. git show 73459a4:vltools/models/weights/"
                    "caption_decoder_demo.safetensors > old.safetensors), compared on test with the old decoding")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="caption_world_"))
    os.environ["VLTOOLS_ALLOWED_ROOTS"] = json.dumps([str(tmp)])
    import vltools
    from vltools.core.settings import get_settings
    from vltools.models.clip import get_clip
    from vltools.world import concepts, generate_object_scene

    table = {c["name"]: c for c in concepts()}
    clip = get_clip("demo", get_settings())
    z = np.load(Path.home() / ".cache" / "vltools" / "demo_clip_v2_text_cache.npz", allow_pickle=False)
    corpus, corpus_vecs = z["texts"].tolist(), z["vecs"]
    from vltools.models import caption_decoder as cd

    dec = cd.load(cd.default_path("demo"))
    methods: dict[str, dict | None] = {"retrieval": None, "retrieval_memory": None}
    if args.split == "test3":
        methods.update({"previous default (regions, CLIP-S rerank)": {"objects": False, "regions": True, "prior": 0.0},
                        "zero_shot default (object views, object reward, prior 0.2)": {},
                        "default + guidance 1.0": {"guidance": 1.0}})
    elif args.split == "dev" and args.sweep == "objects":
        methods["previous default"] = {"objects": False, "regions": True, "prior": 0.0}
        methods["regions, prior 0.2 (no objects)"] = {"objects": False, "regions": True, "prior": 0.2}
        methods["objects, prior 0"] = {"prior": 0.0}
        for w in (0.1, 0.2, 0.3, 0.5):
            methods[f"objects, prior {w}"] = {"prior": w}
        methods["objects + grid regions, prior 0.2"] = {"regions": True}
    elif args.split == "test":
        if args.old_decoder:
            methods["old_zero_shot"] = {"decoder": str(Path(args.old_decoder).resolve()), "projection": "gap"}
        methods.update({"gap": {"projection": "gap"}, "projection": {"regions": False, "rerank": False},
                        "zero_shot": {}, "guided": {"guidance": 1.0}})
    else:  # session 3's projection sweep, with session 3's decoding (no object views, no prior)
        for t in (0.005, 0.01, 0.02):
            methods[f"T={t} whole, no rerank"] = {"temperature": t, "regions": False, "rerank": False}
            methods[f"T={t} regions+rerank"] = {"temperature": t}
        methods["T=0.01 whole+rerank"] = {"temperature": 0.01, "regions": False}
        methods["T=0.01 regions+rerank+guidance 1"] = {"temperature": 0.01, "guidance": 1.0}
        methods["gap regions+rerank"] = {"projection": "gap"}
    if args.split == "test" or (args.split == "dev" and args.sweep == "projection"):
        prev = {"objects": False, "regions": True, "prior": 0.0}  # session 3's default decoding
        methods = {m: None if e is None else {**prev, **e} for m, e in methods.items()}
    splits = [c for c in ("train", "heldout") if c in args.concepts.split(",")]
    rows = []
    t0 = time.time()
    for split in splits:
        for k in range(args.scenes if split == "train" or args.heldout_scenes is None else args.heldout_scenes):
            seed = SEED_BASE[args.split] + k + (0 if split == "train" else 100_000)
            sc = generate_object_scene(seed, n_objects=1 if k % 2 == 0 else 2 + (k // 2) % 2, split=split)
            path = tmp / f"{split}_{seed}.png"
            sc.image.save(path)
            objs = sc.labels["objects"]
            for m, extra in methods.items():
                t1 = time.time()
                if m == "retrieval":
                    v = clip.encode_images([sc.image])[0]
                    cap = corpus[int(np.argmax(corpus_vecs @ v))]
                elif m == "retrieval_memory":  # captions are not stored with the memory: decode its nearest row
                    v = clip.encode_images([sc.image])[0]
                    row = dec.memory[int(np.argmax(dec.memory @ v))]
                    cap = corpus[int(np.argmax(corpus_vecs @ row))]
                else:
                    assert extra is not None
                    cap = vltools.call("caption.zero_shot", {"image": str(path), "model": "demo", **extra}).caption
                rows.append({"split": split, "seed": seed, "method": m, "caption": cap, "truth": sc.captions[0],
                             "n_objects": len(objs), "seconds": time.time() - t1, **score(cap, objs, table)})
        print(f"{split}: {time.time() - t0:.0f} s", file=sys.stderr)
    summary: dict = {}
    for split in splits:
        for m in methods:
            sel = [r for r in rows if r["split"] == split and r["method"] == m]
            agg = {}
            for key in ("precision", "recall", "count_ok", "position_ok", "one_named", "seconds"):
                vals = [r[key] for r in sel if r[key] is not None]
                agg[key] = (float(np.mean(vals)), len(vals)) if vals else (None, 0)
            summary.setdefault(split, {})[m] = agg
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import subprocess

    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run([*git, "status", "--porcelain", "vltools"], capture_output=True, text=True).stdout)
    result = {"args": vars(args), "commit": commit, "vltools_modified_since_commit": dirty,
              "seconds": round(time.time() - t0, 1), "summary": summary, "rows": rows}
    stem = f"caption_world_{args.split}" + ("_objects" if args.split == "dev" and args.sweep == "objects" else "")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| concepts | method | precision | recall | one object named | count words right | position words "
             "right | s / caption |", "|---|---|---|---|---|---|---|---|"]
    for split in splits:
        for m in methods:
            a = summary[split][m]

            def f(key, a=a):
                v, n = a[key]
                return "-" if v is None else f"{v:.3f} (n={n})"
            v, n = a["one_named"]
            lo, hi = wilson(round(v * n), n) if n else (0.0, 0.0)
            one = "-" if v is None else f"{v:.3f} ({round(v * n)}/{n}; 95% CI {lo:.2f}-{hi:.2f})"
            lines.append(f"| {split} | {m} | {f('precision')} | {f('recall')} | {one} | {f('count_ok')} | "
                         f"{f('position_ok')} | {a['seconds'][0]:.2f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
