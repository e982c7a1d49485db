"""Frame features shared by the video tools: sampled frames encoded by CLIP at two granularities
(the pooled embedding and, where the image tower gives them, its dense grid cells), in bounded
batches with progress, plus the small numeric helpers the modes share (pooling, Sinkhorn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vltools.core import Context
from vltools.core.errors import InvalidInput


@dataclass
class FrameFeatures:
    """CLIP features of a video's sampled frames."""

    path: str
    times: list[float]  # seconds, one per frame
    glob: np.ndarray  # (n, dim) pooled embeddings, L2-normalised
    dense: np.ndarray | None  # (n, cells, dim) dense cell features, L2-normalised, or None
    duration: float
    fps: float
    notice: str | None
    has_audio: bool = False


def encode_video(
    path: str,
    ctx: Context,
    backend: Any,
    *,
    fps: float | None = None,
    frames: int | None = None,
    max_frames: int = 128,
    dense: bool = True,
    note: str = "frames",
    window: tuple[float, float] | None = None,
) -> FrameFeatures:
    """Sample (at ``fps`` or ``frames`` uniformly, never more than ``max_frames``; only inside ``window``
    (start, end seconds) when given, reached by seeking) and encode a video."""
    from vltools.models.video import probe_video, sample_frames

    info = probe_video(path, ctx.settings)
    if window is not None:
        lo, hi = max(0.0, window[0]), min(window[1], info.duration)
        count = max(2, int((hi - lo) * (fps or 4.0)) + 1) if fps else max(2, frames or 8)
        stamps = [lo + (hi - lo) * i / (count - 1) for i in range(count)] if hi > lo else [lo]
        images, times, notice = sample_frames(path, ctx.settings, timestamps=stamps, max_frames=max_frames,
                                              max_side=256)
    else:
        images, times, notice = sample_frames(
            path, ctx.settings, n=None if fps else (frames or 8), fps=fps, max_frames=max_frames, max_side=256
        )
    glob = np.zeros((len(images), backend.dim), dtype=np.float32)
    cells: list[np.ndarray] | None = [] if dense and hasattr(backend, "encode_dense") else None
    step = 32
    name = info.path.rsplit("/", 1)[-1]
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        glob[start : start + len(chunk)] = backend.encode_images(chunk)
        if cells is not None:
            try:
                d = backend.encode_dense(chunk)
                cells.append(d.reshape(d.shape[0], -1, d.shape[-1]))
            except InvalidInput:  # a tower without dense features: the pooled embedding only
                cells = None
        ctx.progress(min(start + step, len(images)), len(images), f"{note} of {name}")
    return FrameFeatures(
        path=info.path, times=list(times), glob=glob, dense=np.concatenate(cells) if cells else None,
        duration=float(info.duration), fps=float(info.fps), notice=notice, has_audio=info.has_audio,
    )


def normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-6)


def sinkhorn(scores: np.ndarray, *, temperature: float = 0.05, iters: int = 4) -> np.ndarray:
    """Sinkhorn-Knopp normalisation of a (queries x items) score matrix (UCoFiA, P34).

    exp(scores / temperature) is alternately normalised over rows and columns, so no item that is
    close to every query (a hub) dominates; returns log of the balanced matrix (row-comparable).
    """
    logits = scores / temperature
    logits = logits - logits.max()
    for _ in range(iters):
        logits = logits - np.logaddexp.reduce(logits, axis=0, keepdims=True)  # items (columns) sum to 1
        logits = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)  # queries (rows) sum to 1
    return logits
