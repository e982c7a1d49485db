"""Evaluate the demo CLIP on held-out data: ``python scripts/eval_demo_clip.py``.

Writes ``benchmarks/results/demo_clip_eval.json`` and ``.md``. Everything here is held out from
training: world scenes use seeds from EVAL_SEED_BASE (training uses TRAIN_SEED_BASE..+layouts),
easy-VQA uses its **test** split, "held-out phrasing" queries use templates never used in training
(`vocab.HELDOUT_TEMPLATES`) and synonym queries use words no training caption contains
(`vocab.HELDOUT_SYNONYMS`).

1. Zero-shot colour x shape classification of single-object world scenes (88 classes,
   prompt "a {colour} {shape}") and of easy-VQA test images (24 classes), top-1, vs chance.
2. Text -> image retrieval over held-out world scenes with each scene's own caption, in a
   training phrasing and in a held-out phrasing: Recall@1/@5 (a hit is any image whose caption is
   the query string), vs chance.
3. Synonym queries ("a crimson circle", "a red box", ...) over single-object scenes: how often
   the top-1 image is right (and precision@5), vs chance and vs the same query in the trained word.
4. Robustness: classification accuracy under each degradation at levels 1, 3 and 5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _encode_images(model, preprocess, images, batch: int = 128) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.stack([preprocess(im) for im in images[i : i + batch]])
            out.append(torch.nn.functional.normalize(model.encode_image(x).float(), dim=-1).numpy())
    return np.concatenate(out)


def _encode_texts(model, tokenizer, texts, batch: int = 256) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            out.append(torch.nn.functional.normalize(model.encode_text(tokenizer(texts[i : i + batch])).float(),
                                                     dim=-1).numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--single", type=int, default=880, help="held-out single-object scenes")
    ap.add_argument("--scenes", type=int, default=500, help="held-out scenes for retrieval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "demo_clip_eval"))
    ap.add_argument("--no-degradations", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no busy-waiting threads on a shared machine
    import torch
    from PIL import Image

    from vltools.models.clip_demo import load_demo
    from vltools.world import vocab
    from vltools.world.degrade import KINDS, degrade
    from vltools.world.scene import generate_scene
    from vltools.world.splits import EVAL_SEED_BASE, easy_vqa_labels

    torch.set_num_threads(args.threads)
    t0 = time.time()
    model, preprocess, tokenizer = load_demo("cpu")
    res: dict = {"protocol": __doc__.strip(), "model": "demo", "torch_threads": args.threads}

    # 1. classification ------------------------------------------------------------------------
    classes = [(c, s) for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]
    prompts = [vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s) for c, s in classes]
    T = _encode_texts(model, tokenizer, prompts)
    singles = [generate_scene(EVAL_SEED_BASE + k, single=True) for k in range(args.single)]
    truth = np.array([classes.index((sc.labels["objects"][0]["colour"], sc.labels["objects"][0]["shape"]))
                      for sc in singles])
    X = _encode_images(model, preprocess, [sc.image for sc in singles])
    pred = (X @ T.T).argmax(1)
    pc = [classes[i] for i in pred]
    tc = [classes[i] for i in truth]
    res["world_classification"] = {
        "n": len(singles), "classes": len(classes), "top1": float((pred == truth).mean()), "chance": 1 / len(classes),
        "colour_acc": float(np.mean([a[0] == b[0] for a, b in zip(pc, tc, strict=True)])),
        "shape_acc": float(np.mean([a[1] == b[1] for a, b in zip(pc, tc, strict=True)])),
        "per_shape_top1": {s: float(np.mean([p == t for p, t in zip(pc, tc, strict=True) if t[1] == s]))
                           for s in vocab.SHAPES},
        "per_size_top1": {z: float(np.mean([p == t for p, t, sc in zip(pc, tc, singles, strict=True)
                                            if sc.labels["objects"][0]["size"] == z])) for z in vocab.SIZES},
    }
    print(f"world classification top-1 {res['world_classification']['top1']:.3f}", file=sys.stderr)

    ev = easy_vqa_labels("test")
    eclasses = sorted({(c, s) for _, c, s in easy_vqa_labels("train")} | {(c, s) for _, c, s in ev})
    eT = _encode_texts(model, tokenizer, [vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s) for c, s in eclasses])
    eX = _encode_images(model, preprocess, [Image.open(p).convert("RGB") for p, _, _ in ev])
    etruth = np.array([eclasses.index((c, s)) for _, c, s in ev])
    epred = (eX @ eT.T).argmax(1)
    res["easy_vqa_test_classification"] = {
        "n": len(ev), "classes": len(eclasses), "top1": float((epred == etruth).mean()), "chance": 1 / len(eclasses),
        "colour_acc": float(np.mean([eclasses[p][0] == eclasses[t][0] for p, t in zip(epred, etruth, strict=True)])),
        "shape_acc": float(np.mean([eclasses[p][1] == eclasses[t][1] for p, t in zip(epred, etruth, strict=True)])),
        "note": f"{len(ev)} of 1000 test images have colour and shape recoverable from their Q/A pairs",
    }
    print(f"easy-VQA test top-1 {res['easy_vqa_test_classification']['top1']:.3f}", file=sys.stderr)

    # 2. retrieval --------------------------------------------------------------------------------
    scenes = [generate_scene(EVAL_SEED_BASE + 100_000 + k) for k in range(args.scenes)]
    S = _encode_images(model, preprocess, [sc.image for sc in scenes])
    retr = {}
    for name, pick in (("train_phrasing_full", lambda sc: sc.captions[0]),
                       ("heldout_phrasing_full", lambda sc: sc.heldout_captions[0]),
                       ("heldout_phrasing_no_position", lambda sc: sc.heldout_captions[1])):
        queries = [pick(sc) for sc in scenes]
        Q = _encode_texts(model, tokenizer, queries)
        ranks = np.argsort(-(Q @ S.T), axis=1)
        r1 = r5 = 0.0
        chance1 = []
        for qi, q in enumerate(queries):
            rel = {j for j, sc in enumerate(scenes) if pick(sc) == q}
            r1 += ranks[qi, 0] in rel
            r5 += bool(rel & set(ranks[qi, :5].tolist()))
            chance1.append(len(rel) / len(scenes))
        retr[name] = {"queries": len(queries), "gallery": len(scenes), "R@1": r1 / len(queries),
                      "R@5": r5 / len(queries), "chance_R@1": float(np.mean(chance1)),
                      "example": queries[0]}
    res["world_retrieval"] = retr
    print(f"retrieval {json.dumps({k: (v['R@1'], v['R@5']) for k, v in retr.items()})}", file=sys.stderr)

    # 3. synonyms -----------------------------------------------------------------------------------
    gallery = singles
    G = X
    syn = {}
    colours_syn = {w: v for w, v in vocab.HELDOUT_SYNONYMS.items() if v in vocab.COLOURS}
    shapes_syn = {w: v for w, v in vocab.HELDOUT_SYNONYMS.items() if v in vocab.SHAPES}
    for word, meaning in list(colours_syn.items()) + list(shapes_syn.items()):
        is_colour = meaning in vocab.COLOURS
        others = vocab.SHAPES if is_colour else vocab.COLOUR_NAMES
        hits1 = hits1_ref = p5 = 0.0
        chance = []
        n = 0
        for o in others:
            c, s = (meaning, o) if is_colour else (o, meaning)
            rel = {j for j, sc in enumerate(gallery)
                   if (sc.labels["objects"][0]["colour"], sc.labels["objects"][0]["shape"]) == (c, s)}
            if not rel:
                continue
            q = f"{vocab.article(word)} {word} {o}" if is_colour else f"{vocab.article(c)} {c} {word}"
            ref = vocab.CLASSIFY_TEMPLATE.format(colour=c, shape=s)
            qv, rv = _encode_texts(model, tokenizer, [q, ref])
            order = np.argsort(-(G @ qv))
            hits1 += order[0] in rel
            p5 += len(rel & set(order[:5].tolist())) / 5
            hits1_ref += np.argsort(-(G @ rv))[0] in rel
            chance.append(len(rel) / len(gallery))
            n += 1
        syn[word] = {"means": meaning, "queries": n, "top1_correct": hits1 / n, "precision@5": p5 / n,
                     "top1_with_trained_word": hits1_ref / n, "chance": float(np.mean(chance))}
    res["synonyms"] = syn
    allq = sum(v["queries"] for v in syn.values())
    res["synonyms_overall"] = {
        "queries": allq,
        "top1_correct": sum(v["top1_correct"] * v["queries"] for v in syn.values()) / allq,
        "top1_with_trained_word": sum(v["top1_with_trained_word"] * v["queries"] for v in syn.values()) / allq,
        "chance": sum(v["chance"] * v["queries"] for v in syn.values()) / allq,
    }
    print(f"synonyms {res['synonyms_overall']}", file=sys.stderr)

    # 4. degradations ------------------------------------------------------------------------------
    if not args.no_degradations:
        sub = singles[:176]
        deg = {}
        for kind in KINDS:
            deg[kind] = {}
            for lv in (1, 3, 5):
                D = _encode_images(model, preprocess, [degrade(sc.image, kind, lv, seed=sc.seed) for sc in sub])
                deg[kind][str(lv)] = float(((D @ T.T).argmax(1) == truth[: len(sub)]).mean())
        res["degradations"] = {"n": len(sub), "clean_top1": float((pred[: len(sub)] == truth[: len(sub)]).mean()),
                               "top1": deg}
    res["wall_s"] = round(time.time() - t0, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out) + ".json").write_text(json.dumps(res, indent=1))
    Path(str(out) + ".md").write_text(render_md(res))
    print(f"wrote {out}.json/.md in {res['wall_s']}s", file=sys.stderr)
    return 0


def render_md(r: dict) -> str:
    wc, ec = r["world_classification"], r["easy_vqa_test_classification"]
    lines = [
        "# Demo CLIP: held-out evaluation",
        "",
        "Produced by `python scripts/eval_demo_clip.py` (protocol in its docstring and in benchmarks/README.md).",
        "",
        "| zero-shot colour x shape | images | classes | top-1 | colour | shape | chance |",
        "|---|---|---|---|---|---|---|",
        f"| world, held-out single-object scenes | {wc['n']} | {wc['classes']} | {wc['top1']:.3f} | "
        f"{wc['colour_acc']:.3f} | {wc['shape_acc']:.3f} | {wc['chance']:.3f} |",
        f"| easy-VQA test split | {ec['n']} | {ec['classes']} | {ec['top1']:.3f} | {ec['colour_acc']:.3f} | "
        f"{ec['shape_acc']:.3f} | {ec['chance']:.3f} |",
        "",
        "World top-1 per shape: " + ", ".join(f"{k} {v:.2f}" for k, v in wc["per_shape_top1"].items())
        + "; per size: " + ", ".join(f"{k} {v:.2f}" for k, v in wc["per_size_top1"].items()),
        "",
        "| text -> image retrieval (held-out world scenes) | queries | gallery | R@1 | R@5 | chance R@1 | example |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, v in r["world_retrieval"].items():
        lines.append(f"| {k} | {v['queries']} | {v['gallery']} | {v['R@1']:.3f} | {v['R@5']:.3f} | "
                     f"{v['chance_R@1']:.4f} | {v['example']} |")
    so = r["synonyms_overall"]
    lines += [
        "",
        f"Synonyms never used in training ({so['queries']} queries over {wc['n']} single-object scenes): top-1 "
        f"correct {so['top1_correct']:.3f} vs chance {so['chance']:.3f} (same queries in the trained word: "
        f"{so['top1_with_trained_word']:.3f}).",
        "",
        "| word | means | queries | top-1 correct | precision@5 | trained word top-1 | chance |",
        "|---|---|---|---|---|---|---|",
    ]
    for w, v in r["synonyms"].items():
        lines.append(f"| {w} | {v['means']} | {v['queries']} | {v['top1_correct']:.2f} | {v['precision@5']:.2f} | "
                     f"{v['top1_with_trained_word']:.2f} | {v['chance']:.3f} |")
    if "degradations" in r:
        d = r["degradations"]
        lines += ["", f"Robustness ({d['n']} single-object scenes, clean top-1 {d['clean_top1']:.3f}):", "",
                  "| degradation | level 1 | level 3 | level 5 |", "|---|---|---|---|"]
        for k, v in d["top1"].items():
            lines.append(f"| {k} | {v['1']:.3f} | {v['3']:.3f} | {v['5']:.3f} |")
    lines += ["", f"Wall time {r['wall_s']} s on {r['torch_threads']} torch threads (CPU).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
