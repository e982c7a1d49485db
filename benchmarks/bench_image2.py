"""Image understanding II (issue 12): each tool against the baseline its paper improves on, in one run,
on held-out world v2 data (seeds from EVAL_SEED_BASE + 3_000_000 upwards, never used by the demo CLIP's
or the adapters' training; "heldout" rows use concepts the demo CLIP never saw).

Sections (``--only a,b``): fewshot (GDA vs zero-shot, linear probe, Tip-Adapter at 1/2/4/8 shots),
caps (CapS-Adapter vs zero-shot), rank (rank_by_text Spearman, adapter vs plain CLIP), rerank
(SuperGlobal mAP vs plain image.search), quality (SRCC with degradation level, aligned vs plain
prompts), places (R@1 FoL vs global only), reid (rank-1/mAP, adapter vs plain crops), ground
(accuracy@IoU 0.5 per scoring vs the whole image), diversity (sets of known diversity) and defocus.

Nothing else is tuned here (caps: ``--split dev`` chose the CapS fusion defaults on other held-out
concepts and seeds; ``--split test``, the default, is the reported run): every tool runs with its
defaults. Few-shot features are embedded once and fed to the tool's own classifier functions (the tool
itself is called once per split as a check).

    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/bench_image2.py [--only fewshot,quality] [--small] [--split dev]

Writes benchmarks/results/bench_image2.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
RESULTS = ROOT / "benchmarks" / "results"
BASE = 9_000_000 + 3_000_000  # EVAL_SEED_BASE + 3M: held-out seeds of this benchmark


class Bench:
    def __init__(self, folder: Path, small: bool, split: str = "test"):
        from vltools.core.context import Context
        from vltools.core.registry import get_registry
        from vltools.core.settings import Settings
        from vltools.models.clip import get_clip

        self.folder = folder
        self.small = small
        self.split = split
        self.settings = Settings(allowed_roots=[folder], home=folder / "home", device="cpu")
        self.reg = get_registry()
        self.ctx = lambda: Context(settings=self.settings)
        self.backend = get_clip("demo", self.settings)
        self.n = 0

    def call(self, name, inp):
        return self.reg.call(name, inp, ctx=self.ctx())

    def save(self, img, tag: str) -> str:
        self.n += 1
        p = self.folder / f"{tag}_{self.n:06d}.png"
        img.save(p)
        return str(p)


def names(split: str) -> list[str]:
    from vltools.world import concepts

    return [c["name"] for c in concepts(split)]


# -- few-shot (P09) -------------------------------------------------------------------------------
def bench_fewshot(b: Bench) -> dict:
    from sklearn.linear_model import LogisticRegression

    from vltools.tools._image_math import gda_fit, match_scale, tip_adapter_logits
    from vltools.tools.classify import DEFAULT_TEMPLATES, _zero_shot
    from vltools.world import generate_object_scene

    out = {}
    n_cls, n_sup, n_q = (10, 8, 5) if b.small else (20, 8, 10)
    for split in ("heldout", "train"):
        rng = np.random.default_rng(12)
        cls = [str(c) for c in rng.choice(names(split), n_cls, replace=False)]
        sup, ys, qry, yq = [], [], [], []
        for ci, c in enumerate(cls):
            for i in range(n_sup + n_q):
                sc = generate_object_scene(BASE + 10_000 * ci + i + (0 if split == "heldout" else 500_000),
                                           concept_names=[c], split="all", n_objects=1, tint_p=0.4)
                (sup if i < n_sup else qry).append(sc.image)
                (ys if i < n_sup else yq).append(ci)
        fs = b.backend.encode_images(sup).astype(np.float64)
        fq = b.backend.encode_images(qry).astype(np.float64)
        ys, yq = np.array(ys), np.array(yq)
        zs = b.backend.logit_scale * fq @ _zero_shot(b.backend, cls, DEFAULT_TEMPLATES).T
        rows = {"zero_shot": {}, "linear_probe": {}, "tip_adapter": {}, "gda": {}}
        for k in (1, 2, 4, 8):
            idx = np.concatenate([np.flatnonzero(ys == c)[:k] for c in range(n_cls)])
            w, bias = gda_fit(fs[idx], ys[idx], n_cls)
            preds = {
                "zero_shot": zs.argmax(1),
                "gda": (zs + match_scale(fq @ w.T + bias, zs)).argmax(1),
                "tip_adapter": (zs + match_scale(tip_adapter_logits(fq, fs[idx], ys[idx], n_cls, 5.5), zs)).argmax(1),
                "linear_probe": LogisticRegression(C=10.0, max_iter=2000).fit(fs[idx], ys[idx]).predict(fq),
            }
            for m, pr in preds.items():
                rows[m][k] = round(float(np.mean(pr == yq)), 3)
        # the tool end to end at 8 shots (same numbers expected as the gda row)
        sp = [b.save(im, "fs") for im in sup]
        qp = [b.save(im, "fq") for im in qry]
        support = [{"image": p, "label": cls[y]} for p, y in zip(sp, ys, strict=True)]
        res = b.call("classify.few_shot", {"support": support, "images": qp})
        tool_acc = float(np.mean([r.label == cls[y] for r, y in zip(res.results, yq, strict=True)]))
        out[split] = {"classes": n_cls, "queries": len(qry), "accuracy": rows, "tool_gda_8shot": round(tool_acc, 3)}
    return out


# -- CapS-Adapter (P54) -------------------------------------------------------------------------
CAPS_OLD_DEFAULT = {"alpha": 1.0, "gamma": 1.0, "beta": 5.5}  # the tool's default until session 4
CAPS_GRID = {"alpha": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
             "gamma": [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
             "beta": [1.0, 3.0, 5.5, 10.0]}
CAPS_TIE = 0.005
CAPS_DELTA = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]  # the paper's code: caption affinity mixed inside the kernel


def _caps_paper_logits(zs, feats, sup_img, sup_cap, y, alpha, delta, beta):
    """The official code's fusion (madapter.py, without SuS-X's KL term): one cache whose affinity is
    ``(1 - delta) f.I + delta f.C``, through Tip-Adapter's kernel; rescaled like the tool's caches."""
    from vltools.tools._image_math import match_scale

    aff = np.exp(-beta * (1.0 - ((1 - delta) * feats @ sup_img.T + delta * feats @ sup_cap.T)))
    return zs + alpha * match_scale(aff @ np.eye(zs.shape[1])[y], zs)


def _caps_classes(split: str, fold: int, n_cls: int) -> list[str]:
    """TEST: the 15 (10 small) held-out concepts of the original run (rng 54); DEV: other held-out
    concepts, disjoint from every TEST class, drawn per fold."""
    test = [str(c) for c in np.random.default_rng(54).choice(names("heldout"), n_cls, replace=False)]
    if split == "test":
        return test
    rest = [c for c in names("heldout") if c not in set(test)]
    return [str(c) for c in np.random.default_rng(5400 + fold).choice(rest, n_cls, replace=False)]


def _caps_data(b: Bench, split: str, fold: int) -> tuple[list[str], list[dict], list[str], list[str]]:
    """Classes, unlabelled corpus (a third show a class concept among others) and labelled test images.

    TEST seeds: BASE + 100_000 (corpus) / + 200_000 (images), as in the original run; DEV folds use
    BASE + 2_000_000 + 100_000 * fold (corpus) and + 50_000 (images), which no other section touches."""
    from vltools.world import generate_object_scene

    n_cls = 10 if b.small else 15
    cls = _caps_classes(split, fold, n_cls)
    if split == "test":
        rng, s_corpus, s_img = np.random.default_rng(54), BASE + 100_000, BASE + 200_000
        rng.choice(names("heldout"), n_cls, replace=False)  # keep the original run's random stream
    else:
        rng = np.random.default_rng(54_000 + fold)
        s_corpus = BASE + 2_000_000 + 100_000 * fold
        s_img = s_corpus + 50_000
    others = names("all")
    corpus = []
    for i in range(120 if b.small else 300):
        if i % 3 == 0:
            cn = [cls[(i // 3) % n_cls]] + [str(rng.choice(others))] * int(rng.integers(0, 2))
            sc = generate_object_scene(s_corpus + i, concept_names=cn, split="all")
        else:
            sc = generate_object_scene(s_corpus + i, split="all")
        corpus.append({"image": b.save(sc.image, "cc"), "caption": sc.caption})
    test, yt = [], []
    for ci, c in enumerate(cls):
        for i in range(5 if b.small else 10):
            sc = generate_object_scene(s_img + 100 * ci + i, concept_names=[c], split="all", tint_p=0.3)
            test.append(b.save(sc.image, "ct"))
            yt.append(c)
    return cls, corpus, test, yt


def bench_caps(b: Bench) -> dict:
    """TEST: zero-shot, image cache only, the old and the current default, side by side (tool calls).
    DEV: the fusion grid (alpha, gamma, beta) on three folds of other concepts and seeds; the setting
    with the best mean accuracy is the one to make the default. The official code's fusion (caption
    affinity mixed into one cache, weight delta) is swept beside it for comparison."""
    if b.split == "test":
        cls, corpus, test, yt = _caps_data(b, "test", 0)
        res = {}
        variants = (("zero_shot", {"alpha": 0.0, "gamma": 0.0}),
                    ("caps_image_cache_only_old", {**CAPS_OLD_DEFAULT, "gamma": 0.0}),
                    ("caps_old_default", CAPS_OLD_DEFAULT), ("caps_image_cache_only", {"gamma": 0.0}),
                    ("caps_default", {}))
        for name, extra in variants:
            o = b.call("classify.caps_adapter", {"images": test, "labels": cls, "corpus": corpus, **extra})
            res[name] = round(float(np.mean([r.label == y for r, y in zip(o.results, yt, strict=True)])), 3)
        return {"split": "test", "classes": len(cls), "corpus": len(corpus), "test_images": len(test),
                "accuracy": res}
    import itertools

    from vltools.tools._image_io import embed_paths, text_embeddings
    from vltools.tools.classify import DEFAULT_TEMPLATES, _zero_shot, caps_logits, caps_support

    grid = list(itertools.product(CAPS_GRID["alpha"], CAPS_GRID["gamma"], CAPS_GRID["beta"]))
    acc = {g: [] for g in grid}
    pgrid = list(itertools.product(CAPS_GRID["alpha"], CAPS_DELTA, CAPS_GRID["beta"]))
    pacc = {g: [] for g in pgrid}
    folds = []
    for fold in range(3):
        cls, corpus, test, yt = _caps_data(b, "dev", fold)
        classes = _zero_shot(b.backend, cls, DEFAULT_TEMPLATES)
        cap_emb = text_embeddings(b.backend, [c["caption"] for c in corpus]).astype(np.float64)
        chosen, y = caps_support(cap_emb, classes, 8)
        feats = embed_paths(b.backend, test, b.ctx(), "dev", 32).astype(np.float64)
        sup = embed_paths(b.backend, [corpus[i]["image"] for i in chosen], b.ctx(), "dev", 32).astype(np.float64)
        zs = b.backend.logit_scale * feats @ classes.T
        yy = np.array([cls.index(c) for c in yt])
        for g in grid:
            acc[g].append(float(np.mean(caps_logits(zs, feats, sup, cap_emb[chosen], np.array(y), *g).argmax(1) == yy)))
        for g in pgrid:
            pl = _caps_paper_logits(zs, feats, sup, cap_emb[chosen], np.array(y), *g)
            pacc[g].append(float(np.mean(pl.argmax(1) == yy)))
        o = b.call("classify.caps_adapter", {"images": test, "labels": cls, "corpus": corpus, **CAPS_OLD_DEFAULT})
        tool_old = float(np.mean([r.label == c for r, c in zip(o.results, yt, strict=True)]))
        folds.append({"classes": cls, "zero_shot": round(float(np.mean(zs.argmax(1) == yy)), 3),
                      "old_default_tool": round(tool_old, 3),
                      "old_default_grid": round(acc[tuple(CAPS_OLD_DEFAULT.values())][-1], 3)})
    mean = {g: float(np.mean(v)) for g, v in acc.items()}
    # settings within CAPS_TIE of the best mean count as tied (2 of 450 images); among them, the one closest
    # to the old default (smallest summed relative change) is chosen
    old = tuple(CAPS_OLD_DEFAULT.values())
    top = max(mean.values())
    best = min((g for g in grid if mean[g] >= top - CAPS_TIE),
               key=lambda g: sum(abs(x - o) / o for x, o in zip(g, old, strict=True)))
    table = sorted(mean.items(), key=lambda kv: -kv[1])
    by_gamma = {gm: round(max(m for g, m in mean.items() if g[1] == gm), 3) for gm in CAPS_GRID["gamma"]}
    by_alpha = {a: round(max(m for g, m in mean.items() if g[0] == a), 3) for a in CAPS_GRID["alpha"]}
    pmean = {g: float(np.mean(v)) for g, v in pacc.items()}
    pbest = max(pgrid, key=lambda g: pmean[g])
    by_delta = {d: round(max(m for g, m in pmean.items() if g[1] == d), 3) for d in CAPS_DELTA}
    return {"split": "dev", "folds": folds, "grid": CAPS_GRID,
            "best": dict(zip(("alpha", "gamma", "beta"), best, strict=True)),
            "best_mean_accuracy": round(mean[best], 3), "top_mean_accuracy": round(top, 3),
            "old_default_mean_accuracy": round(mean[tuple(CAPS_OLD_DEFAULT.values())], 3),
            "best_per_gamma": by_gamma, "best_per_alpha": by_alpha,
            "paper_fusion": {"best": dict(zip(("alpha", "delta", "beta"), pbest, strict=True)),
                             "best_mean_accuracy": round(pmean[pbest], 3), "best_per_delta": by_delta},
            "top10": [{"alpha": g[0], "gamma": g[1], "beta": g[2], "dev_accuracy": round(m, 3)} for g, m in table[:10]]}


# -- rank_by_text (P02) -------------------------------------------------------------------------
def bench_rank(b: Bench) -> dict:
    from _image2_data import ATTRIBUTES, ordering_set

    from vltools.tools._image_math import spearman

    n = 8 if b.small else 25
    out = {}
    for ai, attr in enumerate(ATTRIBUTES):
        rows = {"plain": [], "adapter": []}
        for i in range(n):
            s = ordering_set(attr, BASE + 300_000 + 1000 * ai + i, "heldout")
            paths = [b.save(im, "rk") for im in s["images"]]
            for mode, key in (("off", "plain"), ("on", "adapter")):
                o = b.call("image.rank_by_text", {"images": paths, "query": s["query"], "adapter": mode})
                score = {r.image: r.score for r in o.results}
                rows[key].append(spearman([score[p] for p in paths], s["values"]))
        out[attr] = {k: round(float(np.mean(v)), 3) for k, v in rows.items()}
    out["mean"] = {k: round(float(np.mean([out[a][k] for a in ATTRIBUTES])), 3) for k in ("plain", "adapter")}
    out["sets_per_attribute"] = n
    return out


# -- SuperGlobal rerank (P06) -------------------------------------------------------------------
RERANK_GRID = {"p": (1.0, 3.0, 4.6, 8.0), "neighbours": (1, 2, 3, 5, 9), "beta": (0.05, 0.15, 0.5, 1.0)}


def bench_rerank(b: Bench) -> dict:
    """One database; DEV queries choose SuperGlobal's K, beta and GeM p (on features embedded once, the tool's own
    functions); TEST queries (other scenes) then call image.search and image.rerank with the choice side by side."""
    import itertools

    from vltools.models.media import load_image
    from vltools.tools._image_math import average_precision, superglobal_rerank
    from vltools.tools.image import superglobal_features
    from vltools.world import generate_object_scene

    rng = np.random.default_rng(6)
    n_cls, n_var, n_q = (10, 5, 1) if b.small else (30, 6, 2)
    cls = [str(c) for c in rng.choice(names("all"), n_cls, replace=False)]
    db, queries, owner = [], {"dev": [], "test": []}, {}
    for ci, c in enumerate(cls):
        for v in range(n_var + 2 * n_q):
            extra = [str(rng.choice(names("all")))] if rng.random() < 0.5 else []
            sc = generate_object_scene(BASE + 400_000 + 100 * ci + v, concept_names=[c, *extra], split="all",
                                       tint_p=0.3)
            p = b.save(sc.image, "rr")
            owner[str(Path(p).resolve())] = owner[p] = c
            (db if v < n_var else queries["dev" if v < n_var + n_q else "test"]).append(p)
    for i in range(2 * n_cls):
        p = b.save(generate_object_scene(BASE + 450_000 + i, split="all").image, "rd")
        db.append(p)
        owner[str(Path(p).resolve())] = owner[p] = "distractor"
    b.call("image.index", {"collection": "rerank_db", "paths": db, "create": True})
    m = 50
    # DEV: the first stage as image.search ranks it (global embeddings), then the grid on cached features
    imgs = {p: load_image(p, b.settings) for p in db + queries["dev"]}
    glob = {p: v for p, v in zip(imgs, b.backend.encode_images(list(imgs.values())), strict=True)}
    feats = {pp: dict(zip(imgs, superglobal_features(b.backend, list(imgs.values()), pp), strict=True))
             for pp in RERANK_GRID["p"]}
    dev_ap: dict[str, list[float]] = {"plain": []}
    gdb = np.stack([glob[p] for p in db])
    for q in queries["dev"]:
        top = [db[i] for i in np.argsort(-(gdb @ glob[q]))[:m]]
        dev_ap["plain"].append(average_precision([owner[p] == owner[q] for p in top], n_var))
        for pp, k, beta in itertools.product(*RERANK_GRID.values()):
            s = superglobal_rerank(feats[pp][q], np.stack([feats[pp][p] for p in top]), k, beta)
            ranked = [top[i] for i in np.argsort(-s)]
            dev_ap.setdefault(f"p={pp},K={k},beta={beta}", []).append(
                average_precision([owner[p] == owner[q] for p in ranked], n_var))
    dev = {key: round(float(np.mean(v)), 4) for key, v in dev_ap.items()}
    best = max((key for key in dev if key != "plain"), key=lambda key: dev[key])
    choice = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in best.split(",")}
    choice["neighbours"] = int(choice.pop("K"))
    paper = "p=4.6,K=9,beta=0.15"
    aps: dict[str, list[float]] = {"plain image.search": [], "SuperGlobal, dev choice": [],
                                   "SuperGlobal, paper's setting (p=4.6, K=9, beta=0.15)": []}
    for q in queries["test"]:
        c = owner[q]
        runs = {"plain image.search": b.call("image.search", {"collection": "rerank_db", "image": q, "k": m}).hits,
                "SuperGlobal, dev choice": b.call("image.rerank", {"collection": "rerank_db", "image": q, "k": m,
                                                                   "candidates": m, **choice}).hits,
                "SuperGlobal, paper's setting (p=4.6, K=9, beta=0.15)": b.call("image.rerank", {
                    "collection": "rerank_db", "image": q, "k": m, "candidates": m, "p": 4.6, "neighbours": 9,
                    "beta": 0.15}).hits}
        for key, hits in runs.items():
            aps[key].append(average_precision([owner[h.path] == c for h in hits], n_var))
    top_dev = sorted(dev.items(), key=lambda kv: -kv[1])[:5]
    return {"database": len(db), "relevant_per_query": n_var, "candidates": m,
            "dev": {"queries": len(queries["dev"]), "mAP_plain": dev["plain"], "mAP_paper_setting": dev[paper],
                    "best": top_dev, "chosen": choice, "grid": RERANK_GRID},
            "test": {"queries": len(queries["test"]), "mAP": {k: round(float(np.mean(v)), 3) for k, v in aps.items()}}}


# -- quality (P12) --------------------------------------------------------------------------------
def bench_quality(b: Bench) -> dict:
    from vltools.tools._image_math import spearman
    from vltools.world import generate_object_scene
    from vltools.world.degrade import KINDS, degrade

    n = 12 if b.small else 40
    items = []
    for i in range(n):
        sc = generate_object_scene(BASE + 500_000 + i, split="heldout" if i % 2 else "train")
        for k in KINDS:
            for lv in range(6):
                items.append((b.save(degrade(sc.image, k, lv, seed=i), "q"), i, k, lv))
    paths = [it[0] for it in items]
    out = {}
    for mode in ("off", "on"):
        o = b.call("image.quality", {"images": paths, "alignment": mode})
        s = np.array([r.score for r in o.results])
        lv = np.array([it[3] for it in items])
        per_kind = {}
        for k in KINDS:
            sel = [j for j, it in enumerate(items) if it[2] == k]
            within = [spearman(-lv[[j for j in sel if items[j][1] == i]], s[[j for j in sel if items[j][1] == i]])
                      for i in range(n)]
            per_kind[k] = round(float(np.mean(within)), 3)
        out["aligned" if mode == "on" else "plain"] = {
            "srcc_pooled": round(spearman(-lv, s), 3), "srcc_within_image_by_kind": per_kind,
            "srcc_within_image_mean": round(float(np.mean(list(per_kind.values()))), 3)}
    out["images"] = len(paths)
    out["note"] = "pixelate is never seen in training (train kinds: blur, noise, jpeg, contrast)"
    return out


# -- place recognition (P15) ----------------------------------------------------------------------
def bench_places(b: Bench) -> dict:
    from _image2_data import place_views

    n = 12 if b.small else 40
    db, queries = [], []
    for pl in range(n):
        views = place_views(BASE + 600_000 + pl, 3)
        p = b.save(views[0], f"pl{pl}")
        db.append(p)
        queries += [(b.save(v, f"pq{pl}"), pl) for v in views[1:]]
    b.call("image.index", {"collection": "places_db", "paths": db, "create": True})
    place_of = {str(Path(p).resolve()): i for i, p in enumerate(db)}
    r1 = {"global": [], "fol": []}
    for q, pl in queries:
        g = b.call("image.search", {"collection": "places_db", "image": q, "k": 1}).hits
        f = b.call("image.place_recognition", {"collection": "places_db", "image": q, "k": 1, "candidates": 10}).hits
        r1["global"].append(place_of[g[0].path] == pl)
        r1["fol"].append(place_of[f[0].path] == pl)
    return {"places": n, "queries": len(queries), "R@1": {k: round(float(np.mean(v)), 3) for k, v in r1.items()}}


# -- re-identification (P22) ------------------------------------------------------------------------
def bench_reid(b: Bench) -> dict:
    from _image2_data import crops_of_tracks

    from vltools.tools._image_math import average_precision

    rng = np.random.default_rng(22)
    n = 16 if b.small else 40
    held = names("heldout")
    crops = []
    for i in range(n):
        if i % 8 == 0:
            pool = [str(c) for c in rng.choice(held, 6, replace=False)]
        for c in crops_of_tracks(BASE + 700_000 + i, "heldout", pool, (0, 8, 16, 24)):
            c["path"] = b.save(c["image"], "ri")
            crops.append(c)
    q = [c for c in crops if c["frame"] == 0]
    g = [c for c in crops if c["frame"] != 0]
    out = {"videos": n, "queries": len(q), "gallery": len(g), "identities": len({c["identity"] for c in crops})}
    for mode in ("off", "on"):
        o = b.call("image.reidentify", {"query": [{"image": c["path"]} for c in q],
                                        "gallery": [{"image": c["path"], "identity": c["identity"]} for c in g],
                                        "k": 100, "adapter": mode})
        r1 = [m.identity == c["identity"] for m, c in zip(o.matches, q, strict=True)]
        aps = [average_precision([nb.identity == c["identity"] for nb in m.neighbours],
                                 sum(x["identity"] == c["identity"] for x in g))
               for m, c in zip(o.matches, q, strict=True)]
        out["adapter" if mode == "on" else "plain"] = {"rank1": round(float(np.mean(r1)), 3),
                                                       "mAP@100": round(float(np.mean(aps)), 3)}
    return out


# -- grounding (P46) --------------------------------------------------------------------------------
GROUND_DEV = {"dense/mass": {}, "dense/pooled": {"box_score": "pooled"}, "dense/crop": {"box_score": "crop"},
              "dense/mass, no text refinement": {"text_refine": 0.0}}


def ground_items(b: Bench, seed: int, split: str, n: int) -> list[tuple[str, dict, tuple[int, int]]]:
    """(path, object, size) for every object of ``n`` 2-4-object 128-px scenes whose concept is unique in its scene
    and at least half visible (the query "a NAME" then names one box)."""
    from vltools.world import generate_object_scene

    out = []
    for i in range(n):
        sc = generate_object_scene(seed + i, n_objects=2 + i % 3, split=split, image_size=128)
        objs = sc.labels["objects"]
        names_in = [o["concept"] for o in objs]
        p = b.save(sc.image, "gr")
        out += [(p, o, sc.image.size) for o in objs if names_in.count(o["concept"]) == 1
                and o["visible_fraction"] > 0.5]
    return out


def ground_accuracy(b: Bench, items: list, configs: dict[str, dict]) -> dict[str, float]:
    from vltools.tools._image_math import iou

    hits: dict[str, list[bool]] = {}
    agnostic: dict[str, list] = {}
    for p, o, (w, h) in items:
        hits.setdefault("whole image", []).append(iou([0, 0, w, h], o["bbox"]) >= 0.5)
        hits.setdefault("centre box (half the side)", []).append(iou([w / 4, h / 4, 3 * w / 4, 3 * h / 4],
                                                                     o["bbox"]) >= 0.5)
        for name, extra in configs.items():
            if extra.get("query") == "an object":  # query-agnostic: one call per image
                if p not in agnostic:
                    agnostic[p] = b.call("image.ground", {"image": p, "k": 1, **extra}).boxes
                box = agnostic[p][0].box
            else:
                box = b.call("image.ground", {"image": p, "query": f"a {o['concept']}", "k": 1, **extra}).boxes[0].box
            hits.setdefault(name, []).append(iou(box, o["bbox"]) >= 0.5)
    return {k: round(float(np.mean(v)), 3) for k, v in hits.items()}


def bench_ground(b: Bench) -> dict:
    """Dev scenes choose the dense method's box scoring and text refinement; test scenes (other seeds) report
    every method side by side, train and held-out concepts separately."""
    n_dev, n_test = (6, 12) if b.small else (12, 32)
    dev = {split: ground_items(b, BASE + 850_000 + 10_000 * k, split, n_dev)
           for k, split in enumerate(("train", "heldout"))}
    dev_acc = {split: ground_accuracy(b, items, GROUND_DEV) for split, items in dev.items()}
    chosen = max(GROUND_DEV, key=lambda c: (dev_acc["train"][c], c == "dense/mass"))
    test_cfg = {
        "query-agnostic ('an object', dense)": {"query": "an object"},
        "windows, hybrid (previous default)": {"method": "hybrid"},
        "windows, pool": {"method": "pool"},
        **{f"{c} (dev choice)" if c == chosen else c: GROUND_DEV[c] for c in GROUND_DEV},
    }
    test = {split: ground_items(b, BASE + 800_000 + 10_000 * k, split, n_test)
            for k, split in enumerate(("train", "heldout"))}
    return {"dev": {"scenes_per_split": n_dev, "objects": {s: len(v) for s, v in dev.items()},
                    "acc@IoU0.5": dev_acc, "chosen": chosen},
            "test": {"scenes_per_split": n_test, "objects": {s: len(v) for s, v in test.items()},
                     "acc@IoU0.5": {split: ground_accuracy(b, items, test_cfg) for split, items in test.items()}},
            "query": "a NAME; hit = top box IoU >= 0.5 with the object's (amodal) box"}


# -- diversity and defocus (P17) ---------------------------------------------------------------------
def bench_diversity(b: Bench) -> dict:
    from vltools.tools._image_math import spearman
    from vltools.world import generate_object_scene

    rng = np.random.default_rng(17)
    pool = [str(c) for c in rng.choice(names("all"), 16, replace=False)]
    rows = []
    for k in (1, 2, 4, 8, 16):
        paths = [b.save(generate_object_scene(BASE + 900_000 + 100 * k + i, concept_names=[pool[i % k]],
                                              split="all").image, "dv") for i in range(16)]
        o = b.call("metrics.diversity", {"images": paths})
        rows.append({"distinct_concepts": k, "entropy": round(o.entropy, 3), "vendi": round(o.vendi, 2)})
    srcc = spearman([r["distinct_concepts"] for r in rows], [r["vendi"] for r in rows])
    # intrinsic diversity: 8 prompts x 6 images; the images vary only with the prompt (one plain look per
    # concept) or also within a prompt (backgrounds, tints, a second object)
    prompts = [f"a photo of a {c}" for c in pool[:8] for _ in range(6)]
    low = [b.save(generate_object_scene(BASE + 950_000 + i // 6, concept_names=[pool[i // 6]], split="all",
                                        background="plain", rotate_p=0.0).image, "dl") for i in range(48)]
    extra = [str(c) for c in rng.choice(names("all"), 48)]
    high = [b.save(generate_object_scene(BASE + 960_000 + i, concept_names=[pool[i // 6], extra[i]], split="all",
                                         tint_p=0.6).image, "dh") for i in range(48)]
    lo = b.call("metrics.diversity", {"images": low, "prompts": prompts})
    hi = b.call("metrics.diversity", {"images": high, "prompts": prompts})
    return {"sets": rows, "spearman_vendi_vs_distinct": round(srcc, 3),
            "intrinsic": {"prompt_only_variation": {"vendi": round(lo.vendi, 2), "sce": round(lo.intrinsic_entropy, 3),
                                                    "prompt_share": round(lo.prompt_share, 3)},
                          "extra_variation": {"vendi": round(hi.vendi, 2), "sce": round(hi.intrinsic_entropy, 3),
                                              "prompt_share": round(hi.prompt_share, 3)}}}


def bench_defocus(b: Bench) -> dict:
    from PIL import Image

    from vltools.tools._image_math import l2n
    from vltools.world import generate_object_scene

    rng = np.random.default_rng(18)
    vocab = [str(c) for c in rng.choice(names("train"), 20, replace=False)]
    n = 20 if b.small else 48
    paths, caps, pairs = [], [], []
    for i in range(n):
        a, c2 = rng.choice(len(vocab), 2, replace=False)
        sc = generate_object_scene(BASE + 980_000 + i, concept_names=[vocab[a], vocab[c2]], split="all",
                                   overlap_p=0.0)
        paths.append(b.save(sc.image, "df"))
        caps.append(sc.caption)
        pairs.append((int(a), int(c2)))
    temb = l2n(b.backend.encode_texts([f"a {v}" for v in vocab])[0])
    out = {}
    for method in ("none", "project", "schur"):
        a_top, b_kept = [], []
        for a in range(len(vocab)):  # defocus each concept out of the images that show it
            idx = [i for i, (x, _) in enumerate(pairs) if x == a]
            if not idx:
                continue
            if method == "none":
                vec = l2n(b.backend.encode_images([Image.open(paths[i]).convert("RGB") for i in idx]))
            else:
                o = b.call("embed.defocus", {"images": paths, "concept": f"a {vocab[a]}", "captions": caps,
                                             "method": method})
                vec = np.array([o.results[i].vector for i in idx])
            s = vec @ temb.T
            for row, i in zip(s, idx, strict=True):
                order = list(np.argsort(-row))
                a_top.append(order.index(pairs[i][0]) < 2)
                b_kept.append(order.index(pairs[i][1]) < 2)
        out[method] = {"defocused_concept_in_top2": round(float(np.mean(a_top)), 3),
                       "other_concept_in_top2": round(float(np.mean(b_kept)), 3)}
    return {"images": n, "vocabulary": len(vocab), "results": out}


SECTIONS = {"fewshot": bench_fewshot, "caps": bench_caps, "rank": bench_rank, "rerank": bench_rerank,
            "quality": bench_quality, "places": bench_places, "reid": bench_reid, "ground": bench_ground,
            "diversity": bench_diversity, "defocus": bench_defocus}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--split", choices=("dev", "test"), default="test",
                    help="caps: dev = choose the fusion setting on other concepts/seeds; test = the reported run")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "bench_image2.json"
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(Path(tmp), args.small, args.split)
        for name in args.only.split(","):
            t0 = time.time()
            res = SECTIONS[name](b)
            res["wall_s"] = round(time.time() - t0, 1)
            res["command"] = " ".join(["python", *sys.argv])
            results = json.loads(path.read_text()) if path.exists() else {}  # re-read: other sections may run apart
            results[name if args.split == "test" else f"{name}_dev"] = res
            path.write_text(json.dumps(results, indent=1))
            print(name, json.dumps(res), file=sys.stderr)
    (RESULTS / "bench_image2.md").write_text(markdown(results))


def markdown(r: dict) -> str:
    lines = ["# Image understanding II on held-out world v2 (demo CLIP)", ""]
    for name, res in r.items():
        lines += [f"## {name}", "", "```json", json.dumps(res, indent=1), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
