"""Evaluate the demo CLIP v2 (spec ``demo``) against v1 (``demo-shapes``): ``python scripts/eval_demo_clip_v2.py``.

Writes benchmarks/results/demo_clip_v2_eval.{json,md}. Everything is held out from training: object
scenes use seeds from EVAL_SEED_BASE (training: 20,000,000 + k), shapes scenes v1's evaluation seeds
(9,000,000 + k), easy-VQA its test split; "held-out concepts" were never in a training image or caption.

1. Objects, one per image, through the ``image.classify`` tool (default templates, ``model: demo``;
   for the 707-way cases its own `class_embeddings` + image embeddings + argmax, with the 2,121 prompt
   embeddings computed once):
   a) train concepts, top-1 among 50 random train concepts (groups of 50 drawn with a fixed seed; each
      image shows a concept of its group); b) train concepts, top-1 among all 707 concepts; c) held-out
      concepts, top-1 among the 109 held-out concepts and among all 707; d) per-category top-1 (among
      all concepts). "related" counts a near-duplicate ("cat face" for "cat") as right; strict does not.
2. A different compositing program: the concept's PNG pasted with plain PIL (nearest-neighbour
   resize, 15-95% of the canvas, any aspect of canvas) on backgrounds the world never draws
   (random rectangles, random lines, radial gradients, white), same candidate sets as 1a and 1c.
3. Text -> image retrieval on multi-object scenes (2-4 objects, train concepts; and 2-3 held-out
   concepts): each scene's full caption (objects and positions) and its plain list caption as
   queries, the scene itself the only relevant image; R@1 / R@5 vs chance.
4. Shapes: world single-shape scenes (88 classes, v1's protocol) and easy-VQA test (24 classes),
   top-1 with v2 and with v1, side by side in one run.
5. Dense pointing game on multi-object scenes: for each object (visible fraction >= 0.5) the grid (3x3 for v2)
   cell whose dense feature is closest to the text embedding of "a {concept}"; a hit when the cell
   centre lies inside the object's visible mask; chance = the mean fraction of cell centres inside.
   Also on the objects whose visible mask holds at least one cell centre (where a hit is possible).
6. Held-out transfer with inference-time options of ``image.classify`` (``descriptions`` from the
   concept's subcategory, "tiger, a mammal"; ``aliases`` from the table; ``seen_labels`` = the train
   concepts with ``seen_margin``): the options were chosen by `scripts/tune_heldout_transfer.py` on the
   DEV half of the held-out concepts (its own images); here the images of 1c / 2c are split by their
   concept's half, and the TEST half (never looked at while tuning) is the headline; the DEV half
   (same concepts as the tuning, other images) is shown beside it. Default vs chosen options side by
   side on the same images; with ``--compare-weights`` a second v2 weights file gets the same rows
   (and the shapes rows of 4) in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

EVAL_SEED_BASE = 29_000_000
SHAPES_EVAL_SEED_BASE = 9_000_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def classify(paths: list[str], labels: list[str], settings, model: str = "demo") -> list[str]:
    from vltools.core.context import Context
    from vltools.core.registry import get_registry

    out = []
    for i in range(0, len(paths), 256):
        res = get_registry().call("image.classify", {"images": paths[i : i + 256], "labels": labels, "clip": model},
                                  ctx=Context(settings=settings))
        out += [r.label for r in res.results]
    return out


class CachedTexts:
    """A CLIP backend whose text embeddings come from a {text: vector} cache when present.

    The demo CLIPs' text tower is the same locked MiniLM, so prompt embeddings computed once (with
    any of them) are reused; `main` checks a sample against the backend before trusting the cache.
    """

    def __init__(self, backend, cache: dict[str, np.ndarray]) -> None:
        self.backend, self.cache = backend, cache

    def encode_texts_detailed(self, texts, long_text="stretch"):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            emb, _ = self.backend.encode_texts_detailed(missing, long_text=long_text)
            self.cache.update(zip(missing, emb, strict=True))
        return np.stack([self.cache[t] for t in texts]), [None] * len(texts)

    def fit_notices(self, texts, notes, what="text"):
        return []


def classify_all(paths: list[str], labels: list[str], backend, cache: dict[str, np.ndarray]) -> list[str]:
    """image.classify's own computation (its class_embeddings with its default templates, the backend's
    image embeddings, argmax of cosine) with the prompt embeddings served from ``cache``."""
    from PIL import Image

    from vltools.tools.image import DEFAULT_TEMPLATES, class_embeddings

    classes, _ = class_embeddings(CachedTexts(backend, cache), labels, DEFAULT_TEMPLATES, None)
    out = []
    for i in range(0, len(paths), 128):
        feats = backend.encode_images([Image.open(p).convert("RGB") for p in paths[i : i + 128]])
        out += [labels[int(j)] for j in (feats @ classes.T).argmax(1)]
    return out


def prompt_cache(path: Path, labels: list[str], backend) -> dict[str, np.ndarray]:
    """{prompt: embedding} for every default-template prompt of ``labels``, stored in ``path``."""
    from vltools.tools.image import DEFAULT_TEMPLATES

    texts = [t.replace("{}", lab) for lab in labels for t in DEFAULT_TEMPLATES]
    cache: dict[str, np.ndarray] = {}
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        cache = dict(zip(z["texts"].tolist(), z["vecs"], strict=True))
    missing = [t for t in texts if t not in cache]
    if missing:
        emb, _ = backend.encode_texts_detailed(missing)
        cache.update(zip(missing, emb, strict=True))
        keys = sorted(cache)
        np.savez(path, texts=np.array(keys), vecs=np.stack([cache[k] for k in keys]).astype(np.float32))
    return cache


def scores(pred: list[str], truth: list[str], related: dict[str, set[str]]) -> dict[str, float]:
    strict = float(np.mean([p == t for p, t in zip(pred, truth, strict=True)]))
    rel = float(np.mean([p == t or p in related[t] for p, t in zip(pred, truth, strict=True)]))
    return {"top1": round(strict, 4), "top1_related_ok": round(rel, 4), "n": len(truth)}


def other_background(rng: np.random.Generator, w: int, h: int):
    """Backgrounds the world never draws, with plain PIL drawing."""
    from PIL import Image, ImageDraw

    kind = int(rng.integers(4))
    if kind == 3:
        return Image.new("RGB", (w, h), "white"), "white"
    im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    if kind == 0:
        for _ in range(12):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            d.rectangle([x0, y0, x0 + int(rng.integers(5, w // 2)), y0 + int(rng.integers(5, h // 2))],
                        fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        return im, "rectangles"
    if kind == 1:
        for _ in range(25):
            d.line([tuple(int(v) for v in rng.integers(0, max(w, h), 2)) for _ in range(2)],
                   fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 5)))
        return im, "lines"
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    t = np.clip(np.hypot(xx - cx, yy - cy) / max(w, h), 0, 1)[..., None]
    return Image.fromarray((a * (1 - t) + b * t).astype(np.uint8), "RGB"), "radial"


def pasted(name: str, rng: np.random.Generator):
    from PIL import Image

    from vltools.world.concept_table import concept

    w, h = int(rng.integers(96, 257)), int(rng.integers(96, 257))
    bg, kind = other_background(rng, w, h)
    side = max(8, int(rng.uniform(0.15, 0.95) * min(w, h)))
    with Image.open(concept(name)["image"]) as src:
        obj = src.convert("RGBA").resize((side, side), Image.NEAREST)
    bg.paste(obj, (int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))), obj)
    return bg, kind


def transfer(backend, texts, halves, hpaths, htruth, hppaths, paths, truth, groups) -> dict:
    """Section 6 for one backend: default vs the DEV-chosen options on both halves (see the docstring)."""
    from PIL import Image
    from tune_heldout_transfer import CHOSEN, options_for

    from vltools.tools.image import DEFAULT_TEMPLATES, class_embeddings
    from vltools.world.concept_table import concepts

    train = [r["name"] for r in concepts("train")]
    allc = [r["name"] for r in concepts()]
    dev, test = halves
    held = dev + test

    def enc(ps):
        return np.concatenate([backend.encode_images([Image.open(p).convert("RGB") for p in ps[i : i + 128]])
                               for i in range(0, len(ps), 128)])

    H, HP, T = enc(hpaths), enc(hppaths), enc(paths)
    memo: dict = {}

    def cls(labels, chosen):
        key = (tuple(labels), chosen)
        if key not in memo:
            d, a = options_for(labels, CHOSEN["descriptions"], CHOSEN["aliases"]) if chosen else (None, None)
            memo[key] = class_embeddings(texts, labels, DEFAULT_TEMPLATES, d, "stretch", a)[0]
        return memo[key]

    def top1(X, tr, labels, chosen, margin=0.0):
        m = np.array([margin if lab in set(train) else 0.0 for lab in labels], dtype=np.float32)
        pred = [labels[int(j)] for j in (X @ cls(labels, chosen).T - m).argmax(1)]
        return round(float(np.mean([p == t for p, t in zip(pred, tr, strict=True)])), 4)

    out: dict = {}
    for half, names in (("test", test), ("dev", dev)):
        sel = [i for i, t in enumerate(htruth) if t in set(names)]
        X, XP, tr = H[sel], HP[sel], [htruth[i] for i in sel]
        r: dict = {"images": len(sel), "concepts": len(names)}
        for mode in ("default", "chosen"):
            ch = mode == "chosen"
            r[mode] = {"among_half": top1(X, tr, names, ch), "among_heldout": top1(X, tr, held, ch),
                       "among_all": top1(X, tr, allc, ch), "pasted_among_heldout": top1(XP, tr, held, ch)}
        h = top1(X, tr, allc, True, CHOSEN["seen_margin"])
        s = top1(T, truth, allc, True, CHOSEN["seen_margin"])
        r["chosen_seen_margin"] = {"seen_margin": CHOSEN["seen_margin"], "heldout_among_all": h,
                                   "train_among_all": s, "harmonic": round(2 * h * s / max(h + s, 1e-9), 4)}
        r["chance"] = {"among_half": round(1 / len(names), 4), "among_heldout": round(1 / len(held), 4),
                       "among_all": round(1 / len(allc), 4)}
        out[half] = r
    out["train_among_all"] = {"default": top1(T, truth, allc, False), "chosen": top1(T, truth, allc, True)}
    g50 = {}
    for mode in ("default", "chosen"):
        hits = []
        for cands, gp, gt, _pp in groups:
            idx = [paths.index(p) for p in gp]
            hits.append(top1(T[idx], gt, cands, mode == "chosen") * len(gt))
        g50[mode] = round(sum(hits) / sum(len(g[2]) for g in groups), 4)
    out["train_among_50"] = g50
    out["options"] = dict(CHOSEN)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=4, help="groups of 50 random train concepts (1a)")
    ap.add_argument("--per-group", type=int, default=75, help="images per group (1a)")
    ap.add_argument("--heldout", type=int, default=300, help="held-out-concept images (1c)")
    ap.add_argument("--multi", type=int, default=300, help="multi-object scenes (3, 5)")
    ap.add_argument("--shapes", type=int, default=880, help="single-shape world scenes (4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "demo_clip_v2_eval"))
    ap.add_argument("--prompt-cache", default=str(Path.home() / ".cache" / "vltools" / "demo_prompts_707.npz"),
                    help="embeddings of the all-concepts prompts (MiniLM is locked: they never change)")
    ap.add_argument("--compare-weights", default=None, help="another v2 weights file for sections 6 and 4, same run")
    ap.add_argument("--text-cache", default=str(Path.home() / ".cache" / "vltools" / "heldout_transfer_texts.npz"),
                    help="embeddings of the option texts of section 6 (shared with tune_heldout_transfer.py)")
    ap.add_argument("--precompute-prompts", action="store_true",
                    help="only fill the prompt cache (with demo-shapes, whose text tower is the same)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    from PIL import Image

    from vltools.core.settings import Settings
    from vltools.models.clip import get_clip
    from vltools.world import vocab
    from vltools.world.concept_table import concepts
    from vltools.world.objects import generate_object_scene
    from vltools.world.scene import generate_scene
    from vltools.world.splits import easy_vqa_labels

    torch.set_num_threads(args.threads)
    t_start = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="vltools-eval-v2-"))
    settings = Settings(allowed_roots=[tmp], home=tmp / "home", device="cpu")
    rows = concepts()
    train = [r["name"] for r in rows if r["split"] == "train"]
    held = [r["name"] for r in rows if r["split"] == "heldout"]
    allc = [r["name"] for r in rows]
    cat = {r["name"]: r["category"] for r in rows}
    related = {r["name"]: set(r["related"]) for r in rows}
    rng = np.random.default_rng(12345)
    res: dict = {"protocol": __doc__.strip(), "model": "demo (v2)", "torch_threads": args.threads}
    if args.precompute_prompts:
        Path(args.prompt_cache).parent.mkdir(parents=True, exist_ok=True)
        n = len(prompt_cache(Path(args.prompt_cache), allc, get_clip("demo-shapes", settings)))
        log(f"{n} prompt embeddings in {args.prompt_cache}")
        return 0

    def save(img, name: str) -> str:
        p = tmp / f"{name}.png"
        img.save(p)
        return str(p)

    # 1a / 2a: train concepts among 50 random train concepts -------------------------------------
    paths, truth, groups, ppaths, pkinds = [], [], [], [], []
    for g in range(args.groups):
        cands = sorted(rng.choice(train, 50, replace=False).tolist())
        gp, gt, pp = [], [], []
        for k in range(args.per_group):
            seed = EVAL_SEED_BASE + g * 1000 + k
            name = cands[k % 50]
            sc = generate_object_scene(seed, concept_names=[name])
            gp.append(save(sc.image, f"g{g}_{k}"))
            gt.append(name)
            img, kind = pasted(name, np.random.default_rng([seed, 5]))
            pp.append(save(img, f"p{g}_{k}"))
            pkinds.append(kind)
        groups.append((cands, gp, gt, pp))
        paths += gp
        truth += gt
        ppaths += pp
    pred50, ppred50 = [], []
    for cands, gp, _gt, pp in groups:
        pred50 += classify(gp, cands, settings)
        ppred50 += classify(pp, cands, settings)
    res["objects_train_among_50"] = {**scores(pred50, truth, related), "chance": 1 / 50}
    res["pasted_train_among_50"] = {**scores(ppred50, truth, related), "chance": 1 / 50, "backgrounds": {
        k: round(float(np.mean([p == t for p, t, kk in zip(ppred50, truth, pkinds, strict=True) if kk == k])), 4)
        for k in sorted(set(pkinds))}}
    log(f"1a train among 50: {res['objects_train_among_50']}; pasted: {res['pasted_train_among_50']}")

    # 1c / 2c: held-out concepts
    hpaths, htruth, hppaths = [], [], []
    for k in range(args.heldout):
        seed = EVAL_SEED_BASE + 100_000 + k
        name = held[k % len(held)]
        hpaths.append(save(generate_object_scene(seed, concept_names=[name]).image, f"h{k}"))
        htruth.append(name)
        hppaths.append(save(pasted(name, np.random.default_rng([seed, 5]))[0], f"hp{k}"))

    # 1b (and 1c among all): the train-concept and held-out-concept images among all concepts; the
    # 2,121 prompt embeddings are computed once (the text tower is the locked MiniLM of both demo models)
    v2 = get_clip("demo", settings)
    cache = prompt_cache(Path(args.prompt_cache), allc, v2)
    probe = list(cache)[:: max(1, len(cache) // 8)][:8]
    fresh, _ = v2.encode_texts(probe)
    if not np.allclose(fresh, np.stack([cache[t] for t in probe]), atol=1e-4):
        raise SystemExit("the prompt cache does not match the demo CLIP v2 text tower; delete it")
    both = classify_all(paths + hpaths, allc, v2, cache)
    pred_all, hpred_all = both[: len(paths)], both[len(paths) :]
    res["objects_train_among_all"] = {**scores(pred_all, truth, related), "chance": 1 / len(allc),
                                      "candidates": len(allc)}
    log(f"1b train among all: {res['objects_train_among_all']}")
    hpred = classify(hpaths, held, settings)
    hppred = classify(hppaths, held, settings)
    res["objects_heldout_among_heldout"] = {**scores(hpred, htruth, related), "chance": 1 / len(held),
                                            "candidates": len(held)}
    res["objects_heldout_among_all"] = {**scores(hpred_all, htruth, related), "chance": 1 / len(allc),
                                        "candidates": len(allc),
                                        "predicted_a_train_concept": round(float(np.mean([p in set(train)
                                                                                          for p in hpred_all])), 4)}
    res["pasted_heldout_among_heldout"] = {**scores(hppred, htruth, related), "chance": 1 / len(held)}
    log(f"1c held-out: {res['objects_heldout_among_heldout']} / all {res['objects_heldout_among_all']}; "
        f"pasted {res['pasted_heldout_among_heldout']}")

    # 1d: per category (among all concepts; train and held-out concepts separately)
    per = {}
    for label, pr, tr in (("train", pred_all, truth), ("heldout", hpred_all, htruth)):
        by: dict[str, list[bool]] = {}
        for p, t in zip(pr, tr, strict=True):
            by.setdefault(cat[t], []).append(p == t)
        per[label] = {c: {"top1": round(float(np.mean(v)), 3), "n": len(v)} for c, v in sorted(by.items())}
    res["per_category_among_all"] = per

    # 3 + 5: multi-object scenes: retrieval and the pointing game ----------------------------------
    v1 = get_clip("demo-shapes", settings)
    for label, split, nobj in (("train_concepts", "train", (2, 4)), ("heldout_concepts", "heldout", (2, 3))):
        n = args.multi if split == "train" else args.multi // 2
        scenes = [generate_object_scene(EVAL_SEED_BASE + 200_000 + (0 if split == "train" else 50_000) + k,
                                        split=split, n_objects=int(nobj[0] + k % (nobj[1] - nobj[0] + 1)),
                                        image_size=128)
                  for k in range(n)]
        X = v2.encode_images([sc.image for sc in scenes])
        retr = {}
        for qname, pick in (("full_caption", lambda sc: sc.captions[0]),
                            ("plain_list", lambda sc: sc.captions[1])):
            queries = [pick(sc) for sc in scenes]
            Q, _ = v2.encode_texts(queries)
            ranks = np.argsort(-(Q @ X.T), axis=1)
            r1 = float(np.mean([ranks[i, 0] == i for i in range(n)]))
            r5 = float(np.mean([i in ranks[i, :5] for i in range(n)]))
            retr[qname] = {"R@1": round(r1, 4), "R@5": round(r5, 4), "chance_R@1": round(1 / n, 4),
                           "chance_R@5": round(5 / n, 4), "gallery": n, "example": queries[0]}
        res[f"retrieval_multi_{label}"] = retr
        log(f"3 retrieval {label}: {retr}")
        D = v2.encode_dense([sc.image for sc in scenes])  # (n, 4, 4, dim)
        gh, gw = D.shape[1:3]
        hits, chance, count, p_hits, p_chance, p_count = 0, 0.0, 0, 0, 0.0, 0
        names = sorted({o["concept"] for sc in scenes for o in sc.labels["objects"]})
        T, _ = v2.encode_texts([f"a {c}" for c in names])
        tix = {c: i for i, c in enumerate(names)}
        for sc, d in zip(scenes, D, strict=True):
            w, h = sc.image.size
            cy = ((np.arange(gh) + 0.5) * h / gh).astype(int)
            cx = ((np.arange(gw) + 0.5) * w / gw).astype(int)
            for o, vis in zip(sc.labels["objects"], sc.visible_masks, strict=True):
                if o["visible_fraction"] < 0.5:
                    continue
                inside = vis[np.ix_(cy, cx)]  # (gh, gw) cell centres inside the visible mask
                sim = d @ T[tix[o["concept"]]]
                r, c = np.unravel_index(int(np.argmax(sim)), sim.shape)
                hits += bool(inside[r, c])
                chance += float(inside.mean())
                count += 1
                if inside.any():  # objects that contain at least one cell centre (a hit is possible)
                    p_hits += bool(inside[r, c])
                    p_chance += float(inside.mean())
                    p_count += 1
        res[f"pointing_game_{label}"] = {"objects": count, "accuracy": round(hits / count, 4),
                                         "chance": round(chance / count, 4), "grid": [int(gh), int(gw)],
                                         "pointable_objects": p_count,
                                         "pointable_accuracy": round(p_hits / max(p_count, 1), 4),
                                         "pointable_chance": round(p_chance / max(p_count, 1), 4)}
        log(f"5 pointing {label}: {res[f'pointing_game_{label}']}")

    # 6: held-out transfer with the DEV-chosen classify options, reported on the TEST half -------------
    from tune_heldout_transfer import TextCache, heldout_halves

    from vltools.models import clip_demo_v2
    from vltools.models.clip._encode import ClipBackend

    halves = heldout_halves()
    texts = TextCache(v2, Path(args.text_cache))
    models = {"v2 (demo)": v2}
    if args.compare_weights:
        models[f"v2 weights {Path(args.compare_weights).name}"] = ClipBackend(
            "demo", *clip_demo_v2.load("cpu", args.compare_weights), "cpu")
    res["transfer"] = {tag: transfer(b, texts, halves, hpaths, htruth, hppaths, paths, truth, groups)
                       for tag, b in models.items()}
    res["transfer_halves"] = {"dev": halves[0], "test": halves[1]}
    # the chosen options through the image.classify tool itself (test half among the 109 held-out concepts)
    from tune_heldout_transfer import CHOSEN, options_for

    sel = [i for i, t in enumerate(htruth) if t in set(halves[1])]
    d, a = options_for(held, CHOSEN["descriptions"], CHOSEN["aliases"])
    tp = []
    for i in range(0, len(sel), 256):
        from vltools.core.context import Context
        from vltools.core.registry import get_registry

        out_t = get_registry().call("image.classify", {"images": [hpaths[j] for j in sel[i : i + 256]], "labels": held,
                                                       "clip": "demo", "descriptions": d, "aliases": a},
                                    ctx=Context(settings=settings))
        tp += [r.label for r in out_t.results]
    res["transfer_tool_check"] = {"test_among_heldout_via_tool": round(float(np.mean(
        [p == htruth[j] for p, j in zip(tp, sel, strict=True)])), 4)}
    log(f"6 transfer: {json.dumps(res['transfer'])} tool {res['transfer_tool_check']}")

    # 4: shapes, v2 vs v1 ----------------------------------------------------------------------------
    classes = [(c, s) for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]
    prompts = [vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s) for c, s in classes]
    singles = [generate_scene(SHAPES_EVAL_SEED_BASE + k, single=True) for k in range(args.shapes)]
    truth_s = np.array([classes.index((sc.labels["objects"][0]["colour"], sc.labels["objects"][0]["shape"]))
                        for sc in singles])
    ev = easy_vqa_labels("test")
    eclasses = sorted({(c, s) for _, c, s in easy_vqa_labels("train")} | {(c, s) for _, c, s in ev})
    etruth = np.array([eclasses.index((c, s)) for _, c, s in ev])
    eimgs = [Image.open(p).convert("RGB") for p, _, _ in ev]
    shapes = {}
    for tag, b in (*models.items(), ("v1 (demo-shapes)", v1)):
        T, _ = b.encode_texts(prompts)
        pred = (b.encode_images([sc.image for sc in singles]) @ T.T).argmax(1)
        eT, _ = b.encode_texts([vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s) for c, s in eclasses])
        epred = (b.encode_images(eimgs) @ eT.T).argmax(1)
        shapes[tag] = {"world_shapes_top1": round(float((pred == truth_s).mean()), 4),
                       "easy_vqa_test_top1": round(float((epred == etruth).mean()), 4)}
    res["shapes"] = {"world_n": len(singles), "world_classes": len(classes), "easy_vqa_n": len(ev),
                     "easy_vqa_classes": len(eclasses), **shapes}
    log(f"4 shapes: {res['shapes']}")
    res["wall_s"] = round(time.time() - t_start, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out) + ".json").write_text(json.dumps(res, indent=1))
    lines = ["# Demo CLIP v2 evaluation", "", "| measure | v2 | chance |", "|---|---|---|"]
    for key in ("objects_train_among_50", "objects_train_among_all", "objects_heldout_among_heldout",
                "objects_heldout_among_all", "pasted_train_among_50", "pasted_heldout_among_heldout"):
        r = res[key]
        lines.append(f"| {key} top-1 (related ok) | {r['top1']:.3f} ({r['top1_related_ok']:.3f}) n={r['n']} "
                     f"| {r['chance']:.4f} |")
    for label in ("train_concepts", "heldout_concepts"):
        for q, r in res[f"retrieval_multi_{label}"].items():
            lines.append(f"| t2i {label} {q} R@1 / R@5 | {r['R@1']:.3f} / {r['R@5']:.3f} | "
                         f"{r['chance_R@1']:.4f} / {r['chance_R@5']:.4f} |")
        p = res[f"pointing_game_{label}"]
        lines.append(f"| pointing game {label} ({p['objects']} objects) | {p['accuracy']:.3f} | {p['chance']:.3f} |")
        lines.append(f"| pointing game {label}, objects holding a cell centre ({p['pointable_objects']}) | "
                     f"{p['pointable_accuracy']:.3f} | {p['pointable_chance']:.3f} |")
    for tag in (*models, "v1 (demo-shapes)"):
        s = res["shapes"][tag]
        lines.append(f"| shapes world top-1 / easy-VQA test top-1, {tag} | {s['world_shapes_top1']:.3f} / "
                     f"{s['easy_vqa_test_top1']:.3f} | {1 / 88:.4f} / {1 / 24:.4f} |")
    lines += ["", "Per category (top-1 among all concepts):", "", "| category | train concepts | held-out concepts |",
              "|---|---|---|"]
    for c in sorted(set(per["train"]) | set(per["heldout"])):
        a, b = per["train"].get(c), per["heldout"].get(c)
        lines.append(f"| {c} | {a['top1']:.2f} (n={a['n']}) | " if a else f"| {c} | - | ")
        lines[-1] += f"{b['top1']:.2f} (n={b['n']}) |" if b else "- |"
    lines += ["", "Held-out transfer (6): default options vs the DEV-chosen ones "
              f"({json.dumps(next(iter(res['transfer'].values()))['options'])}); top-1:", "",
              "| model | half | candidates | default | chosen | chance |", "|---|---|---|---|---|---|"]
    for tag, tr in res["transfer"].items():
        for half in ("test", "dev"):
            r = tr[half]
            for key, cand in (("among_half", f"{r['concepts']} of the half"), ("among_heldout", "109 held-out"),
                              ("among_all", "all 707"), ("pasted_among_heldout", "109 held-out, pasted")):
                ch = r["chance"].get(key, r["chance"]["among_heldout"])
                lines.append(f"| {tag} | {half} ({r['images']} images) | {cand} | {r['default'][key]:.3f} | "
                             f"{r['chosen'][key]:.3f} | {ch:.4f} |")
            c = r["chosen_seen_margin"]
            lines.append(f"| {tag} | {half} | all 707, seen_margin {c['seen_margin']} | held-out "
                         f"{c['heldout_among_all']:.3f}, train {c['train_among_all']:.3f}, H {c['harmonic']:.3f} | | |")
        lines.append(f"| {tag} | train concepts | all 707 | {tr['train_among_all']['default']:.3f} | "
                     f"{tr['train_among_all']['chosen']:.3f} | 0.0014 |")
        lines.append(f"| {tag} | train concepts | 50 random | {tr['train_among_50']['default']:.3f} | "
                     f"{tr['train_among_50']['chosen']:.3f} | 0.0200 |")
    lines.append(f"\nThrough image.classify itself, test half among 109 with the chosen options: "
                 f"{res['transfer_tool_check']['test_among_heldout_via_tool']:.3f}")
    lines.append(f"\nwall {res['wall_s']} s, {args.threads} torch threads, CPU")
    Path(str(out) + ".md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out}.json / .md in {res['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
