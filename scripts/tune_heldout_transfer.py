"""Tune held-out transfer options of image.classify on the DEV half: ``python scripts/tune_heldout_transfer.py``.

The 109 held-out concepts are split once into a DEV and a TEST half (`heldout_halves`: related groups
such as "cat" / "cat face" stay together; seeded). This script only ever looks at DEV concepts (and
at train concepts, for the cost on them), on its own images (seeds TUNE_SEED_BASE + k: neither the
training seeds, 20,000,000+, nor the evaluation seeds, 29,000,000+). It compares `image.classify`
options, all of which any user can pass for any CLIP:

- ``descriptions`` built from the concept table's hypernyms ("tiger, a mammal"; "tiger, a kind of
  mammal"; "tiger, an animal"; both), at the tool's half-and-half weight;
- ``aliases`` (the table's alternative names and plural: a synonym prompt ensemble);
- centring the candidate text embeddings (subtract a fraction of their mean, renormalise);
- ``seen_labels`` = the train concepts with ``seen_margin`` (calibrated stacking), for the 707-way case,
  chosen by the harmonic mean of held-out (DEV) and train top-1 among all 707 concepts (the usual
  generalised zero-shot criterion).

Writes benchmarks/results/heldout_transfer_dev.json; `scripts/eval_demo_clip_v2.py` applies the chosen
options (`CHOSEN` below, copied by hand from this script's output) to the TEST half.
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
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TUNE_SEED_BASE = 31_000_000
SPLIT_SEED = 1010
TEMPLATES = ["{}", "a photo of a {}.", "an image of a {}."]  # image.classify's DEFAULT_TEMPLATES
DESCRIPTIONS = {
    "subcategory": lambda r: [f"{_art(r['subcategory'])}"],
    "category": lambda r: [f"{_art(r['category'])}"],
    "kind of subcategory + category": lambda r: [f"a kind of {r['subcategory']}", _art(r["category"])],
    "subcategory, category": lambda r: [f"{_art(r['subcategory'])}, {_art(r['category'])}"],
}
# What the DEV half chose (see the json this script writes); the evaluation applies it to the TEST half.
CHOSEN = {"descriptions": "subcategory, category", "aliases": 3, "seen_margin": 0.07}


def _art(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def heldout_halves() -> tuple[list[str], list[str]]:
    """(DEV, TEST) held-out concept names: related groups shuffled with a fixed seed, first half DEV."""
    from vltools.world.concept_table import concepts

    held = concepts("heldout")
    groups = sorted({json.dumps(sorted([r["name"], *r["related"]])) for r in held})
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(groups))
    dev: set[str] = set()
    for gi in perm[: len(groups) // 2]:
        dev |= set(json.loads(groups[gi]))
    return [r["name"] for r in held if r["name"] in dev], [r["name"] for r in held if r["name"] not in dev]


def options_for(names: list[str], desc: str | None, n_aliases: int) -> tuple[dict | None, dict | None]:
    """(descriptions, aliases) arguments of image.classify for ``names`` from the concepts table."""
    from vltools.world.concept_table import concept

    rows = {n: concept(n) for n in names}
    d = {n: DESCRIPTIONS[desc](r) for n, r in rows.items()} if desc else None
    a = {n: r["aliases"][:n_aliases] for n, r in rows.items() if r["aliases"][:n_aliases]} if n_aliases else None
    return d, a


class TextCache:
    """A CLIP backend stand-in whose text embeddings are cached on disk (the demo text tower is locked)."""

    def __init__(self, backend, path: Path) -> None:
        self.backend, self.path, self.cache = backend, path, {}
        if path.is_file():
            z = np.load(path, allow_pickle=False)
            self.cache = dict(zip(z["texts"].tolist(), z["vecs"], strict=True))

    def encode_texts_detailed(self, texts, long_text="stretch"):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            emb, _ = self.backend.encode_texts_detailed(missing, long_text=long_text)
            self.cache.update(zip(missing, emb, strict=True))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(self.cache)
            np.savez(self.path, texts=np.array(keys), vecs=np.stack([self.cache[k] for k in keys]).astype(np.float32))
        return np.stack([self.cache[t] for t in texts]), [None] * len(texts)

    def fit_notices(self, texts, notes, what="text"):
        return []


def predict(X, labels, texts, desc=None, n_aliases=0, center=0.0, seen=None, margin=0.0):
    """image.classify's decision (its class_embeddings, cosine, minus the seen margin), optionally centred."""
    from vltools.tools.image import class_embeddings

    d, a = options_for(labels, desc, n_aliases)
    C, _ = class_embeddings(texts, labels, TEMPLATES, d, "stretch", a)
    if center:
        C = C - center * C.mean(0)
        C /= np.linalg.norm(C, axis=1, keepdims=True)
    m = np.array([margin if seen and lab in seen else 0.0 for lab in labels], dtype=np.float32)
    return [labels[int(j)] for j in (X @ C.T - m).argmax(1)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-concept", type=int, default=6, help="images per DEV concept")
    ap.add_argument("--train-images", type=int, default=300, help="train-concept images (cost on train concepts)")
    ap.add_argument("--weights", default=None, help="v2 weights to tune for (default: the committed ones)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text-cache", default=str(Path.home() / ".cache" / "vltools" / "heldout_transfer_texts.npz"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "heldout_transfer_dev.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from vltools.models import clip_demo_v2
    from vltools.models.clip._encode import ClipBackend
    from vltools.world.concept_table import concepts
    from vltools.world.objects import generate_object_scene

    torch.set_num_threads(args.threads)
    t0 = time.time()
    backend = ClipBackend("demo", *clip_demo_v2.load("cpu", args.weights), "cpu")
    texts = TextCache(backend, Path(args.text_cache))
    dev, test = heldout_halves()
    train = [r["name"] for r in concepts("train")]
    allc = [r["name"] for r in concepts()]
    held = dev + test
    imgs, truth = [], []
    for k in range(args.per_concept):
        for i, name in enumerate(dev):
            imgs.append(generate_object_scene(TUNE_SEED_BASE + k * 1000 + i, concept_names=[name]).image)
            truth.append(name)
    pick = np.random.default_rng(3).choice(len(train), args.train_images, replace=False)
    for j, i in enumerate(pick):
        imgs.append(generate_object_scene(TUNE_SEED_BASE + 500_000 + j, concept_names=[train[i]]).image)
        truth.append(train[i])
    X = backend.encode_images(imgs)
    is_dev = np.array([t in set(dev) for t in truth])
    Xd, td = X[is_dev], [t for t, f in zip(truth, is_dev, strict=True) if f]
    Xt, tt = X[~is_dev], [t for t, f in zip(truth, is_dev, strict=True) if not f]

    def acc(pred, tr):
        return round(float(np.mean([p == t for p, t in zip(pred, tr, strict=True)])), 4)

    rows = []
    configs = [("default", {})]
    configs += [(f"center {c}", {"center": c}) for c in (0.5, 1.0)]
    configs += [(f"descriptions: {d}", {"desc": d}) for d in DESCRIPTIONS]
    configs += [("aliases", {"n_aliases": 3})]
    configs += [(f"descriptions: {d} + aliases", {"desc": d, "n_aliases": 3}) for d in DESCRIPTIONS]
    for name, kw in configs:
        r = {"method": name, "dev_among_dev": acc(predict(Xd, dev, texts, **kw), td),
             "dev_among_heldout": acc(predict(Xd, held, texts, **kw), td),
             "dev_among_all": acc(predict(Xd, allc, texts, **kw), td),
             "train_among_all": acc(predict(Xt, allc, texts, **kw), tt)}
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    best = max(rows, key=lambda r: (r["dev_among_heldout"] + r["dev_among_dev"], r["train_among_all"]))
    kw = dict(next(k for n, k in configs if n == best["method"]))
    margins = []
    for m in np.round(np.arange(0.0, 0.16, 0.01), 2):
        h = acc(predict(Xd, allc, texts, seen=set(train), margin=float(m), **kw), td)
        s = acc(predict(Xt, allc, texts, seen=set(train), margin=float(m), **kw), tt)
        margins.append({"seen_margin": float(m), "dev_among_all": h, "train_among_all": s,
                        "harmonic": round(2 * h * s / max(h + s, 1e-9), 4)})
        print(json.dumps(margins[-1]), file=sys.stderr, flush=True)
    best_m = max(margins, key=lambda r: r["harmonic"])
    res = {"protocol": __doc__.strip(), "dev": dev, "test": test, "dev_images": int(is_dev.sum()),
           "train_images": int((~is_dev).sum()), "weights": args.weights or "committed",
           "methods": rows, "best_method": best["method"], "margins_with_best_method": margins,
           "best_margin": best_m["seen_margin"], "wall_s": round(time.time() - t0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"best method {best['method']}; best seen_margin {best_m['seen_margin']} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
