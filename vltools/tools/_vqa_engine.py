"""CLIP scoring for zero-shot VQA (P01, MacCap): subregion feature aggregation and noise-robust
probabilities, plus per-frame temporal reasoning for videos. Used by `vqa.zero_shot` and
`caption.zero_shot`.

Subregion aggregation: an image is encoded whole and, where the model has dense features
(`ClipBackend.encode_dense`: ViTs, attention-pooled ResNets such as the `demo` CLIP), as its grid of
dense cells; otherwise as nine overlapping half-size crops. For each
statement, the crops whose features are closer to the statement than the whole image's are
aggregated (softmax-weighted) with the whole-image feature; the statement is scored against that
compact feature (MacCap's finding: subregions sit closer to the paired text than the whole image).

Noise-robust scoring: MacCap models the image-text modality gap as zero-mean Gaussian noise. The
probability of each statement is the mean softmax over K draws of Gaussian noise added to the
aggregated visual features (common random numbers across statements), which smooths the
over-confident single-point softmax.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from vltools.core.cache import LRUCache

# Whole image, then 3x3 overlapping crops of half the side at strides of a quarter.
_OFFS = (0.0, 0.25, 0.5)
BOXES: list[tuple[float, float, float, float]] = [(0.0, 0.0, 1.0, 1.0)] + [
    (x, y, x + 0.5, y + 0.5) for y in _OFFS for x in _OFFS
]
NOISE_DRAWS = 32
REGION_TEMPERATURE = 50.0
LOCATION_TEMPERATURE = 100.0

_FEATS: OrderedDict[tuple, np.ndarray] = OrderedDict()
_TEXTS: LRUCache[tuple[str, str], np.ndarray] = LRUCache(maxsize=20_000)  # ~30 MB at 384-d
_LOCK = threading.Lock()


class Regions(np.ndarray):
    """Region features (R, dim): row 0 the whole image; ``.boxes`` the R boxes; ``.kind`` dense|crops."""

    boxes: list[tuple[float, float, float, float]]
    kind: str


def _as_regions(feats: np.ndarray, boxes: list, kind: str) -> Regions:
    r = np.asarray(feats, dtype=np.float32).view(Regions)
    r.boxes, r.kind = boxes, kind
    return r


def dense_boxes(gh: int, gw: int) -> list[tuple[float, float, float, float]]:
    return [(c / gw, r / gh, (c + 1) / gw, (r + 1) / gh) for r in range(gh) for c in range(gw)]


def region_features(clip: Any, image: Any, key: tuple | None, *, dense: bool = True) -> Regions:
    """Features of the whole image then of its regions (dense cells when the model has them, else crops),
    cached by ``key``."""
    ck = (clip.spec, dense, *key) if key is not None else None
    if ck is not None:
        with _LOCK:
            if ck in _FEATS:
                return _FEATS[ck]
    out: Regions | None = None
    if dense and getattr(clip, "encode_dense", None) is not None:
        from vltools.core.errors import InvalidInput

        try:
            grid = clip.encode_dense([image])[0]
            whole = clip.encode_images([image])
            gh, gw = grid.shape[:2]
            if gh * gw >= 4:
                out = _as_regions(np.concatenate([whole, grid.reshape(gh * gw, -1)]),
                                  [BOXES[0], *dense_boxes(gh, gw)], "dense")
        except (InvalidInput, NotImplementedError, AttributeError):
            out = None
    if out is None:
        w, h = image.size
        crops = [image] + [
            image.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))) for x0, y0, x1, y1 in BOXES[1:]
        ]
        out = _as_regions(clip.encode_images(crops), list(BOXES), "crops")
    if ck is not None:
        with _LOCK:
            _FEATS[ck] = out
            while len(_FEATS) > 512:
                _FEATS.popitem(last=False)
    return out


def _disk_cache_file(spec: str, cache_dir: Any) -> Any:
    """Where the text features of an embedded demo CLIP persist (its weights never change in place:
    the file name carries the weights file's size and mtime); None for other models."""
    if cache_dir is None or spec not in ("demo", "demo-shapes"):
        return None
    from pathlib import Path

    from vltools.models import clip_demo, clip_demo_v2

    w = Path(str(clip_demo_v2.weights_path() if spec == "demo" else clip_demo.weights_resource()))
    if not w.is_file():
        return None
    st = w.stat()
    return Path(cache_dir) / f"text_features_{spec}_{st.st_size}_{st.st_mtime_ns}.npz"


_DISK_LOADED: set[str] = set()


def text_features(clip: Any, texts: list[str], cache_dir: Any = None) -> np.ndarray:
    """Normalised text features, cached per (model, text) in memory and, for the demo CLIPs, on disk."""
    disk = _disk_cache_file(clip.spec, cache_dir)
    if disk is not None and str(disk) not in _DISK_LOADED:
        _DISK_LOADED.add(str(disk))
        if disk.is_file():
            try:
                z = np.load(disk, allow_pickle=False)
                for t, v in zip(z["texts"].tolist(), z["vecs"], strict=True):
                    _TEXTS.put((clip.spec, t), v)
            except (OSError, ValueError, KeyError):
                pass
    found = {t: _TEXTS.get((clip.spec, t)) for t in dict.fromkeys(texts)}
    missing = [t for t, v in found.items() if v is None]
    if missing:
        emb, _ = clip.encode_texts(missing)
        for t, e in zip(missing, emb, strict=True):
            found[t] = e
            _TEXTS.put((clip.spec, t), e)
        if disk is not None and len(missing) >= 16:
            _save_disk(disk, clip.spec, dict(zip(missing, emb, strict=True)))
    return np.stack([found[t] for t in texts])


def _save_disk(disk: Any, spec: str, new: dict[str, np.ndarray]) -> None:
    import os

    store: dict[str, np.ndarray] = {}
    try:
        if disk.is_file():
            z = np.load(disk, allow_pickle=False)
            store = dict(zip(z["texts"].tolist(), z["vecs"], strict=True))
    except (OSError, ValueError, KeyError):
        store = {}
    store.update(new)
    if len(store) > 50_000:
        return
    try:
        disk.parent.mkdir(parents=True, exist_ok=True)
        tmp = disk.with_name(f"{disk.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, texts=np.array(list(store)), vecs=np.stack(list(store.values())).astype(np.float32))
        os.replace(tmp, disk)
    except OSError:
        pass  # a cache that cannot be written only costs time


class Scored:
    """Scores of m statements against one image: probabilities, raw similarities, region weights."""

    def __init__(self, probs: np.ndarray, sims: np.ndarray, weights: np.ndarray, crop_sims: np.ndarray,
                 boxes: list | None = None):
        self.boxes = boxes if boxes is not None else list(BOXES)
        self.probs = probs  # (m,) noise-robust softmax probabilities
        self.sims = sims  # (m,) cosine similarity of each statement to its aggregated feature
        self.weights = weights  # (m, R) weight of each region in each statement's aggregate (whole = col 0)
        self.crop_sims = crop_sims  # (m, R-1) similarity of each statement to each crop

    def location(self, j: int) -> tuple[float, float]:
        """Where statement j is: the centre of the crops, weighted by a softmax of their similarity to it
        (image fractions; the centre when there are no crops)."""
        if self.crop_sims.shape[1] == 0:
            return 0.5, 0.5
        z = self.crop_sims[j] * LOCATION_TEMPERATURE
        w = np.exp(z - z.max())
        w /= w.sum()
        centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in self.boxes[1:]])
        c = (w[:, None] * centres).sum(0)
        return float(c[0]), float(c[1])

    def regions(self, j: int, top: int = 4) -> list[dict[str, Any]]:
        order = np.argsort(-self.weights[j])
        return [
            {"box": list(self.boxes[r]), "weight": round(float(self.weights[j, r]), 4)}
            for r in order[:top]
            if self.weights[j, r] > 1e-4
        ]


def score_statements(
    feats: np.ndarray, texts: np.ndarray, *, logit_scale: float, use_regions: bool = True, noise: float = 0.3,
    seed: int = 0,
) -> Scored:
    """Score statements (m, dim) against region features (R, dim) — see the module docstring."""
    sims_all = feats @ texts.T  # (R, m)
    m = texts.shape[0]
    weights = np.zeros((m, feats.shape[0]), dtype=np.float32)
    weights[:, 0] = 1.0
    agg = np.repeat(feats[:1], m, axis=0)
    if use_regions and feats.shape[0] > 1:
        closer = sims_all[1:] > sims_all[:1]  # (R-1, m): crops closer to the statement than the whole image
        has = closer.any(0)
        z = np.where(closer, sims_all[1:] * REGION_TEMPERATURE, -np.inf)
        z = z - np.where(has, z.max(0), 0.0)
        w = np.where(closer, np.exp(z), 0.0)
        w = w / np.where(has, w.sum(0), 1.0)  # (R-1, m), columns sum to 1 where any crop is closer
        a = feats[0][None, :] + w.T @ feats[1:]
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        agg = np.where(has[:, None], a, agg)
        weights[has, 0] = 0.5
        weights[:, 1:] = np.where(has[:, None], 0.5 * w.T, 0.0)
    sims = (agg * texts).sum(1)
    if noise > 0:
        rng = np.random.default_rng(seed)
        dim = feats.shape[1]
        eps = rng.standard_normal((NOISE_DRAWS, dim)).astype(np.float32) * (noise / np.sqrt(dim))
        # cos(agg_m + eps_k, t_m) for every draw k and statement m, without the (K, m, dim) tensor:
        # (a.t + e.t) / sqrt(|a|^2 + 2 a.e + |e|^2), all terms from matrix products.
        at = (agg * texts).sum(1)  # (m,)
        et = eps @ texts.T  # (K, m)
        ea = eps @ agg.T  # (K, m)
        sq = (agg * agg).sum(1)[None, :] + 2.0 * ea + (eps * eps).sum(1)[:, None]
        logits = logit_scale * (at[None, :] + et) / np.sqrt(np.maximum(sq, 1e-12))  # (K, m)
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        probs = p.mean(0)
    else:
        z = logit_scale * sims
        p = np.exp(z - z.max())
        probs = p / p.sum()
    boxes = getattr(feats, "boxes", None)
    return Scored(probs.astype(np.float64), sims.astype(np.float64), weights, sims_all[1:].T.copy(),
                  boxes if boxes is not None and len(boxes) == feats.shape[0] else None)


def group(scored: Scored, sizes: list[int]) -> Scored:
    """Sum statement probabilities into groups (an answer and its variants over unnamed attributes);
    each group keeps the similarity and region weights of its best statement."""
    probs, sims, weights, crops = [], [], [], []
    start = 0
    for n in sizes:
        part = slice(start, start + n)
        best = start + int(np.argmax(scored.probs[part]))
        probs.append(float(scored.probs[part].sum()))
        sims.append(float(scored.sims[best]))
        weights.append(scored.weights[best])
        crops.append(scored.crop_sims[best])
        start += n
    return Scored(np.asarray(probs), np.asarray(sims), np.stack(weights), np.stack(crops), scored.boxes)


PRESENCE_LEVEL = 0.7  # "present" when P(asserted) >= 0.7 x chance (chance = 1 / number of alternatives)


def presence(probs: np.ndarray, level: float = PRESENCE_LEVEL) -> float:
    """P(yes) that the asserted statement (index 0) holds somewhere in the image: 0.5 when its
    probability among its alternatives is ``level`` times chance, rising with the log-ratio.

    Unlike a comparison with the best alternative this stays high when several objects are present
    (a red circle and a blue circle both make "a circle" likely)."""
    chance = 1.0 / len(probs)
    ratio = max(float(probs[0]), 1e-9) / (level * chance)
    return sigmoid(4.0 * float(np.log(ratio)))


def assert_ratio(probs: np.ndarray) -> float:
    """P(asserted statement, index 0) against its strongest alternative: p0 / (p0 + max rest); 0.5 = tie."""
    if len(probs) < 2:
        return float(probs[0])
    p0, rest = float(probs[0]), float(np.max(probs[1:]))
    return p0 / (p0 + rest) if p0 + rest > 0 else 0.5


def trend(values: list[float], times: list[float]) -> float:
    """Least-squares change of ``values`` over the span of ``times`` (slope x span)."""
    if len(values) < 2:
        return 0.0
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if np.ptp(t) <= 0:
        t = np.arange(len(v), dtype=np.float64)
    slope = np.polyfit(t, v, 1)[0]
    return float(slope * np.ptp(t))


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def ends(values: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last third of a sequence."""
    k = max(1, len(values) // 3)
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))


# -- vocabularies of a model's declared world -----------------------------------------------------
class World:
    """What a model's training world declares: its nouns, attribute classes and noun categories, and which nouns
    it was trained on (``seen``, what a model card would list as its training vocabulary; None: all of them)."""

    def __init__(self, nouns: list[str], attributes: dict[str, list[str]], categories: dict[str, list[str]],
                 seen: list[str] | None = None, proposals: str = "superpixels"):
        self.nouns = list(dict.fromkeys(nouns))
        self.attributes = attributes
        self.categories = categories
        self.seen = None if seen is None else [n for n in self.nouns if n in set(seen)]
        self.proposals = proposals  # the object-proposal method (`_objects.regions`) its images call for

    def unseen(self) -> list[str]:
        """The declared nouns the model was not trained on ([] when every noun is seen or nothing is declared)."""
        if self.seen is None:
            return []
        seen = set(self.seen)
        return [n for n in self.nouns if n not in seen]

    def is_unseen(self, noun: str) -> bool:
        """True for a noun outside the training vocabulary (a declared held-out noun, or one the world lacks, other
        than a category name such as 'animal'), when the world declares that vocabulary."""
        if self.seen is None or noun in self.seen:
            return False
        return noun in self.nouns or (noun not in self.categories and noun.rstrip("s") not in self.categories)

    def attribute_class(self, word: str) -> str | None:
        return next((k for k, vals in self.attributes.items() if word in vals), None)

    def nouns_for(self, asked: str | None) -> list[str]:
        """Nouns answering 'which ASKED': a category's members, or every noun."""
        if asked and asked in self.categories:
            return self.categories[asked]
        if asked and asked.endswith("s") and asked[:-1] in self.categories:
            return self.categories[asked[:-1]]
        return self.nouns


_WORLDS: dict[str, World | None] = {}


def declared_world(spec: str) -> World | None:
    """The world the embedded demo CLIPs were trained on (`vltools.world`); None for any other model."""
    if spec not in ("demo", "demo-shapes"):
        return None
    if spec not in _WORLDS:
        from vltools.world import vocab

        attrs = {"colour": list(vocab.COLOUR_NAMES), "size": list(vocab.SIZES)}
        shapes = list(vocab.SHAPES)
        if spec == "demo-shapes":
            _WORLDS[spec] = World(shapes, attrs, {"shape": shapes})
        else:
            from vltools.world import concepts

            table = concepts()
            cats: dict[str, list[str]] = {"shape": shapes}
            for c in table:
                cats.setdefault(c["category"], []).append(c["name"])
                cats.setdefault(c["subcategory"], []).append(c["name"])
            seen = [c["name"] for c in table if c["split"] == "train"] + shapes  # its training vocabulary
            # its images are world v2 scenes: the learned object proposals were trained on them
            _WORLDS[spec] = World([c["name"] for c in table] + shapes, attrs, cats, seen=seen, proposals="learned")
    return _WORLDS[spec]
