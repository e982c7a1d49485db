"""`video.describe`: fine-grained description of a clip as events in order with times (Tarsier, P44),
with audible events aligned to visible ones when asked (FAVD, P51).

Tarsier encodes frames separately with CLIP and lets an LLM model their order. Here frames are
sampled at a fixed rate and encoded (pooled + dense cells); events are the stretches where the
dense cells change (query-independent change energy, thresholded against the video's own quiet
level); each event is named from the caller's ``labels`` (CLIP similarity of the changing cells
before and after it, so appear/disappear/move/change follow from where and whether the object is
found) and composed by templates, or by ``llm`` from the event list when one is given. With
``audio: true`` the audio track is decoded with PyAV and its loud stretches are reported and
attached to the visible events they overlap.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, tool
from vltools.schemas import ToolInput
from vltools.tools.video._frames import FrameFeatures, encode_video


class DescribeInput(ToolInput):
    video: str = Field(min_length=1, description="Path of the video file.")
    labels: list[str] | None = Field(
        None, min_length=1, max_length=500,
        description="Names of the things that may appear (the caller's vocabulary); without them events are "
        "described by place and kind of change only.",
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    llm: str | None = Field(None, description="LLM spec that composes the paragraph from the events (optional).")
    audio: bool = Field(
        False, description="Decode the audio track and describe audible events aligned to visible ones."
    )
    fps: float = Field(4.0, gt=0, le=30, description="Frames sampled per second.")
    max_frames: int = Field(256, ge=8, le=1024, description="Most frames encoded (longer videos: sparser sampling).")
    start: float | None = Field(None, ge=0, description="Describe only from this time (seconds).")
    end: float | None = Field(None, gt=0, description="Describe only up to this time (seconds).")
    sensitivity: float = Field(3.0, gt=0, le=50, description="Change threshold in multiples of the quiet level.")
    objects: int = Field(5, ge=0, le=100, description="Labels seen to report in `objects` (0: none).")


class Event(BaseModel):
    start: float = Field(description="Start, seconds.")
    end: float = Field(description="End, seconds.")
    kind: Literal["appear", "disappear", "move", "change"] = Field(description="What happens.")
    subject: str | None = Field(None, description="The label of the thing it happens to, when labels were given.")
    direction: str | None = Field(None, description="left/right/up/down for moves.")
    where: str = Field(description="Where in the frame (e.g. 'top left').")
    text: str = Field(description="The event as a sentence.")
    score: float = Field(description="Change energy of the event relative to the quiet level.")
    sounds: list[int] = Field(default_factory=list, description="Indices of the audible events it overlaps.")


class Sound(BaseModel):
    start: float = Field(description="Start, seconds.")
    end: float = Field(description="End, seconds.")
    loudness_db: float = Field(description="Peak RMS level, dB relative to full scale.")
    text: str = Field(description="The audible event as a sentence.")


class SeenObject(BaseModel):
    label: str = Field(description="A label of the caller's vocabulary seen in the window.")
    score: float = Field(description="Its highest probability over the key frames' grid cells (softmax over labels).")
    time: float = Field(description="Time (s) of the key frame where it is most probable.")
    start: float = Field(description="First key-frame time (s) where it reaches half its best score.")
    end: float = Field(description="Last key-frame time (s) where it reaches half its best score.")


class DescribeOutput(BaseModel):
    description: str = Field(description="The events in order as a paragraph.")
    events: list[Event] = Field(description="Visible events in time order.")
    objects: list[SeenObject] = Field(
        default_factory=list, description="Labels seen (CLIP classification of the key frames' grid cells), best "
        "first; empty without labels.",
    )
    sounds: list[Sound] = Field(default_factory=list, description="Audible events (audio: true).")
    scene: list[str] = Field(default_factory=list, description="Labels visible at the start, best first.")
    composer: Literal["templates", "llm"] = Field(description="What wrote the paragraph.")
    duration: float = Field(description="Video duration, seconds.")
    notice: str | None = Field(None, description="Sampling bounds and fallbacks.")


_ROWS = ("top", "middle", "bottom")
_COLS = ("left", "centre", "right")


def _where(cells: int, weights: np.ndarray) -> tuple[str, float, float]:
    """(phrase, x, y) of a weighted cell position on the dense grid (fractions 0..1)."""
    side = int(round(math.sqrt(cells)))
    if side * side != cells or side == 0:
        return "in the frame", 0.5, 0.5
    w = weights / max(float(weights.sum()), 1e-9)
    ys, xs = np.divmod(np.arange(cells), side)
    x, y = float(((xs + 0.5) / side * w).sum()), float(((ys + 0.5) / side * w).sum())
    col, row = _COLS[min(int(x * 3), 2)], _ROWS[min(int(y * 3), 2)]
    phrase = "in the centre" if (row, col) == ("middle", "centre") else f"at the {row} {col}".replace(
        "middle ", "").replace(" centre", "")
    return phrase, x, y


def change_energy(ff: FrameFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(per-frame change energy, per-frame per-cell change) between each frame and the previous one."""
    if ff.dense is not None:
        cell = 1 - (ff.dense[1:] * ff.dense[:-1]).sum(-1)
        cell = np.vstack([np.zeros((1, cell.shape[1]), dtype=np.float32), cell])
        return cell.max(1), cell
    g = 1 - (ff.glob[1:] * ff.glob[:-1]).sum(-1)
    g = np.concatenate([[0.0], g]).astype(np.float32)
    return g, g[:, None]


def segment_events(times: list[float], energy: np.ndarray, sensitivity: float, step: float
                   ) -> list[tuple[int, int, float]]:
    """(first, last frame, relative energy) of the stretches whose change energy stands out."""
    quiet = float(np.median(energy)) + 1e-4
    mad = float(np.median(np.abs(energy - np.median(energy)))) + 1e-4
    thr = quiet + sensitivity * mad
    active = energy > thr
    out = []
    i = 0
    while i < len(active):
        if not active[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(active) and (active[j + 1] or (j + 2 < len(active) and active[j + 2])):
            j += 1
        if j > i or energy[i] > 2 * thr:
            out.append((max(i - 1, 0), j, float(energy[i : j + 1].max() / thr)))
        i = j + 1
    return out


def _label_scores(feats: np.ndarray, labels_vec: np.ndarray) -> np.ndarray:
    return feats @ labels_vec.T


def describe_events(ff: FrameFeatures, labels: list[str] | None, label_vecs: np.ndarray | None,
                    sensitivity: float) -> tuple[list[Event], list[str]]:
    """Visible events (time order) and the labels seen at the start, from encoded frames."""
    t = np.asarray(ff.times)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    energy, cell_change = change_energy(ff)
    segs = segment_events(ff.times, energy, sensitivity, step)
    scene: list[str] = []
    if labels and label_vecs is not None:
        first = ff.dense[0] if ff.dense is not None else ff.glob[:1]
        s = _label_scores(first, label_vecs).max(0)
        order = np.argsort(-s)
        scene = [labels[int(i)] for i in order[: min(3, len(labels))]]
    events = []
    for a, b, rel in segs:
        before, after = max(a - 1, 0), min(b + 1, len(t) - 1)
        weights = cell_change[a : b + 1].sum(0)
        where, x, y = _where(len(weights), weights)
        kind, subject, direction = "change", None, None
        if labels and label_vecs is not None and ff.dense is not None:
            hot = weights >= 0.5 * weights.max()  # cells where the change happens
            sb = _label_scores(ff.dense[before][hot], label_vecs).max(0)
            sa = _label_scores(ff.dense[after][hot], label_vecs).max(0)
            # the label whose evidence in the changing cells changes most, or is strongest throughout
            gain, strongest = sa - sb, np.maximum(sa, sb)
            j = int(np.argmax(strongest + np.abs(gain)))
            subject = labels[j]
            # where is that label before and after (over all cells): its position tells a move
            pb = _label_scores(ff.dense[before], label_vecs[j : j + 1])[:, 0]
            pa = _label_scores(ff.dense[after], label_vecs[j : j + 1])[:, 0]
            _, xb, yb = _where(len(pb), np.exp(30 * (pb - pb.max())))
            _, xa, ya = _where(len(pa), np.exp(30 * (pa - pa.max())))
            present_b, present_a = float(pb.max()), float(pa.max())
            if present_a - present_b > 0.08:
                kind = "appear"
            elif present_b - present_a > 0.08:
                kind = "disappear"
            elif max(abs(xa - xb), abs(ya - yb)) > 0.15:
                kind = "move"
                dx, dy = xa - xb, ya - yb
                direction = ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")
        text = _sentence(kind, subject, direction, where)
        events.append(Event(start=round(float(t[a]), 3), end=round(float(t[b]), 3), kind=kind, subject=subject,
                            direction=direction, where=where, text=text, score=round(rel, 3)))
    return events, scene


def seen_objects(ff: FrameFeatures, labels: list[str], label_vecs: np.ndarray, top: int) -> list[SeenObject]:
    """The ``top`` labels most probable in some grid cell of some frame (softmax over the labels per cell), with
    when each is seen.

    Objects in world scenes fill a fraction of the frame, so whole-frame classification misses them beside
    larger ones; each dense cell is classified on its own (CLIP's logit scale 100) and a label's score is its
    best cell over the frames.
    """
    feats = ff.dense if ff.dense is not None else ff.glob[:, None, :]
    logits = 100.0 * feats @ label_vecs.T  # (frames, cells, labels)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    per_frame = p.max(1)  # (frames, labels)
    best = per_frame.max(0)
    order = np.argsort(-best)[:top]
    out = []
    for j in order:
        on = np.flatnonzero(per_frame[:, j] >= 0.5 * best[j])
        out.append(SeenObject(label=labels[int(j)], score=round(float(best[j]), 4),
                              time=round(float(ff.times[int(np.argmax(per_frame[:, j]))]), 3),
                              start=round(float(ff.times[int(on[0])]), 3), end=round(float(ff.times[int(on[-1])]), 3)))
    return out


_LABEL_VECS: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}


def label_vectors(backend: object, labels: list[str]) -> np.ndarray:
    """Text vectors of 'a LABEL' for each label, cached per (CLIP spec, labels): a caller describing many clips
    with the same vocabulary encodes it once."""
    key = (str(getattr(backend, "spec", id(backend))), tuple(labels))
    if key not in _LABEL_VECS:
        if len(_LABEL_VECS) > 32:
            _LABEL_VECS.clear()
        _LABEL_VECS[key] = backend.encode_texts([f"a {lab}" for lab in labels])[0]  # type: ignore[attr-defined]
    return _LABEL_VECS[key]


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _sentence(kind: str, subject: str | None, direction: str | None, where: str) -> str:
    who = f"the {subject}" if subject else "something"
    if kind == "appear":
        return f"{who} appears {where}"
    if kind == "disappear":
        return f"{who} disappears {where}"
    if kind == "move":
        return f"{who} moves {'to the ' + direction if direction in ('left', 'right') else direction}"
    return f"{who} changes {where}"


# -- audio (FAVD, P51) ---------------------------------------------------------------------------
def audio_events(path: str, ctx: Context, *, window: float = 0.05, max_seconds: float | None = None) -> list[Sound]:
    """Loud stretches of the first audio track (RMS per window above the track's quiet level + 12 dB)."""
    import av

    from vltools.models.media import check_path

    p = check_path(path, ctx.settings)
    limit = max_seconds or ctx.settings.max_video_seconds
    levels: list[float] = []
    rate = 0
    buf = np.zeros(0, dtype=np.float32)
    with av.open(str(p)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            arr = frame.to_ndarray().astype(np.float32)
            if arr.dtype.kind in "iu" or np.abs(arr).max(initial=0) > 1.5:  # integer PCM
                arr = arr / 32768.0
            mono = arr.mean(0) if arr.ndim == 2 and arr.shape[0] <= 8 else arr.reshape(-1)
            rate = frame.sample_rate or rate
            buf = np.concatenate([buf, mono])
            n = int(rate * window)
            while n and len(buf) >= n:  # stream in bounded windows: memory stays O(window)
                levels.append(float(np.sqrt(np.mean(buf[:n] ** 2)) + 1e-9))
                buf = buf[n:]
            if len(levels) * window > limit:
                break
    if not levels:
        return []
    db = 20 * np.log10(np.asarray(levels))
    quiet = float(np.percentile(db, 20))
    loud = db > max(quiet + 12, -60)
    out, i = [], 0
    while i < len(loud):
        if not loud[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(loud) and loud[j + 1]:
            j += 1
        if (j - i + 1) * window >= 0.1:
            s, e = i * window, (j + 1) * window
            out.append(Sound(start=round(s, 3), end=round(e, 3), loudness_db=round(float(db[i : j + 1].max()), 1),
                             text=f"a sound is heard from {s:.1f} s to {e:.1f} s"))
        i = j + 1
    return out


def _compose_llm(spec: str, events: list[Event], sounds: list[Sound], scene: list[str], ctx: Context) -> str:
    lines = [f"{e.start:.1f}-{e.end:.1f} s: {e.text}" for e in events]
    lines += [f"{s.start:.1f}-{s.end:.1f} s (audio): {s.text}" for s in sounds]
    messages = [
        {"role": "system", "content": "Write a short, precise description of a video from its timed events, in "
         "order. Mention only what the events say; do not invent objects."},
        {"role": "user", "content": f"At the start: {', '.join(scene) or 'unknown'}.\nEvents:\n" + "\n".join(lines)},
    ]
    return ctx.call("llm.generate", {"messages": messages, "llm": spec, "max_tokens": 200}).text.strip()


@tool("video.describe")
def describe(inp: DescribeInput, ctx: Context) -> DescribeOutput:
    """Describe a video as timed events in order - what appears, moves, changes, disappears (Tarsier), with audio cues.

    Events come from where CLIP frame features change; names come from the caller's labels; templates compose the
    paragraph unless an llm is given; audio: true adds audible events aligned to visible ones (FAVD).
    """
    from vltools.models.video import probe_video

    info = probe_video(inp.video, ctx.settings)
    if inp.start is not None and inp.end is not None and inp.end <= inp.start:
        raise InvalidInput(f"end ({inp.end}) must be after start ({inp.start})", hint="give start < end in seconds")
    labels = [lab.strip() for lab in inp.labels or [] if lab.strip()] or None
    backend = ctx.clip(inp.clip)
    window = None
    if inp.start is not None or inp.end is not None:
        window = (inp.start or 0.0, inp.end if inp.end is not None else info.duration)
        if window[1] <= window[0] or window[0] >= info.duration:
            raise InvalidInput(f"the window {window[0]}-{window[1]} s is outside the video (0-{info.duration:.2f} s)",
                               hint="give start/end inside the video")
    ff = encode_video(inp.video, ctx, backend, fps=inp.fps, max_frames=inp.max_frames, dense=True, window=window)
    notes = [ff.notice] if ff.notice else []
    if ff.dense is None:
        notes.append(f"{backend.spec} gives no dense features: events are located by the whole frame only")
    if len(ff.times) < 2:
        raise InvalidInput("fewer than 2 frames could be sampled in the window", hint="widen the window or raise fps")
    label_vecs = label_vectors(backend, labels) if labels else None
    events, scene = describe_events(ff, labels, label_vecs, inp.sensitivity)
    objects = seen_objects(ff, labels, label_vecs, inp.objects) if labels and label_vecs is not None else []
    sounds: list[Sound] = []
    if inp.audio:
        if not info.has_audio:
            notes.append("the video has no audio track")
        else:
            sounds = audio_events(inp.video, ctx)
            for k, s in enumerate(sounds):
                for e in events:
                    if min(e.end, s.end) - max(e.start, s.start) > -0.25:
                        e.sounds.append(k)
    parts = []
    if scene:
        parts.append(f"At the start the video shows {', '.join(_a(s) for s in scene)}.")
    for e in events:
        heard = " while a sound is heard" if e.sounds else ""
        parts.append(f"From {e.start:.1f} s to {e.end:.1f} s {e.text}{heard}.")
    unmatched = [s for k, s in enumerate(sounds) if not any(k in e.sounds for e in events)]
    parts += [f"{s.text[0].upper()}{s.text[1:]}." for s in unmatched]
    if not events:
        parts.append("Nothing visibly changes.")
    text, composer = " ".join(parts), "templates"
    if inp.llm:
        text, composer = _compose_llm(inp.llm, events, sounds, scene, ctx), "llm"
    return DescribeOutput(description=text, events=events, objects=objects, sounds=sounds, scene=scene,
                          composer=composer, duration=round(ff.duration, 3), notice="; ".join(notes) or None)

