"""CLIP scoring for zero-shot VQA (P01, MacCap): subregion feature aggregation and noise-robust
probabilities, plus per-frame temporal reasoning for videos. Used by `vqa.zero_shot` only.

Subregion aggregation: an image is encoded whole and as nine overlapping half-size crops. For each
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


def region_features(clip: Any, image: Any, key: tuple | None) -> np.ndarray:
    """(len(BOXES), dim) features of the whole image and its crops, cached by ``key``."""
    if key is not None:
        with _LOCK:
            if (clip.spec, *key) in _FEATS:
                return _FEATS[(clip.spec, *key)]
    w, h = image.size
    crops = [image] + [
        image.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))) for x0, y0, x1, y1 in BOXES[1:]
    ]
    feats = clip.encode_images(crops)
    if key is not None:
        with _LOCK:
            _FEATS[(clip.spec, *key)] = feats
            while len(_FEATS) > 512:
                _FEATS.popitem(last=False)
    return feats


def text_features(clip: Any, texts: list[str]) -> np.ndarray:
    """Normalised text features, cached per (model, text)."""
    found = {t: _TEXTS.get((clip.spec, t)) for t in dict.fromkeys(texts)}
    missing = [t for t, v in found.items() if v is None]
    if missing:
        emb, _ = clip.encode_texts(missing)
        for t, e in zip(missing, emb, strict=True):
            found[t] = e
            _TEXTS.put((clip.spec, t), e)
    return np.stack([found[t] for t in texts])


class Scored:
    """Scores of m statements against one image: probabilities, raw similarities, region weights."""

    def __init__(self, probs: np.ndarray, sims: np.ndarray, weights: np.ndarray, crop_sims: np.ndarray):
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
        centres = np.array([((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in BOXES[1:]])
        c = (w[:, None] * centres).sum(0)
        return float(c[0]), float(c[1])

    def regions(self, j: int, top: int = 4) -> list[dict[str, Any]]:
        order = np.argsort(-self.weights[j])
        return [
            {"box": list(BOXES[r]), "weight": round(float(self.weights[j, r]), 4)}
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
        noisy = agg[None, :, :] + eps[:, None, :]  # (K, m, dim)
        noisy /= np.linalg.norm(noisy, axis=2, keepdims=True)
        logits = logit_scale * (noisy * texts[None]).sum(2)  # (K, m)
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        probs = p.mean(0)
    else:
        z = logit_scale * sims
        p = np.exp(z - z.max())
        probs = p / p.sum()
    return Scored(probs.astype(np.float64), sims.astype(np.float64), weights, sims_all[1:].T.copy())


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
    return Scored(np.asarray(probs), np.asarray(sims), np.stack(weights), np.stack(crops))


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
