"""Dev sweep behind `caption.zero_shot`'s object views: which features to decode from, how to rerank.

``python benchmarks/bench_caption_dev_views.py [--scenes 120]``

Dev scenes only (`bench_caption.py`'s dev split: seeds 29,750,000 + k, train concepts, every other
scene one object). Per scene the features are computed once — the whole image and its 3 x 3 dense
cells (`region_features`), the 3 largest class-agnostic object proposals (`_objects.regions`, ``--proposals``),
each the mean embedding of its `naming_views` — then each candidate pool is decoded with the
committed decoder (memory projection, 4 beams) and reranked several ways:
pools: ``whole`` (the whole image), ``regions`` (whole + each of the 3 cells closest to it, MacCap),
``obj1`` (the largest object alone), ``obj`` (the 3 objects alone), ``wobj`` (whole + each object),
``|b8`` (8 beams); reranks: CLIP-S against the whole image (``whole``), plus CLIP-S against the
largest object (``whole+obj``), plus the best over the objects (``whole+objs``), plus the mean over
them (``whole+mobjs``), the object alone (``obj``), the decoder likelihood alone (``lik``); each
plus ``prior`` x the decoder's mean log-likelihood. Prints one line per (pool, rerank, prior):
one-object scenes whose object is named, mean concept precision and recall (`bench_caption.score`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

POOLS = ["whole", "whole,regions", "whole,regions|b8", "whole,obj1", "whole,obj", "whole,wobj", "whole,obj1,wobj",
         "whole,regions,obj1", "whole,regions,obj", "whole,regions,wobj", "whole,regions,obj1,wobj",
         "whole,regions,obj,wobj"]
RERANKS = [("whole", 0.0), ("whole", 0.1), ("whole", 0.2), ("whole", 0.3), ("obj", 0.0), ("whole+obj", 0.0),
           ("whole+obj", 0.1), ("whole+obj", 0.2), ("whole+obj", 0.3), ("whole+obj", 0.5), ("whole+objs", 0.0),
           ("whole+objs", 0.2), ("whole+mobjs", 0.2), ("lik", 0.0)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=120)
    ap.add_argument("--proposals", choices=["superpixels", "learned"], default="superpixels",
                    help="object proposal method (`_objects.regions`)")
    ap.add_argument("--pools", default=",".join(p.replace(",", "+") for p in POOLS),
                    help="pools to run, '+' inside a pool (default: all)")
    args = ap.parse_args(argv)
    from bench_caption import SEED_BASE, score

    from vltools.core.settings import get_settings
    from vltools.models import caption_decoder as cd
    from vltools.models.clip import get_clip
    from vltools.tools import _objects
    from vltools.tools import _vqa_engine as eng
    from vltools.tools.caption import _conditions
    from vltools.world import concepts, generate_object_scene

    clip = get_clip("demo", get_settings())
    dec = cd.load(cd.default_path("demo"))
    table = {c["name"]: c for c in concepts()}
    scenes = []
    t0 = time.time()
    for k in range(args.scenes):
        sc = generate_object_scene(SEED_BASE["dev"] + k, n_objects=1 if k % 2 == 0 else 2 + (k // 2) % 2,
                                   split="train")
        ov = []
        for r in _objects.regions(sc.image, args.proposals)[:3]:
            m = np.asarray(clip.encode_images(_objects.naming_views(sc.image, r)), dtype=np.float32).mean(0)
            ov.append(m / np.linalg.norm(m))
        scenes.append({"objs": sc.labels["objects"], "feats": np.asarray(eng.region_features(clip, sc.image, None)),
                       "ov": np.array(ov).reshape(len(ov), clip.dim)})
    text_feats: dict[str, np.ndarray] = {}

    def encode(texts: list[str]) -> np.ndarray:
        miss = [t for t in dict.fromkeys(texts) if t not in text_feats]
        if miss:
            text_feats.update(zip(miss, np.asarray(clip.encode_texts(miss)[0], dtype=np.float32), strict=True))
        return np.stack([text_feats[t] for t in texts])

    def pool(s: dict, parts: set[str], beams: int) -> dict[str, float]:
        f, ov = s["feats"], s["ov"]
        conds = [f[0]]
        if "regions" in parts:
            conds += _conditions(f, True)[1:]
        if "obj1" in parts:
            conds += list(ov[:1])
        if "obj" in parts:
            conds += list(ov)
        if "wobj" in parts:
            conds += [(f[0] + v) / np.linalg.norm(f[0] + v) for v in ov]
        found: dict[str, float] = {}
        for c in conds:
            for text, lp in dec.decode(dec.project(c), beams=beams, n_best=beams):
                found[text] = max(found.get(text, -1e9), lp)
        return found

    def pick(s: dict, found: dict[str, float], mode: str, prior: float) -> str:
        texts = list(found)
        t = encode(texts)
        lik = np.array([found[x] for x in texts])
        w = 2.5 * np.clip(t @ s["feats"][0], 0, None)
        # no object found: no object term (as in the tool); "obj" alone then falls back to the whole image
        o = 2.5 * np.clip(t @ s["ov"].T, 0, None) if len(s["ov"]) else np.zeros((len(texts), 1))
        r = {"whole": w, "obj": o[:, 0] if len(s["ov"]) else w, "whole+obj": w + o[:, 0], "whole+objs": w + o.max(1),
             "whole+mobjs": w + o.mean(1), "lik": lik}[mode]
        return texts[int(np.argmax(r + prior * lik))]

    print(f"features of {len(scenes)} dev scenes: {time.time() - t0:.0f} s", flush=True)
    for spec in [p.replace("+", ",") for p in args.pools.split(",")]:
        name, _, b = spec.partition("|")
        pools = [pool(s, set(name.split(",")), int(b[1:]) if b else 4) for s in scenes]
        for mode, prior in RERANKS:
            caps = [pick(s, p, mode, prior) for s, p in zip(scenes, pools, strict=True)]
            sc = [score(c, s["objs"], table) for c, s in zip(caps, scenes, strict=True)]
            one = [x["one_named"] for x in sc if x["one_named"] is not None]
            prec, rec = np.mean([x["precision"] for x in sc]), np.mean([x["recall"] for x in sc])
            print(f"{spec:26s} {mode:12s} prior {prior:.1f}  one-object named {sum(one):3d}/{len(one)}  "
                  f"precision {prec:.3f}  recall {rec:.3f}", flush=True)
    print(f"{time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
