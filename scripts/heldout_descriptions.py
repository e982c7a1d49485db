"""Held-out concepts of the demo CLIP v2 through description-based and ConSE options of ``image.classify``.

``python scripts/heldout_descriptions.py --split dev``  -> benchmarks/results/heldout_descriptions_dev.json
``python scripts/heldout_descriptions.py --split test`` -> benchmarks/results/heldout_descriptions_test.{json,md}

Protocol (that of `scripts/tune_heldout_transfer.py`): the 109 held-out concepts (never in a training
image or caption) are split once into a DEV half (53) and a TEST half (56) by `heldout_halves`.

- ``--split dev`` only looks at DEV concepts, on the tuning script's own images (seeds 31,000,000 +
  k * 1000 + i, 6 per concept by default). It scores every option set with the tool's own functions
  (`class_embeddings`, `wordnet_label_descriptions`, `conse_mix`) on one embedding of the images:
  WordNet-gloss descriptions (Menon & Vondrick 2023 with WordNet as the knowledge source) at several
  description weights, with and without the table's aliases and subcategory, colour words of the gloss
  alone (attribute scoring), ConSE (Norouzi et al. 2014) over the 598 train concepts, and a transductive
  CSLS calibration over the batch (script-only, not a tool option). The choice: the highest DEV top-1
  among the 109 held-out names (ties: top-1 among the 53 DEV names, then top-5 among 109).
- ``--split test`` runs once, through the ``image.classify`` tool itself, on the evaluation script's
  held-out images (seeds 29,100,000 + k, concept k mod 109: the first 545 are `eval_demo_clip_v2.py`'s)
  of the TEST-half concepts only: default options, the previous session's DEV-chosen options and the new
  DEV-chosen ones (``CHOSEN``, copied by hand from the DEV json), side by side on the same images; top-1
  and top-5 among the 109 held-out names and among the 56 TEST names, chance beside each, per category.
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

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

EVAL_HELD_SEED = 29_100_000  # eval_demo_clip_v2.py: EVAL_SEED_BASE + 100_000 + k
COLOURS = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey", "gray",
           "golden", "silver", "tawny"}
# What --split dev chose (benchmarks/results/heldout_descriptions_dev.json, "chosen"); applied once to TEST.
CHOSEN = {"descriptions": "wordnet", "description_weight": 0.5, "aliases": 3,
          "conse_top": 10, "conse_keep": 0.75, "conse_temperature": 0.05}
# The previous session's DEV choices (tune_heldout_transfer.py): for the committed (stage-1) weights, and stage 2's.
OLD = {"stage-1 DEV choice: subcategory + aliases": ("subcategory", 3),
       "stage-2 DEV choice: subcategory, category + aliases": ("subcategory, category", 3)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ranks(scores: np.ndarray, labels: list[str], truth: list[str]) -> dict[str, float]:
    """Top-1 / top-5 of (n, L) scores."""
    order = np.argsort(-scores, axis=1)
    ti = np.array([labels.index(t) for t in truth])
    return {"top1": round(float((order[:, 0] == ti).mean()), 4),
            "top5": round(float((order[:, :5] == ti[:, None]).any(1).mean()), 4)}


def table_options(names: list[str], desc: str | None, n_aliases: int) -> tuple[dict | None, dict | None]:
    from tune_heldout_transfer import options_for

    return options_for(names, desc, n_aliases)


def dev(args) -> int:
    import torch
    from tune_heldout_transfer import TEMPLATES, TUNE_SEED_BASE, TextCache, heldout_halves

    from vltools.models import clip_demo_v2
    from vltools.models.clip._encode import ClipBackend
    from vltools.tools.image import class_embeddings, conse_mix, wordnet_label_descriptions
    from vltools.world.concept_table import concepts
    from vltools.world.objects import generate_object_scene

    torch.set_num_threads(args.threads)
    t0 = time.time()
    backend = ClipBackend("demo", *clip_demo_v2.load("cpu", None), "cpu")
    texts = TextCache(backend, Path(args.text_cache))
    dev_names, test_names = heldout_halves()
    held = dev_names + test_names
    train = [r["name"] for r in concepts("train")]
    imgs, truth = [], []
    for k in range(args.per_concept):
        for i, name in enumerate(dev_names):
            imgs.append(generate_object_scene(TUNE_SEED_BASE + k * 1000 + i, concept_names=[name]).image)
            truth.append(name)
    X = backend.encode_images(imgs)
    log(f"{len(imgs)} DEV images embedded ({time.time() - t0:.0f} s)")
    seen_embs: dict[tuple, np.ndarray] = {}  # the tool embeds seen_labels with the call's templates

    def seen_emb(templates):
        if tuple(templates) not in seen_embs:
            seen_embs[tuple(templates)] = class_embeddings(texts, train, templates, None, "stretch")[0]
        return seen_embs[tuple(templates)]

    def descs(labels, kind, aliases):
        if kind is None:
            return None
        if kind in ("subcategory", "subcategory, category"):
            return table_options(labels, kind, 0)[0]
        wn, _ = wordnet_label_descriptions(labels, aliases)
        if kind == "wordnet":
            return wn
        if kind == "wordnet + subcategory":
            sub = table_options(labels, "subcategory", 0)[0]
            return {lab: [*wn.get(lab, []), *sub[lab]] for lab in labels}
        if kind == "wordnet colour words":  # attribute scoring: only the colours the gloss names
            out = {}
            for lab, d in wn.items():
                cs = [w for w in re.findall(r"[a-z]+", d[0].lower()) if w in COLOURS]
                if cs:
                    out[lab] = [f"which is {c}" for c in dict.fromkeys(cs)]
            return out
        raise ValueError(kind)

    def scores(labels, kind, n_aliases, weight, conse=None, csls=0, templates=None):
        aliases = table_options(labels, None, n_aliases)[1]
        C, _ = class_embeddings(texts, labels, templates or TEMPLATES, descs(labels, kind, aliases), "stretch",
                                aliases, weight)
        F = conse_mix(X, seen_emb(templates or TEMPLATES), *conse) if conse else X
        S = F @ C.T
        if csls:  # transductive CSLS: penalise labels that are close to many images of the batch (hubs)
            S = 2 * S - np.sort(S, axis=0)[-csls:].mean(0)[None]
        return S

    configs: list[tuple[str, dict]] = [("default", {"kind": None, "n_aliases": 0, "weight": 0.5})]
    configs += [(name, {"kind": d, "n_aliases": a, "weight": 0.5}) for name, (d, a) in OLD.items()]
    for kind in ("wordnet", "wordnet + subcategory", "wordnet colour words"):
        for n_aliases in (0, 3):
            for w in (0.5, 0.75, 1.0):
                configs.append((f"{kind}, weight {w}" + (" + aliases" if n_aliases else ""),
                                {"kind": kind, "n_aliases": n_aliases, "weight": w}))
    for k in (5, 10):
        configs.append((f"default + CSLS k={k}", {"kind": None, "n_aliases": 0, "weight": 0.5, "csls": k}))
    rows = []

    def run(name, kw):
        r = {"method": name, **kw}
        r["among_dev"] = ranks(scores(dev_names, **kw), dev_names, truth)
        r["among_heldout"] = ranks(scores(held, **kw), held, truth)
        rows.append(r)
        log(json.dumps(r))

    for name, kw in configs:
        run(name, kw)
    # ConSE on top of default, the best previous option and the best description option so far
    desc_rows = [r for r in rows if r["method"].startswith("wordnet")]

    def key(r):
        return (r["among_heldout"]["top1"], r["among_dev"]["top1"], r["among_heldout"]["top5"])

    best_desc = max(desc_rows, key=key)
    bases = [("default", configs[0][1]), (best_desc["method"], {k: best_desc[k] for k in ("kind", "n_aliases",
                                                                                           "weight")})]
    for bname, bkw in bases:
        for top in (3, 5, 10, 30):
            for keep in (0.5, 0.75):
                run(f"{bname} + ConSE top {top} keep {keep}", {**bkw, "conse": (top, keep, 0.05)})
    # prompt templates in the training captions' style ("a dog") instead of the tool's default set
    best = max(rows, key=key)
    base_kw = {k: best[k] for k in ("kind", "n_aliases", "weight", "conse") if k in best}
    for tname, tpl in (("a {}", ["a {}"]), ("a {} + {}", ["a {}", "{}"]), ("a {} on backgrounds",
                       ["a {}", "a {} on the grass", "a {} on a plain background", "a {} on the road"])):
        run(f"default, templates {tname}", {**configs[0][1], "templates": tpl})
        run(f"{best['method']}, templates {tname}", {**base_kw, "templates": tpl})
    chosen = max(rows, key=key)
    res = {"protocol": __doc__.strip(), "dev": dev_names, "images": len(truth), "per_concept": args.per_concept,
           "chance": {"among_dev": {"top1": 1 / len(dev_names), "top5": 5 / len(dev_names)},
                      "among_heldout": {"top1": 1 / len(held), "top5": 5 / len(held)}},
           "rows": rows, "chosen": chosen, "wall_s": round(time.time() - t0, 1)}
    out = Path(args.out or REPO / "benchmarks" / "results" / "heldout_descriptions_dev.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    log(f"chosen: {json.dumps(chosen)} -> {out}")
    return 0


def test(args) -> int:
    import torch
    from tune_heldout_transfer import heldout_halves, options_for

    from vltools.core.context import Context
    from vltools.core.registry import get_registry
    from vltools.core.settings import Settings
    from vltools.world.concept_table import concept, concepts
    from vltools.world.objects import generate_object_scene

    torch.set_num_threads(args.threads)
    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="vltools-heldout-test-"))
    settings = Settings(allowed_roots=[tmp], home=tmp / "home", device="cpu")
    dev_names, test_names = heldout_halves()
    held = [r["name"] for r in concepts("heldout")]
    train = [r["name"] for r in concepts("train")]
    paths, truth = [], []
    for k in range(args.images):
        name = held[k % len(held)]
        if name in set(test_names):
            p = tmp / f"h{k}.png"
            generate_object_scene(EVAL_HELD_SEED + k, concept_names=[name]).image.save(p)
            paths.append(str(p))
            truth.append(name)
    log(f"{len(paths)} TEST-half images of {len(set(truth))} concepts ({time.time() - t0:.0f} s)")

    def options(name: str, labels: list[str]) -> dict:
        if name == "default":
            return {}
        if name in OLD:
            d, a = options_for(labels, *OLD[name])
            return {"descriptions": d, "aliases": a}
        a = options_for(labels, None, CHOSEN["aliases"])[1]
        base = {"descriptions": CHOSEN["descriptions"], "description_weight": CHOSEN["description_weight"],
                "aliases": a}
        if name == "new: descriptions only":
            return base
        return {**base, "seen_labels": train, "conse_top": CHOSEN["conse_top"], "conse_keep": CHOSEN["conse_keep"],
                "conse_temperature": CHOSEN["conse_temperature"]}

    methods = ["default", *OLD, "new: descriptions only", "new: descriptions + ConSE (CHOSEN)"]
    cat = {n: concept(n)["category"] for n in held}
    res: dict = {"protocol": __doc__.strip(), "chosen": CHOSEN, "test": test_names, "images": len(paths),
                 "concepts": len(set(truth)), "methods": {}}
    for labels_name, labels in (("among_heldout", held), ("among_test", test_names)):
        chance = {"top1": round(1 / len(labels), 4), "top5": round(5 / len(labels), 4)}
        for m in methods:
            t1 = time.time()
            out = get_registry().call("image.classify", {"images": paths, "labels": labels, "clip": "demo",
                                                         "batch_size": 64, **options(m, labels)},
                                      ctx=Context(settings=settings))
            S = np.array([[r.scores[lab] for lab in labels] for r in out.results])
            row = {**ranks(S, labels, truth), "chance": chance, "seconds": round(time.time() - t1, 1)}
            if labels_name == "among_heldout":
                hit = np.array([labels[int(i)] == t for i, t in zip(S.argmax(1), truth, strict=True)])
                row["per_category"] = {c: {"n": int(sum(cat[t] == c for t in truth)),
                                           "top1": round(float(np.mean([h for h, t in zip(hit, truth, strict=True)
                                                                        if cat[t] == c])), 4)}
                                       for c in sorted({cat[t] for t in truth})}
                row["distinct_predictions"] = len({out.results[i].label for i in range(len(paths))})
            res["methods"].setdefault(m, {})[labels_name] = row
            log(f"{labels_name} {m}: {json.dumps({k: v for k, v in row.items() if k != 'per_category'})}")
    res["wall_s"] = round(time.time() - t0, 1)
    out = Path(args.out or REPO / "benchmarks" / "results" / "heldout_descriptions_test")
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out) + ".json").write_text(json.dumps(res, indent=1))
    lines = [f"# Held-out TEST half ({len(paths)} images, {len(set(truth))} concepts), one run", "",
             "| options | top-1 among 109 | top-5 among 109 | top-1 among 56 | top-5 among 56 |",
             "|---|---|---|---|---|"]
    for m in methods:
        a, b = res["methods"][m]["among_heldout"], res["methods"][m]["among_test"]
        lines.append(f"| {m} | {a['top1']:.1%} | {a['top5']:.1%} | {b['top1']:.1%} | {b['top5']:.1%} |")
    lines.append(f"| chance | {1 / 109:.2%} | {5 / 109:.2%} | {1 / 56:.2%} | {5 / 56:.2%} |")
    Path(str(out) + ".md").write_text("\n".join(lines) + "\n")
    log(f"done in {res['wall_s']} s -> {out}.json/.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "test"], required=True)
    ap.add_argument("--per-concept", type=int, default=6, help="DEV: images per DEV concept")
    ap.add_argument("--images", type=int, default=1090,
                    help="TEST: held-out image seeds k < IMAGES (concept k mod 109); only TEST-half concepts kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text-cache", default=str(Path.home() / ".cache" / "vltools" / "heldout_transfer_texts.npz"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return dev(args) if args.split == "dev" else test(args)


if __name__ == "__main__":
    raise SystemExit(main())
