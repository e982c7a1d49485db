"""Safe video decoding with PyAV: probing, limits and frame sampling.

`probe_video` opens a file and reads its container metadata (duration, fps, size) without decoding;
`sample_frames` decodes only the frames it needs — uniformly spread, at a rate, or at/around given
timestamps — seeking in long videos instead of decoding them in full, never returning more than
``max_frames`` frames, and saying so in a notice whenever it bounded the request.

Every failure a user can cause (missing, empty, corrupt, audio-only or unsupported files, frames
larger than ``settings.max_video_pixels``) is a `ToolError` naming the file. ``av`` is imported
inside functions so that importing this module stays light.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vltools.core.errors import InvalidInput, TooLarge, Unsupported
from vltools.core.settings import Settings

DEFAULT_FRAMES = 8
# Below this many seconds a sampled video is decoded front to back (cheap, exact); above it each
# wanted frame is reached by seeking to the nearest keyframe before it.
_SEQUENTIAL_SECONDS = 120.0
# Videos up to max_video_seconds are decoded; longer ones are sampled by seeking; a declared duration
# beyond this many times max_video_seconds (default 100 h) is refused as corrupt or hostile.
ABSURD_FACTOR = 100


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (no frame decoded)."""

    path: str
    duration: float  # seconds; estimated from frames/fps when the container has no duration
    fps: float
    frames: int  # frame count (from the stream header or duration * fps)
    width: int
    height: int
    codec: str
    has_audio: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve(path: str | Path, settings: Settings) -> Path:
    from vltools.models.media import check_path

    return check_path(str(path), settings)


def _open(p: Path) -> Any:
    import av

    if p.stat().st_size == 0:
        raise InvalidInput(f"video file {p} is empty (0 bytes)", hint="pass a complete video file")
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as err:
        raise InvalidInput(
            f"{p} is not a readable video (corrupt file or unsupported container): {err.strerror or err}",
            hint="pass an MP4/WebM/MKV/AVI file that ffmpeg can play",
        ) from None


def _video_stream(container: Any, p: Path) -> Any:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise InvalidInput(
            f"{p} has no video stream (streams: {', '.join(kinds)})",
            hint="pass a file with video in it; audio-only files cannot be sampled for frames",
        )
    return container.streams.video[0]


def _info(container: Any, stream: Any, p: Path, settings: Settings) -> VideoInfo:
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise Unsupported(f"{p}: video stream has no frame size (codec {ctx.name})", hint="re-encode the video")
    if width * height > settings.max_video_pixels:
        raise TooLarge(
            f"{p}: frames are {width}x{height} = {width * height} pixels, above max_video_pixels="
            f"{settings.max_video_pixels}",
            hint="downscale the video or raise VLTOOLS_MAX_VIDEO_PIXELS",
        )
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    if duration <= 0 and container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    frames = int(stream.frames or 0)
    if duration <= 0 and frames and fps:
        duration = frames / fps
    if not frames and duration and fps:
        frames = int(round(duration * fps))
    if fps <= 0 and frames and duration:
        fps = frames / duration
    if not (math.isfinite(duration) and math.isfinite(fps)) or duration > ABSURD_FACTOR * settings.max_video_seconds:
        # A tiny file can declare any duration; beyond this nothing is planned or decoded.
        raise TooLarge(
            f"{p} declares a duration of {duration:.3g} s, more than {ABSURD_FACTOR}x max_video_seconds="
            f"{settings.max_video_seconds:g} (corrupt or hostile metadata)",
            hint="re-encode the video, or raise VLTOOLS_MAX_VIDEO_SECONDS for genuinely long videos",
        )
    has_audio = bool(container.streams.audio)
    return VideoInfo(str(p), duration, fps, frames, width, height, ctx.name, has_audio)


def probe_video(path: str | Path, settings: Settings) -> VideoInfo:
    """Duration, fps, frame count and size of a video, from its container (nothing decoded).

    Raises:
        NotFound, InvalidInput, Unsupported, TooLarge: naming the file.
    """
    p = _resolve(path, settings)
    container = _open(p)
    try:
        return _info(container, _video_stream(container, p), p, settings)
    finally:
        container.close()


def _thin(count: int, max_frames: int) -> list[int]:
    """Indices of ``max_frames`` of ``count`` evenly spread items (all of them when few enough),
    computed directly: ``count`` may be astronomically large and is never materialised."""
    if count <= max_frames:
        return list(range(count))
    return sorted({round(i * (count - 1) / max(max_frames - 1, 1)) for i in range(max_frames)})


def plan_times(
    info: VideoInfo,
    *,
    n: int | None = None,
    fps: float | None = None,
    timestamps: list[float] | None = None,
    window: float = 0.0,
    per_timestamp: int = 1,
    max_frames: int = 64,
) -> tuple[list[float], str | None]:
    """The times (seconds, sorted) to sample and a notice when the request was bounded or clipped.

    Exactly one of ``n`` (uniform: centres of n equal segments), ``fps`` (a rate) and ``timestamps``
    (each time, or ``per_timestamp`` times spread over ``[t - window, t + window]``) may be given;
    none means ``n=8``. Work and memory are bounded by ``max_frames`` (and the number of timestamps),
    whatever duration or rate is declared or asked for.
    """
    if sum(x is not None for x in (n, fps, timestamps)) > 1:
        raise InvalidInput("give only one of n, fps and timestamps", hint="pick one sampling mode")
    if max_frames < 1:
        raise InvalidInput(f"max_frames must be at least 1, got {max_frames}")
    if not math.isfinite(info.duration) or not math.isfinite(info.fps):
        raise InvalidInput(f"{info.path} declares a non-finite duration or frame rate", hint="re-encode the video")
    dur = max(info.duration, 0.0)
    last = max(dur - 0.5 / info.fps, 0.0) if info.fps > 0 else dur  # a time whose frame exists
    notes: list[str] = []
    wanted = 0  # frames the request asked for (before thinning)
    if timestamps is not None:
        if not timestamps:
            raise InvalidInput("timestamps is empty", hint="give at least one time in seconds")
        if not all(math.isfinite(t) for t in timestamps) or not math.isfinite(window):
            raise InvalidInput("timestamps and window must be finite numbers (no NaN or infinity)")
        if per_timestamp < 1 or window < 0:
            raise InvalidInput("per_timestamp must be >= 1 and window >= 0")
        outside = [t for t in timestamps if t < 0 or t > dur + 1e-6]
        if outside:
            notes.append(f"{len(outside)} timestamp(s) outside 0..{dur:.2f} s were clipped to the video")
        # More than max_frames around one timestamp would be thinned anyway: never build them.
        per = 1 if window == 0 else min(per_timestamp, max_frames)
        times: list[float] = []
        for t in timestamps:
            if per == 1:
                times.append(t)
            else:
                step = 2 * window / (per - 1)
                times += [t - window + i * step for i in range(per)]
        times = sorted({round(min(max(t, 0.0), last), 6) for t in times})
        wanted = len(times) if per == per_timestamp or window == 0 else len(timestamps) * per_timestamp
        if len(times) > max_frames:
            times = [times[i] for i in _thin(len(times), max_frames)]
    elif fps is not None:
        if not math.isfinite(fps) or fps <= 0:
            raise InvalidInput(f"fps must be a positive number, got {fps}")
        wanted = max(int(dur * fps), 1)
        times = [min(i / fps, last) for i in _thin(wanted, max_frames)]
    else:
        n = DEFAULT_FRAMES if n is None else n
        if n < 1:
            raise InvalidInput(f"n must be at least 1, got {n}")
        wanted = n
        times = [min((i + 0.5) * dur / n, last) for i in _thin(n, max_frames)]
    if wanted > max_frames:
        spacing = dur / len(times) if times else 0.0
        notes.append(
            f"the request asked for {wanted} frames; bounded to max_frames={max_frames} spread evenly "
            f"(about one every {spacing:.2f} s)"
        )
    return times, ("; ".join(notes) or None)


def _to_image(frame: Any, max_side: int | None) -> Any:
    img = frame.to_image()  # PIL RGB
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    return img


def _frame_time(frame: Any, stream: Any) -> float | None:
    if frame.pts is None or stream.time_base is None:
        return None
    start = stream.start_time or 0
    return float((frame.pts - start) * stream.time_base)


def _decode_sequential(container: Any, stream: Any, times: list[float], max_side: int | None, budget_s: float):
    """One pass over the stream, keeping for each wanted time the decoded frame nearest to it."""
    out: list[tuple[float, Any]] = []
    i = 0
    prev: tuple[float, Any] | None = None  # (time, undecoded-to-RGB frame)
    for frame in container.decode(stream):
        t = _frame_time(frame, stream)
        if t is None:
            continue
        while i < len(times) and t >= times[i] - 1e-6:
            best = prev if prev is not None and abs(prev[0] - times[i]) < abs(t - times[i]) else (t, frame)
            out.append((best[0], _to_image(best[1], max_side)))
            i += 1
        if i >= len(times) or t > budget_s:
            break
        prev = (t, frame)
    if i < len(times) and prev is not None:  # times past the last decodable frame: the last frame
        out += [(prev[0], _to_image(prev[1], max_side))] * (len(times) - i)
    return out


def _decode_seeking(container: Any, stream: Any, times: list[float], max_side: int | None):
    """For each wanted time: seek to the keyframe before it and decode forward to it."""
    out: list[tuple[float, Any]] = []
    start = stream.start_time or 0
    for want in times:
        container.seek(int(want / stream.time_base) + start, stream=stream, backward=True, any_frame=False)
        got = None
        for frame in container.decode(stream):
            t = _frame_time(frame, stream)
            if t is None:
                continue
            got = (t, frame)
            if t >= want - 1e-6:
                break
        if got is not None:
            out.append((got[0], _to_image(got[1], max_side)))
    return out


_CACHE: OrderedDict[tuple, tuple[list, list[float], str | None]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def sample_frames(
    path: str | Path,
    settings: Settings,
    *,
    n: int | None = None,
    fps: float | None = None,
    timestamps: list[float] | None = None,
    window: float = 0.0,
    per_timestamp: int = 1,
    max_frames: int | None = None,
    max_side: int | None = 512,
) -> tuple[list[Any], list[float], str | None]:
    """Decode frames of a video: uniform (``n``), at a rate (``fps``) or at/around ``timestamps``.

    Args:
        max_frames: upper bound on frames returned (default ``settings.max_video_frames``); a request
            for more is thinned evenly and the notice says so.
        max_side: frames are downscaled so that their longer side is at most this (None: keep size).

    Returns:
        (PIL RGB frames in time order, their times in seconds, a notice or None). Videos longer than
        ``settings.max_video_seconds`` are sampled by seeking and never decoded in full; the notice
        says so too.

    Raises:
        ToolError naming the file (see `probe_video`), or InvalidInput when no frame decodes.
    """
    p = _resolve(path, settings)
    max_frames = settings.max_video_frames if max_frames is None else min(max_frames, settings.max_video_frames)
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns, n, fps, tuple(timestamps or ()), window, per_timestamp,
           max_frames, max_side)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            frames, times, notice = _CACHE[key]
            return list(frames), list(times), notice
    import av

    container = _open(p)
    try:
        stream = _video_stream(container, p)
        info = _info(container, stream, p, settings)
        stream.thread_type = "AUTO"
        want, notice = plan_times(
            info, n=n, fps=fps, timestamps=timestamps, window=window, per_timestamp=per_timestamp,
            max_frames=max_frames,
        )
        notes = [notice] if notice else []
        too_long = info.duration > settings.max_video_seconds
        try:
            if too_long or info.duration > _SEQUENTIAL_SECONDS:
                got = _decode_seeking(container, stream, want, max_side)
                if too_long:
                    notes.append(
                        f"{p.name} is {info.duration:.0f} s long, above max_video_seconds="
                        f"{settings.max_video_seconds:.0f}: {len(got)} frames reached by seeking, not decoded in full"
                    )
            else:
                got = _decode_sequential(container, stream, want, max_side, settings.max_video_seconds)
        except av.error.FFmpegError as err:
            raise InvalidInput(
                f"{p} could not be decoded (corrupt or truncated video): {err.strerror or err}",
                hint="re-encode or re-download the file",
            ) from None
    finally:
        container.close()
    if not got:
        raise InvalidInput(f"no frame of {p} could be decoded", hint="check that the video plays")
    frames = [img for _, img in got]
    times = [round(t, 4) for t, _ in got]
    notice = "; ".join(notes) or None
    with _CACHE_LOCK:
        _CACHE[key] = (frames, times, notice)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return list(frames), list(times), notice


__all__ = ["VideoInfo", "plan_times", "probe_video", "sample_frames"]
