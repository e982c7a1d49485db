"""Scoring modes of `video.search` on stored per-frame CLIP features (no video is re-encoded unless
UCoFiA's patch level asks for dense features of the coarse stage's top candidates).

- ``mean``: cosine of the mean-pooled video vector (ViFi-CLIP, P28) - the baseline.
- ``tempme`` (P21): neighbouring frames whose features are redundant are merged progressively
  (adjacent pairs above a cosine threshold, averaged, repeated) into fewer clip features; the score
  blends the pooled cosine with the best merged clip.
- ``ucofia`` (P34): video-sentence, frame-sentence (interactive similarity aggregation: a softmax over
  the frames' similarities) and patch-word (dense cells vs the query's content words) levels, each
  normalised across the candidates before summing (Sinkhorn; one query per call leaves its row step,
  a softmax over the gallery).
- ``glscl`` (P45): global cosine plus a parameter-free local term: K latent concepts per video
  (k-means of its frames) matched to the query's words (each word's best concept), averaged.
- ``prompt_switch`` (P31): text-independent frame features with the video's global semantics switched
  into each frame (frame + video mean, renormalised), computed once per video and reused for every
  query; the score is the mean of the top frames' cosines - no per-query video computation.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from vltools.tools.video._frames import normalise, sinkhorn

Mode = Literal["mean", "tempme", "ucofia", "glscl", "prompt_switch"]
MODES: tuple[str, ...] = ("mean", "tempme", "ucofia", "glscl", "prompt_switch")

# Function words skipped when a query is split into words for the word-level matches.
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for from with and or but is are was were be been being it its this that these "
    "those there then than into onto as some any all each one two video clip shows showing "
    "where which who whom what when while".split()
)


def content_words(query: str, limit: int = 8) -> list[str]:
    """The query's words that are not function words, in order, deduplicated (at most ``limit``)."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", query.lower()) if w not in _FUNCTION_WORDS]
    return list(dict.fromkeys(words))[:limit]


def tempme_merge(frames: np.ndarray, threshold: float = 0.9, levels: int = 3) -> np.ndarray:
    """Progressive temporal merging: at each level adjacent features with cosine >= threshold are
    averaged (weighted by how many frames each already holds); returns the merged, normalised features."""
    feats = [f.astype(np.float32) for f in frames]
    weights = [1.0] * len(feats)
    for _ in range(levels):
        if len(feats) < 2:
            break
        out, out_w = [], []
        i = 0
        merged = False
        while i < len(feats):
            if i + 1 < len(feats) and float(normalise(feats[i]) @ normalise(feats[i + 1])) >= threshold:
                w = weights[i] + weights[i + 1]
                out.append((feats[i] * weights[i] + feats[i + 1] * weights[i + 1]) / w)
                out_w.append(w)
                i += 2
                merged = True
            else:
                out.append(feats[i])
                out_w.append(weights[i])
                i += 1
        feats, weights = out, out_w
        if not merged:
            break
    return normalise(np.stack(feats))


def kmeans_concepts(frames: np.ndarray, k: int = 4, iters: int = 8) -> np.ndarray:
    """K latent concepts of a video: k-means (cosine) of its frame features, deterministic init."""
    k = min(k, len(frames))
    idx = np.linspace(0, len(frames) - 1, k).round().astype(int)
    cent = frames[idx].copy()
    for _ in range(iters):
        assign = (frames @ cent.T).argmax(1)
        for j in range(k):
            if (assign == j).any():
                cent[j] = frames[assign == j].mean(0)
        cent = normalise(cent)
    return cent


def prompt_switch_features(frames: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Frame features with the video's global semantics added (query-independent, computed once)."""
    g = normalise(frames.mean(0))
    return normalise(frames + alpha * g)


def features_per_video(mode: str, frames: np.ndarray) -> int:
    """How many vectors a mode matches a query against per video (its index-side cost)."""
    if mode == "mean":
        return 1
    if mode == "tempme":
        return 1 + len(tempme_merge(frames))
    if mode == "glscl":
        return 1 + len(kmeans_concepts(frames))
    return len(frames) + (1 if mode == "ucofia" else 0)


def isa(sims: np.ndarray, temperature: float = 0.05) -> np.ndarray:
    """Interactive similarity aggregation over the last axis: softmax-weighted mean of the similarities."""
    w = np.exp((sims - sims.max(-1, keepdims=True)) / temperature)
    return (w * sims).sum(-1) / w.sum(-1)


def score_candidates(
    mode: str,
    texts: np.ndarray,
    frames: list[np.ndarray],
    dense: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Scores (one per candidate) of the query ``texts[0]`` (``texts[1:]``: its content words).

    ``frames[i]``: (n_frames, dim) stored features of candidate i; ``dense[i]``: (cells, dim) for ucofia.
    """
    q = texts[0]
    pooled = normalise(np.stack([f.mean(0) for f in frames]))
    if mode == "mean":
        return pooled @ q
    if mode == "tempme":
        out = []
        for p, f in zip(pooled, frames, strict=True):
            merged = tempme_merge(f)
            out.append(0.5 * float(p @ q) + 0.5 * float((merged @ q).max()))
        return np.asarray(out)
    if mode == "prompt_switch":
        out = []
        for f in frames:
            s = np.sort(prompt_switch_features(f) @ q)[::-1]
            out.append(float(s[: max(1, len(s) // 4)].mean()))
        return np.asarray(out)
    words = texts[1:] if len(texts) > 1 else texts[:1]
    if mode == "glscl":
        out = []
        for p, f in zip(pooled, frames, strict=True):
            cent = kmeans_concepts(f)
            local = float((words @ cent.T).max(1).mean())
            out.append(float(p @ q) + 0.5 * local)
        return np.asarray(out)
    if mode == "ucofia":
        lv1 = (pooled @ q)[None]  # video-sentence
        lv2 = np.asarray([isa(f @ q) for f in frames])[None]  # frame-sentence (ISA over frames)
        levels = [lv1, lv2]
        if dense is not None:  # patch-word: each word's ISA over the cells, averaged over the words
            levels.append(np.asarray([isa(words @ d.T).mean() for d in dense])[None])
        return sum(sinkhorn(m)[0] for m in levels)
    raise ValueError(f"unknown mode {mode}")
