"""`video.ground`: moment retrieval and highlight detection for a text query (R²-Tuning, P30, adapted).

Frames are sampled at a fixed rate and encoded by CLIP at two granularities (pooled embedding and
the dense grid cells of the last layer); per frame the query gives similarity and change features
(how much the query-relevant cells change between neighbouring frames). A small temporal head
(dilated 1-D convolutions, ~12k parameters, trained by ``scripts/train_video_ground.py`` on world
events) turns them into per-frame saliency and distances to the moment's start and end; moments are
decoded from them with non-maximum suppression. ``method="similarity"`` is the training-free
baseline: smoothed frame-text cosine, moments where it stays above the video's mean.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, tool
from vltools.core.errors import BackendUnavailable
from vltools.schemas import ToolInput
from vltools.tools.video._frames import FrameFeatures, encode_video, zscore

HEAD_FILE = "video_ground_head.safetensors"
N_FEATURES = 11
HIDDEN = 32
TRAIN_FPS = 4.0
TRAINED_ON = "demo"


# -- per-frame query features --------------------------------------------------------------------
def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted by k steps along axis 0 (edge values repeated)."""
    if k > 0:
        return np.concatenate([x[:1].repeat(k, 0), x[:-k]]) if len(x) > k else np.repeat(x[:1], len(x), 0)
    k = -k
    return np.concatenate([x[k:], x[-1:].repeat(k, 0)]) if len(x) > k else np.repeat(x[-1:], len(x), 0)


def query_features(ff: FrameFeatures, q: np.ndarray) -> np.ndarray:
    """(n_frames, N_FEATURES) float32: similarity and query-weighted change features of each frame."""
    g = ff.glob
    s_g = g @ q
    if ff.dense is not None:
        cs = ff.dense @ q  # (n, cells)
        s_dmax, s_dmean = cs.max(1), cs.mean(1)
        w = np.exp(40 * (cs - cs.max(1, keepdims=True)))
        w /= w.sum(1, keepdims=True)
        prev, nxt = _shift(ff.dense, 1), _shift(ff.dense, -1)
        ch_b = (w * (1 - (ff.dense * prev).sum(-1))).sum(1)
        ch_f = (w * (1 - (ff.dense * nxt).sum(-1))).sum(1)
    else:
        s_dmax = s_dmean = s_g
        ch_b = 1 - (g * _shift(g, 1)).sum(-1)
        ch_f = 1 - (g * _shift(g, -1)).sum(-1)
    e_b = 1 - (g * _shift(g, 1)).sum(-1)
    e_f = 1 - (g * _shift(g, -1)).sum(-1)
    feats = np.stack([
        s_g, s_dmax, s_dmean, zscore(s_g), zscore(s_dmax),
        10 * e_b, 10 * e_f, 10 * ch_b, 10 * ch_f,
        10 * (s_dmax - _shift(s_dmax, 1)), 10 * (_shift(s_dmax, -1) - s_dmax),
    ], axis=1)
    return feats.astype(np.float32)


# -- the temporal head ---------------------------------------------------------------------------
def build_head() -> Any:
    """The temporal head: dilated Conv1d over time -> (saliency logit, frames to start, frames to end)."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Conv1d(N_FEATURES, HIDDEN, 5, padding=2)
            self.blocks = nn.ModuleList(
                [nn.Conv1d(HIDDEN, HIDDEN, 5, padding=2 * d, dilation=d) for d in (2, 4, 8)]
            )
            self.out = nn.Conv1d(HIDDEN, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, F, T)
            h = torch.nn.functional.gelu(self.inp(x))
            for blk in self.blocks:
                h = h + torch.nn.functional.gelu(blk(h))
            return self.out(h)  # (B, 3, T)

    return Head()


def head_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("vltools.models") / "weights" / HEAD_FILE))


@functools.cache
def _load_head() -> Any:
    from safetensors.torch import load_file

    path = head_path()
    if not path.is_file():
        raise BackendUnavailable(
            f"the video.ground head weights are missing ({path})",
            hint='retrain with scripts/train_video_ground.py, or pass "method": "similarity"',
        )
    head = build_head()
    head.load_state_dict(load_file(str(path)))
    return head.eval()


def run_head(feats: np.ndarray, head: Any | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(saliency probability, frames to start, frames to end) per frame."""
    import torch

    head = head or _load_head()
    with torch.inference_mode():
        out = head(torch.from_numpy(feats.T[None]))[0].numpy()
    return 1 / (1 + np.exp(-out[0])), np.maximum(out[1], 0) * 10, np.maximum(out[2], 0) * 10


# -- moments -------------------------------------------------------------------------------------
def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def nms(cands: list[tuple[float, float, float]], thresh: float, k: int) -> list[tuple[float, float, float]]:
    """Greedy non-maximum suppression of (start, end, score) moments by temporal IoU."""
    kept: list[tuple[float, float, float]] = []
    for c in sorted(cands, key=lambda c: -c[2]):
        if all(iou((c[0], c[1]), (m[0], m[1])) < thresh for m in kept):
            kept.append(c)
            if len(kept) == k:
                break
    return kept


def head_moments(times: list[float], prob: np.ndarray, d_start: np.ndarray, d_end: np.ndarray, step: float,
                 duration: float, k: int) -> list[tuple[float, float, float]]:
    """Each frame proposes [t - d_start, t + d_end] scored by its saliency and its window's mean saliency."""
    t = np.asarray(times)
    cands = []
    for i in range(len(t)):
        s, e = max(0.0, t[i] - d_start[i] * step), min(duration, t[i] + d_end[i] * step)
        if e - s < step / 2:
            s, e = max(0.0, t[i] - step / 2), min(duration, t[i] + step / 2)
        inside = (t >= s - 1e-6) & (t <= e + 1e-6)
        score = float(prob[i]) * float(prob[inside].mean() if inside.any() else prob[i])
        cands.append((float(s), float(e), math.sqrt(score)))
    return nms(cands, 0.6, k)


def similarity_moments(times: list[float], sal: np.ndarray, step: float, duration: float,
                       k: int) -> list[tuple[float, float, float]]:
    """Runs of frames whose (smoothed, z-scored) similarity stays above 0, 0.5 and 1 std, scored by mean."""
    cands = []
    for thr in (0.0, 0.5, 1.0):
        above = sal > thr
        i = 0
        while i < len(sal):
            if not above[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(sal) and above[j + 1]:
                j += 1
            s, e = max(0.0, times[i] - step / 2), min(duration, times[j] + step / 2)
            cands.append((float(s), float(e), float(sal[i : j + 1].mean())))
            i = j + 1
    if not cands:
        i = int(np.argmax(sal))
        cands.append((max(0.0, times[i] - step / 2), min(duration, times[i] + step / 2), float(sal[i])))
    return nms(cands, 0.6, k)


def smooth(x: np.ndarray, width: int = 3) -> np.ndarray:
    if len(x) < width:
        return x
    kern = np.ones(width) / width
    return np.convolve(np.pad(x, (width // 2, width // 2), mode="edge"), kern, mode="valid")


def per_second(times: list[float], values: np.ndarray, duration: float) -> list[float]:
    """Mean of frame values within each second [k, k+1) (nearest frame when a second has none)."""
    t = np.asarray(times)
    out = []
    for sec in range(max(1, math.ceil(duration - 1e-6))):
        inside = (t >= sec) & (t < sec + 1)
        v = values[inside].mean() if inside.any() else values[int(np.argmin(np.abs(t - (sec + 0.5))))]
        out.append(round(float(v), 4))
    return out


def ground_features(ff: FrameFeatures, q: np.ndarray, method: str, k: int) -> tuple[list, np.ndarray]:
    """(moments as (start, end, score), per-frame saliency in 0..1) for one query on encoded frames."""
    step = (ff.times[-1] - ff.times[0]) / max(len(ff.times) - 1, 1) if len(ff.times) > 1 else ff.duration
    step = step or 1.0 / TRAIN_FPS
    if method == "head":
        prob, d_s, d_e = run_head(query_features(ff, q))
        return head_moments(ff.times, prob, d_s, d_e, step, ff.duration, k), prob
    sal = smooth(zscore(ff.glob @ q))
    moments = similarity_moments(ff.times, sal, step, ff.duration, k)
    return moments, 1 / (1 + np.exp(-2 * sal))


# -- the tool ------------------------------------------------------------------------------------
class GroundInput(ToolInput):
    video: str = Field(min_length=1, description="Path of the video file.")
    query: str = Field(min_length=1, max_length=2000, description="Text describing the moment wanted.")
    method: Literal["head", "similarity"] = Field(
        "head", description="'head': CLIP features + the trained temporal head (R²-Tuning style); "
        "'similarity': training-free frame-text cosine baseline."
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip; the head was trained on 'demo').")
    fps: float = Field(TRAIN_FPS, gt=0, le=30, description="Frames sampled per second (the head was trained at 4).")
    max_frames: int = Field(256, ge=8, le=1024, description="Most frames encoded; longer videos are sampled sparser.")
    k: int = Field(5, ge=1, le=50, description="Most moments returned.")
    start: float | None = Field(None, ge=0, description="Search only from this time (seconds; reached by seeking).")
    end: float | None = Field(None, gt=0, description="Search only up to this time (seconds).")


class Moment(BaseModel):
    start: float = Field(description="Start of the moment, seconds.")
    end: float = Field(description="End of the moment, seconds.")
    score: float = Field(description="Confidence of the moment (0..1), best first.")


class GroundOutput(BaseModel):
    moments: list[Moment] = Field(description="Moments best first: [{start, end, score}] in seconds.")
    saliency: list[float] = Field(
        description="Highlight score (0..1) of each second of the video (of the window from `saliency_start` when "
        "start/end are given), in order."
    )
    saliency_start: float = Field(0.0, description="Time (s) of the first saliency value.")
    frame_times: list[float] = Field(description="Times (s) of the sampled frames.")
    frame_saliency: list[float] = Field(description="Saliency (0..1) of each sampled frame.")
    duration: float = Field(description="Video duration, seconds.")
    method: str = Field(description="Which method scored the frames.")
    model: str = Field(description="The CLIP spec used.")
    notice: str | None = Field(None, description="How sampling was bounded, and caveats of the method.")


@tool("video.ground")
def ground(inp: GroundInput, ctx: Context) -> GroundOutput:
    """Find when a text query happens in a video - moments with start/end/score and per-second saliency (R²-Tuning).

    Frames are sampled at ``fps`` (bounded by ``max_frames``); 'head' refines CLIP frame features with a
    small trained temporal head, 'similarity' is the training-free frame-text cosine baseline.
    """
    from vltools.models.video import probe_video

    info = probe_video(inp.video, ctx.settings)  # a bad file fails before a model loads
    backend = ctx.clip(inp.clip)
    if inp.method == "head":
        _load_head()  # missing weights fail before decoding
    window = None
    if inp.start is not None or inp.end is not None:
        lo, hi = inp.start or 0.0, inp.end if inp.end is not None else info.duration
        if hi <= lo or lo >= info.duration:
            raise InvalidInput(f"the window {lo}-{hi} s is outside the video (0-{info.duration:.2f} s) or empty",
                               hint="give start < end inside the video")
        window = (lo, min(hi, info.duration))
    ff = encode_video(inp.video, ctx, backend, fps=inp.fps, max_frames=inp.max_frames, dense=inp.method == "head",
                      window=window)
    vecs, _ = backend.encode_texts_detailed([inp.query])
    moments, sal = ground_features(ff, vecs[0], inp.method, inp.k)
    base = math.floor(window[0]) if window else 0.0
    if window:  # moments are clamped to the window; saliency covers its seconds
        moments = [(max(s, window[0]), min(e, window[1]), sc) for s, e, sc in moments]
    notes = [ff.notice] if ff.notice else []
    if inp.method == "head" and backend.spec != TRAINED_ON:
        notes.append(f"the temporal head was trained on {TRAINED_ON!r} CLIP features; with {backend.spec} "
                     "its scores are uncalibrated (compare with method 'similarity')")
    return GroundOutput(
        moments=[Moment(start=round(s, 3), end=round(e, 3), score=round(sc, 4)) for s, e, sc in moments],
        saliency=per_second([t - base for t in ff.times], sal, (window[1] - base) if window else ff.duration),
        saliency_start=base,
        frame_times=ff.times, frame_saliency=[round(float(x), 4) for x in sal],
        duration=round(ff.duration, 4), method=inp.method, model=backend.spec, notice="; ".join(notes) or None,
    )
