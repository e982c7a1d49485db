"""Generated-video metrics: `t2v.score` (T2VScore, P55) and `t2v.stream` (STREAM, P56).

`t2v.score` combines a text-alignment expert (CLIP frame-prompt cosine) with a video-quality expert
made of independent sub-scores, each aimed at one failure of generated video: ``motion`` (the
longest stretch of frozen frames), ``flicker`` (frame-to-frame luminance jumps, second difference),
``jitter`` (global camera shake: phase-correlation shifts between consecutive frames), ``temporal
consistency`` (cosine of consecutive CLIP frame features) and ``sharpness`` (Laplacian energy).

`t2v.stream` compares a set of generated videos with a set of real ones: spatial fidelity and
diversity (k-NN precision/recall of per-frame CLIP features, STREAM-F/STREAM-D) and temporal
naturalness (STREAM-T: the skewness, high-frequency share and energy of each video's amplitude
spectrum of its feature trajectory, compared with the real videos' distribution), independently of video length.

Re-exported from `vltools.tools.t2v` (the family's module); needs a CLIP backend and PyAV.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.schemas import ToolInput

# Gray-level thresholds (0..255) of the pixel sub-scores.
STATIC_DIFF = 1.0  # mean absolute difference below which two consecutive frames are "the same"
FLICKER_SCALE = 2.0  # gray levels of luminance second difference (score exp(-x / scale))
JITTER_SCALE = 1.0  # pixels of shake (second difference of the global shift)


def _gray_frames(path: str, ctx: Context, max_frames: int) -> tuple[list[Any], np.ndarray, list[float], str | None]:
    """(PIL frames, float32 gray frames (n, h, w), times, notice) at the video's own rate, bounded."""
    from vltools.models.video import probe_video, sample_frames

    info = probe_video(path, ctx.settings)
    images, times, notice = sample_frames(path, ctx.settings, fps=max(info.fps, 1.0), max_frames=max_frames,
                                          max_side=192)
    gray = np.stack([np.asarray(im.convert("L"), dtype=np.float32) for im in images])
    return images, gray, times, notice


def longest_static_fraction(gray: np.ndarray) -> float:
    """Longest run of consecutive near-identical frames, as a fraction of the frame count."""
    if len(gray) < 2:
        return 1.0
    same = np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2)) < STATIC_DIFF
    best = run = 0
    for s in same:
        run = run + 1 if s else 0
        best = max(best, run)
    return (best + 1) / len(gray) if best else 0.0


def flicker_level(gray: np.ndarray) -> float:
    """Mean absolute second difference of the frames' mean luminance (gray levels)."""
    lum = gray.mean(axis=(1, 2))
    if len(lum) < 3:
        return 0.0
    return float(np.abs(lum[1:-1] - (lum[:-2] + lum[2:]) / 2).mean())


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Global translation of b relative to a by phase correlation (pixels)."""
    fa, fb = np.fft.fft2(a - a.mean()), np.fft.fft2(b - b.mean())
    r = fb * np.conj(fa)
    r /= np.maximum(np.abs(r), 1e-9)
    corr = np.fft.ifft2(r).real
    y, x = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = corr.shape
    return float(x - w if x > w // 2 else x), float(y - h if y > h // 2 else y)


def jitter_level(gray: np.ndarray) -> float:
    """Mean magnitude of the second difference of the cumulative global shift (pixels): shake, not pans."""
    if len(gray) < 3:
        return 0.0
    shifts = np.asarray([_shift(gray[i], gray[i + 1]) for i in range(len(gray) - 1)])
    path = np.cumsum(shifts, axis=0)
    acc = path[2:] - 2 * path[1:-1] + path[:-2] if len(path) >= 3 else shifts[1:] - shifts[:-1]
    return float(np.linalg.norm(acc, axis=1).mean()) if len(acc) else 0.0


def sharpness_level(gray: np.ndarray) -> float:
    """Mean variance of the Laplacian over the frames."""
    lap = (-4 * gray[:, 1:-1, 1:-1] + gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2]
           + gray[:, 1:-1, 2:])
    return float(lap.var(axis=(1, 2)).mean())


# -- t2v.score -----------------------------------------------------------------------------------
class ScoreInput(ToolInput):
    video: str = Field(min_length=1, description="Path of the generated (or any) video.")
    prompt: str = Field(min_length=1, max_length=2000, description="The text the video should show.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    max_frames: int = Field(96, ge=8, le=512, description="Most frames read at the video's own rate (then thinned).")


class QualitySubscores(BaseModel):
    motion: float = Field(description="1 - the longest frozen stretch as a fraction of the video (frozen frames).")
    flicker: float = Field(description="exp(-luminance jumps / 2 gray levels) (flicker).")
    jitter: float = Field(description="exp(-global shake in pixels) (camera jitter).")
    temporal_consistency: float = Field(description="Mean cosine of consecutive CLIP frame features, clipped to 0..1.")
    sharpness: float = Field(description="1 - exp(-Laplacian variance / 100) (blur).")


class ScoreOutput(BaseModel):
    score: float = Field(description="T2VScore: mean of the alignment and quality experts (0..1).")
    alignment: float = Field(description="Text-alignment expert: mean frame-prompt CLIP cosine, clipped to 0..1.")
    alignment_min: float = Field(description="Lowest frame-prompt cosine (a frame that drifts off the prompt).")
    quality: float = Field(description="Video-quality expert: mean of the sub-scores (0..1).")
    subscores: QualitySubscores = Field(description="The quality expert's sub-scores (each 0..1, higher is better).")
    raw: dict[str, float] = Field(description="Raw measurements: static fraction, flicker and jitter levels, ...")
    frames: int = Field(description="Frames analysed.")
    model: str = Field(description="The CLIP spec used.")
    notice: str | None = Field(None, description="How the sampling was bounded.")


def quality_expert(gray: np.ndarray, feats: np.ndarray) -> tuple[QualitySubscores, dict[str, float]]:
    static = longest_static_fraction(gray)
    flick, jit, sharp = flicker_level(gray), jitter_level(gray), sharpness_level(gray)
    cons = float((feats[1:] * feats[:-1]).sum(1).mean()) if len(feats) > 1 else 1.0
    subs = QualitySubscores(
        motion=round(1 - static, 4), flicker=round(math.exp(-flick / FLICKER_SCALE), 4),
        jitter=round(math.exp(-jit / JITTER_SCALE), 4), temporal_consistency=round(min(max(cons, 0.0), 1.0), 4),
        sharpness=round(1 - math.exp(-sharp / 100), 4),
    )
    raw = {"static_fraction": round(static, 4), "flicker_gray_levels": round(flick, 4),
           "jitter_pixels": round(jit, 4), "consecutive_cosine": round(cons, 4), "laplacian_var": round(sharp, 2)}
    return subs, raw


@tool("t2v.score")
def score(inp: ScoreInput, ctx: Context) -> ScoreOutput:
    """Score a generated video - text alignment plus a mixture of video-quality experts with named sub-scores
    (T2VScore).

    Sub-scores: motion (frozen frames), flicker, jitter, temporal consistency, sharpness; alignment is the
    frame-prompt CLIP cosine.
    """
    from vltools.models.video import probe_video

    probe_video(inp.video, ctx.settings)
    backend = ctx.clip(inp.clip)
    images, gray, _times, notice = _gray_frames(inp.video, ctx, inp.max_frames)
    ctx.progress(0, 2, "encoding frames")
    feats = backend.encode_images(images)
    q, _ = backend.encode_texts([inp.prompt])
    sims = feats @ q[0]
    ctx.progress(1, 2, "quality experts")
    subs, raw = quality_expert(gray, feats)
    quality = float(np.mean(list(subs.model_dump().values())))
    align = min(max(float(sims.mean()), 0.0), 1.0)
    ctx.progress(2, 2, "scored")
    return ScoreOutput(score=round((align + quality) / 2, 4), alignment=round(align, 4),
                       alignment_min=round(float(sims.min()), 4), quality=round(quality, 4), subscores=subs, raw=raw,
                       frames=len(images), model=backend.spec, notice=notice)


# -- t2v.stream ----------------------------------------------------------------------------------
class StreamInput(ToolInput):
    videos: list[str] = Field(min_length=1, max_length=2000, description="The generated videos (paths).")
    real: list[str] = Field(min_length=2, max_length=2000, description="Real reference videos (paths).")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    max_frames: int = Field(64, ge=8, le=256, description="Most frames per video, read at its own rate.")
    spatial_frames: int = Field(8, ge=1, le=64, description="Frames per video used by the spatial metrics.")
    k: int = Field(3, ge=1, le=20, description="Neighbours defining each feature's k-NN ball (STREAM-F/D).")


class StreamVideo(BaseModel):
    video: str = Field(description="Path of a generated video.")
    skewness: float = Field(description="Skewness of its feature-trajectory amplitude spectrum.")
    high_frequency: float = Field(description="Share of its trajectory energy in the upper half of the spectrum.")
    energy: float = Field(description="log10 of its trajectory's spectral energy (low: frozen, high: shaky).")
    temporal: float = Field(description="Its temporal naturalness: exp(-z^2/2) of its statistics vs the real videos'.")


class StreamOutput(BaseModel):
    stream_t: float = Field(description="STREAM-T: temporal naturalness of the generated set (0..1).")
    stream_f: float = Field(description="STREAM-F: spatial fidelity, generated frames inside real k-NN balls (0..1).")
    stream_d: float = Field(description="STREAM-D: spatial diversity, real frames inside generated k-NN balls (0..1).")
    per_video: list[StreamVideo] = Field(description="Temporal statistics of each generated video.")
    real_stats: dict[str, list[float]] = Field(description="[mean, std] of the real videos' skewness, "
                                               "high_frequency and energy.")
    model: str = Field(description="The CLIP spec used.")
    notices: list[str] = Field(default_factory=list, description="How sampling was bounded.")


def spectrum_stats(feats: np.ndarray) -> tuple[float, float, float]:
    """(skewness of the mean amplitude spectrum without DC, high-frequency energy share, log10 trajectory
    energy) of a feature trajectory (frames x dim)."""
    if len(feats) < 4:
        return 0.0, 0.0, -6.0
    x = feats - feats.mean(0)
    amp = np.abs(np.fft.rfft(x, axis=0))[1:].mean(1)  # (freqs,), DC dropped
    energy = float(np.log10(max(float((amp**2).mean()), 1e-6)))
    if amp.sum() <= 1e-9:
        return 0.0, 0.0, energy
    m, s = amp.mean(), amp.std()
    skew = float(((amp - m) ** 3).mean() / max(s, 1e-9) ** 3) if s > 1e-9 else 0.0
    half = len(amp) // 2
    hf = float((amp[half:] ** 2).sum() / (amp**2).sum())
    return skew, hf, energy


def _knn_radius(x: np.ndarray, owner: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its k-th nearest row from another video (frames of one clip are near-twins)."""
    d = np.sqrt(np.maximum(2 - 2 * x @ x.T, 0))
    d[owner[:, None] == owner[None, :]] = np.inf
    kk = min(k, int(np.isfinite(d).sum(1).min()))
    return np.sort(d, axis=1)[:, kk - 1] if kk >= 1 else np.zeros(len(x))


def coverage(a: np.ndarray, b: np.ndarray, b_owner: np.ndarray, k: int) -> float:
    """Fraction of rows of ``a`` inside the k-NN ball of some row of ``b`` (unit vectors)."""
    rad = _knn_radius(b, b_owner, k)
    d = np.sqrt(np.maximum(2 - 2 * a @ b.T, 0))
    return float((d <= rad[None, :]).any(1).mean())


@tool("t2v.stream")
def stream(inp: StreamInput, ctx: Context) -> StreamOutput:
    """Evaluate a set of generated videos against real ones - spatial fidelity/diversity and temporal naturalness
    (STREAM).

    Spatial: k-NN precision/recall of per-frame CLIP features; temporal: each video's feature-trajectory amplitude
    spectrum (skewness, high-frequency share, energy) compared with the real videos'.
    """
    from vltools.models.video import probe_video, sample_frames

    for p in [*inp.videos, *inp.real]:
        probe_video(p, ctx.settings)
    backend = ctx.clip(inp.clip)
    notices: list[str] = []
    total = len(inp.videos) + len(inp.real)

    def encode(path: str, i: int) -> np.ndarray:
        info = probe_video(path, ctx.settings)
        images, _, notice = sample_frames(path, ctx.settings, fps=max(info.fps, 1.0), max_frames=inp.max_frames,
                                          max_side=192)
        if notice:
            notices.append(f"{path}: {notice}")
        ctx.progress(i, total, f"encoding {path.rsplit('/', 1)[-1]}")
        return backend.encode_images(images)

    gen = [encode(p, i) for i, p in enumerate(inp.videos)]
    real = [encode(p, len(gen) + i) for i, p in enumerate(inp.real)]

    def spatial(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        idx = [np.linspace(0, len(f) - 1, min(inp.spatial_frames, len(f))).round().astype(int) for f in feats]
        return (np.concatenate([f[i] for f, i in zip(feats, idx, strict=True)]),
                np.concatenate([np.full(len(i), n) for n, i in enumerate(idx)]))

    (g_sp, g_own), (r_sp, r_own) = spatial(gen), spatial(real)
    stream_f = coverage(g_sp, r_sp, r_own, inp.k)
    stream_d = coverage(r_sp, g_sp, g_own, inp.k) if len(gen) > 1 else 0.0
    real_stats = np.asarray([spectrum_stats(f) for f in real])
    mu = real_stats.mean(0)
    sd = np.maximum(real_stats.std(0), np.maximum(0.1 * np.abs(mu), 0.02))
    rows = []
    for p, f in zip(inp.videos, gen, strict=True):
        st = np.asarray(spectrum_stats(f))
        z2 = float((((st - mu) / sd) ** 2).mean())
        rows.append(StreamVideo(video=p, skewness=round(float(st[0]), 4), high_frequency=round(float(st[1]), 4),
                                energy=round(float(st[2]), 4), temporal=round(math.exp(-0.5 * z2), 4)))
    ctx.progress(total, total, "scored")
    real_stats = {n: [round(float(mu[i]), 4), round(float(sd[i]), 4)]
                  for i, n in enumerate(("skewness", "high_frequency", "energy"))}
    return StreamOutput(
        stream_t=round(float(np.mean([r.temporal for r in rows])), 4), stream_f=round(stream_f, 4),
        stream_d=round(stream_d, 4), per_video=rows, real_stats=real_stats, model=backend.spec, notices=notices,
    )
