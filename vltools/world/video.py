"""Short videos: objects that move, appear, disappear or change colour, with exact event times.

``generate_video(seed)`` returns a `Video` with its frames (uint8 arrays), per-event captions and
start/end times in seconds (frame ``i`` shows time ``i / fps``), a whole-clip caption, and labels
(initial and final object states, events). Events never overlap in time, so each has a clean
moment boundary. ``write_video(frames, path, fps)`` writes an H.264 mp4 with PyAV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vltools.world import vocab
from vltools.world.render import MAX_ROTATION, background, draw_objects, jitter_colour
from vltools.world.scene import LARGE_R, SMALL_R, region_of

EVENT_TYPES: tuple[str, ...] = ("move", "appear", "disappear", "change_colour")


@dataclass
class Video:
    """A generated clip with captions and labels."""

    seed: int
    frames: list[np.ndarray]
    fps: float
    caption: str
    captions: list[str]
    events: list[dict[str, Any]]
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps

    def images(self) -> list[Image.Image]:
        return [Image.fromarray(f, "RGB") for f in self.frames]


def _region_name(pos: str) -> str:
    return "the centre" if pos == "centre" else f"the {pos}"


def _ref(ob: dict, colour: str | None = None) -> str:
    return f"the {colour or ob['colour']} {ob['shape']}"


def _point_in_region(rng: np.random.Generator, region: str, r: float, w: int, h: int) -> tuple[float, float]:
    idx = vocab.POSITIONS.index(region)
    row, col = divmod(idx, 3)
    x0, x1 = max(col / 3 * w, r + 1), min((col + 1) / 3 * w, w - r - 1)
    y0, y1 = max(row / 3 * h, r + 1), min((row + 1) / 3 * h, h - r - 1)
    # shrink towards the cell centre so the region name is unambiguous
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return float(rng.uniform(cx - 0.35 * (x1 - x0), cx + 0.35 * (x1 - x0))), float(
        rng.uniform(cy - 0.35 * (y1 - y0), cy + 0.35 * (y1 - y0))
    )


def _smooth(p: float) -> float:
    p = min(1.0, max(0.0, p))
    return p * p * (3 - 2 * p)


def generate_video(
    seed: int,
    *,
    size: tuple[int, int] = (128, 96),
    fps: float = 8.0,
    n_objects: int | None = None,
    n_events: int | None = None,
    event_types: tuple[str, ...] | list[str] | None = None,
) -> Video:
    """A deterministic clip for ``seed``: 1-3 objects and 1-3 sequential events."""
    rng = np.random.default_rng([seed, 7])
    w, h = size
    if w % 2 or h % 2:
        raise ValueError("video width and height must be even (H.264 4:2:0)")
    side = min(w, h)
    n_obj = n_objects or int(rng.integers(1, 4))
    n_ev = n_events or int(rng.integers(1, 4))
    allowed = tuple(event_types or EVENT_TYPES)
    # distinct (colour, shape) so "the red circle" names one object
    combos = [(c, s) for c in vocab.COLOUR_NAMES for s in vocab.SHAPES]
    picks = rng.choice(len(combos), size=n_obj + n_ev, replace=False)
    pool = [combos[int(i)] for i in picks]
    objects: list[dict] = []
    regions = list(vocab.POSITIONS)
    free_regions = [regions[int(i)] for i in rng.permutation(9)]

    def new_object(visible: bool) -> dict:
        colour, shape = pool.pop(0)
        sz = str(rng.choice(vocab.SIZES))
        lo, hi = SMALL_R if sz == "small" else LARGE_R
        r = float(rng.uniform(lo, min(hi, 0.2))) * side
        region = free_regions.pop(0)
        cx, cy = _point_in_region(rng, region, r, w, h)
        lim = MAX_ROTATION[shape]
        return {
            "id": len(objects), "shape": shape, "colour": colour, "size": sz, "r": r, "cx": cx, "cy": cy,
            "rotation": float(rng.uniform(-lim, lim)), "aspect": float(rng.uniform(1.5, 2.2)) if shape == "rectangle"
            else 1.0, "rgb": jitter_colour(colour, rng), "visible": visible,
        }

    for _ in range(n_obj):
        objects.append(new_object(True))
    initial = [dict(o) for o in objects]
    spawned: dict[int, dict] = {}  # state of objects that appear later, when they were created
    events: list[dict] = []
    t = float(rng.uniform(0.5, 1.0))
    for _ in range(n_ev):
        visible = [o for o in objects if o["visible"]]
        choices = [e for e in allowed if (e == "appear" and free_regions and pool) or (e != "appear" and visible)]
        if "disappear" in choices and len(visible) <= 1 and len(choices) > 1:
            choices.remove("disappear")  # keep something on screen
        if not choices:
            break
        kind = str(rng.choice(choices))
        if kind == "move":
            ob = visible[int(rng.integers(len(visible)))]
            src = region_of(ob["cx"] / w, ob["cy"] / h)
            dst = str(rng.choice([r for r in regions if r != src]))
            tx, ty = _point_in_region(rng, dst, ob["r"], w, h)
            dur = float(rng.uniform(1.0, 2.5))
            ev = {"type": "move", "object": ob["id"], "from": src, "to": dst, "from_xy": [ob["cx"], ob["cy"]],
                  "to_xy": [tx, ty], "caption": f"{_ref(ob)} moves from {_region_name(src)} to {_region_name(dst)}"}
            ob["cx"], ob["cy"] = tx, ty
        elif kind == "appear":
            ob = new_object(False)
            objects.append(ob)
            spawned[ob["id"]] = dict(ob)
            ob["visible"] = True
            pos = region_of(ob["cx"] / w, ob["cy"] / h)
            dur = float(rng.uniform(0.3, 0.7))
            art = vocab.article(ob["colour"])
            ev = {"type": "appear", "object": ob["id"], "at": pos,
                  "caption": f"{art} {ob['colour']} {ob['shape']} appears {_pos_phrase(pos)}"}
        elif kind == "disappear":
            ob = visible[int(rng.integers(len(visible)))]
            dur = float(rng.uniform(0.3, 0.7))
            ev = {"type": "disappear", "object": ob["id"], "caption": f"{_ref(ob)} disappears"}
            ob["visible"] = False
        else:
            ob = visible[int(rng.integers(len(visible)))]
            used = {(o["colour"], o["shape"]) for o in objects}
            new = [c for c in vocab.COLOUR_NAMES if c != ob["colour"] and (c, ob["shape"]) not in used]
            to = str(rng.choice(new))
            dur = float(rng.uniform(0.4, 0.9))
            ev = {"type": "change_colour", "object": ob["id"], "from": ob["colour"], "to": to,
                  "from_rgb": list(ob["rgb"]), "to_rgb": list(jitter_colour(to, rng)),
                  "caption": f"{_ref(ob)} turns {to}"}
            ob["colour"], ob["rgb"] = to, tuple(ev["to_rgb"])
        ev["start"], ev["end"] = round(t, 3), round(t + dur, 3)
        events.append(ev)
        t += dur + float(rng.uniform(0.4, 1.0))
    duration = min(12.0, t + float(rng.uniform(0.2, 0.6)))
    n_frames = max(1, int(math.ceil(duration * fps)))
    bg_kind = str(rng.choice(vocab.BACKGROUNDS, p=[0.6, 0.2, 0.2]))
    canvas, tint = background(bg_kind, w, h, rng)

    # replay the events per frame
    frames = []
    for i in range(n_frames):
        tt = i / fps
        state = [dict(o) for o in initial] + [dict(spawned[k]) for k in range(len(initial), len(objects))]
        alpha = [1.0 if o["visible"] else 0.0 for o in state]
        for ev in events:
            p = (tt - ev["start"]) / max(1e-6, ev["end"] - ev["start"])
            if p < 0:
                break
            ob = state[ev["object"]]
            q = _smooth(p)
            if ev["type"] == "move":
                (x0, y0), (x1, y1) = ev["from_xy"], ev["to_xy"]
                ob["cx"], ob["cy"] = x0 + (x1 - x0) * q, y0 + (y1 - y0) * q
            elif ev["type"] == "appear":
                alpha[ev["object"]] = q
            elif ev["type"] == "disappear":
                alpha[ev["object"]] = 1.0 - q
            else:
                a, b = np.array(ev["from_rgb"], float), np.array(ev["to_rgb"], float)
                ob["rgb"] = tuple(int(v) for v in a + (b - a) * q)
                if p >= 1:
                    ob["colour"] = ev["to"]
        img = draw_objects(canvas, state, supersample=2, alpha=alpha)
        frames.append(np.asarray(img, dtype=np.uint8))

    def public(o: dict) -> dict:
        return {
            "id": o["id"], "shape": o["shape"], "colour": o["colour"], "size": o["size"],
            "position": region_of(o["cx"] / w, o["cy"] / h), "x": round(o["cx"] / w, 4), "y": round(o["cy"] / h, 4),
            "radius": round(o["r"] / side, 4), "visible": o["visible"],
        }

    start_objs = [public(o) for o in initial]
    opening = _list_phrase([o for o in start_objs])
    ev_caps = [e["caption"] for e in events]
    clip_caption = f"{opening}; " + ", then ".join(ev_caps) if ev_caps else opening
    captions = [clip_caption, ", then ".join(ev_caps) if ev_caps else opening, f"a video where {clip_caption}"]
    pub_events = [
        {k: v for k, v in e.items() if k not in ("from_xy", "to_xy", "from_rgb", "to_rgb")} for e in events
    ]
    for k, e in enumerate(pub_events):
        e["index"] = k
        e["start_frame"] = int(math.ceil(e["start"] * fps))
        e["end_frame"] = min(n_frames - 1, int(math.floor(e["end"] * fps)))
    labels = {
        "seed": seed, "width": w, "height": h, "fps": fps, "n_frames": n_frames, "duration": round(n_frames / fps, 3),
        "background": bg_kind, "background_rgb": list(tint), "objects": start_objs,
        "final_objects": [public(o) for o in objects], "events": pub_events,
    }
    return Video(seed=seed, frames=frames, fps=fps, caption=clip_caption, captions=captions, events=pub_events,
                 labels=labels)


def _pos_phrase(pos: str) -> str:
    from vltools.world.scene import position_phrase

    return position_phrase(pos)


def _list_phrase(objs: list[dict]) -> str:
    parts = [f"{vocab.article(o['size'])} {o['size']} {o['colour']} {o['shape']} {_pos_phrase(o['position'])}"
             for o in objs]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def write_video(
    frames: list[np.ndarray],
    path: str | Path,
    fps: float = 8.0,
    *,
    crf: int = 18,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
) -> Path:
    """Write RGB ``frames`` as an H.264 (yuv420p) mp4 with PyAV; returns the path.

    ``audio`` (mono float samples in [-1, 1] at ``sample_rate``) is muxed as an AAC stream.
    """
    import fractions

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    rate = fractions.Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=sample_rate, layout="mono")
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            samples = np.clip(np.asarray(audio, dtype=np.float32).ravel(), -1.0, 1.0)
            for i in range(0, len(samples), 1024):
                af = av.AudioFrame.from_ndarray(samples[None, i : i + 1024].copy(), format="fltp", layout="mono")
                af.sample_rate = sample_rate
                af.pts = i
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a media file with PyAV: (mono float32 samples, sample rate).

    Raises ValueError when the file has no audio stream.
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        parts = [f.to_ndarray().reshape(len(f.layout.channels), -1).mean(0) for f in container.decode(stream)]
        rate = int(stream.sample_rate or stream.rate)
    return (np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)), rate


def read_video(path: str | Path) -> tuple[list[np.ndarray], float]:
    """Decode an mp4 with PyAV: (RGB frames, fps)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, fps
