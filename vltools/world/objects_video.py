"""Videos of the "objects" theme: named objects that move, enter, leave, appear, disappear, change
tint, approach or pass each other, with exact event times, per-frame tracks and captions.

``generate_object_video(seed)`` is deterministic by its arguments. Events are sequential (never
overlap in time), so each has clean start/end times (seconds; frame ``i`` shows time ``i / fps``).
Labels hold the objects at the start and end, the events (type, object, other object, direction,
speed, start/end seconds and frames, caption) and ``tracks``: per frame, every object on screen
with its identity and box (the part of its mask inside the frame). Clips are silent unless
``audio=True``: then each event sounds a pure tone of its object's category (`CATEGORY_TONES`) from
its start to its end time, the track is in ``video.audio`` and the cues in ``labels["audio"]``;
`vltools.world.video.write_video` muxes it as AAC beside the H.264 video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vltools.world.backgrounds import KINDS, PLACE_PHRASES, make_background, natural_place
from vltools.world.concept_table import Split
from vltools.world.objects import (
    TINTS,
    _plan,
    _pool,
    indefinite,
    join_phrases,
    mask_bbox,
    object_sprite,
    position_phrase,
    region_of,
)
from vltools.world.video import Video

EVENT_TYPES: tuple[str, ...] = ("move", "enter", "leave", "appear", "disappear", "change_tint", "approach", "pass")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
EDGE_OF = {"left": "left", "right": "right", "up": "top", "down": "bottom"}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


# One tone per concept category, three semitones apart (C4 upwards), so a category can be read off a
# spectrum; events of the same category sound alike ("a tone per category", for audio-aware description).
CATEGORY_TONES: dict[str, float] = {
    c: round(261.63 * 2 ** (3 * k / 12), 2)
    for k, c in enumerate(("animal", "food", "object", "place", "clothing", "vehicle", "office item",
                           "household object", "sports item", "electronics", "plant", "tool", "music item",
                           "drink", "toy", "weather"))
}
AUDIO_RATE = 16_000
FADE_S = 0.01


@dataclass
class ObjectVideo(Video):
    """A generated clip of the objects theme with captions, events, tracks and labels (and, when asked,
    a mono float32 audio track at ``labels["audio"]["sample_rate"]``)."""

    audio: np.ndarray | None = None

    @property
    def tracks(self) -> list[list[dict[str, Any]]]:
        return self.labels["tracks"]


def _smooth(p: float) -> float:
    p = min(1.0, max(0.0, p))
    return p * p * (3 - 2 * p)


def _the(o: dict) -> str:
    return f"the {o['concept']}"


def generate_object_video(
    seed: int,
    *,
    size: tuple[int, int] = (128, 96),
    fps: float = 8.0,
    n_objects: int | None = None,
    n_events: int | None = None,
    event_types: tuple[str, ...] | list[str] | None = None,
    split: Split = "train",
    concept_names: list[str] | None = None,
    background: str | None = None,
    audio: bool = False,
) -> ObjectVideo:
    """A deterministic clip for ``seed``: 1-3 objects on screen at the start and 1-4 sequential events.

    ``split`` picks the concept pool (held-out concepts only when asked); ``concept_names`` fixes the
    objects (the first ``n_objects`` start on screen, the rest are kept for enter/appear events).
    """
    rng = np.random.default_rng([seed, 7101])
    w, h = size
    if w % 2 or h % 2:
        raise ValueError("video width and height must be even (H.264 4:2:0)")
    allowed = tuple(event_types or EVENT_TYPES)
    unknown = [e for e in allowed if e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
    if background is not None and background not in KINDS:
        raise ValueError(f"unknown background {background!r}; known: {', '.join(KINDS)}")
    n_obj = n_objects or int(rng.integers(1, 4))
    n_ev = n_events or int(rng.integers(1, 5))
    if concept_names is not None:
        pool = _pool(split, concept_names)
    else:
        pool = _plan(rng, _pool(split, None), n_obj + n_ev, repeat_p=0.0)  # distinct, unrelated concepts
    side = min(w, h)
    bg = background or (natural_place(pool[0]["category"], pool[0]["subcategory"]) if rng.random() < 0.5
                        else str(KINDS[int(rng.integers(len(KINDS)))]))
    canvas = make_background(bg, w, h, rng)
    objects: list[dict[str, Any]] = []
    waiting = list(pool)

    def new_object(visible: bool) -> dict[str, Any]:
        c = waiting.pop(0)
        s = int(round(rng.uniform(0.26, 0.38) * side))
        return {"id": len(objects), "concept": c["name"], "category": c["category"], "side": s,
                "cx": float(rng.uniform(s / 2, w - s / 2)), "cy": float(rng.uniform(s / 2, h - s / 2)),
                "tint": None, "visible": visible, "on_screen": visible}

    for _ in range(min(n_obj, len(waiting))):
        o = new_object(True)
        for _try in range(30):  # spread the starting objects apart
            if all(math.hypot(o["cx"] - p["cx"], o["cy"] - p["cy"]) > (o["side"] + p["side"]) / 2 for p in objects):
                break
            o["cx"], o["cy"] = float(rng.uniform(o["side"] / 2, w - o["side"] / 2)), float(
                rng.uniform(o["side"] / 2, h - o["side"] / 2))
        objects.append(o)
    initial = [dict(o) for o in objects]
    spawned: dict[int, dict] = {}
    events: list[dict[str, Any]] = []
    t = float(rng.uniform(0.4, 0.9))
    for _ in range(n_ev):
        shown = [o for o in objects if o["visible"]]
        choices = []
        for e in allowed:
            if e in ("enter", "appear") and not waiting:
                continue
            if e in ("move", "leave", "disappear", "change_tint") and not shown:
                continue
            if e in ("approach", "pass") and len(shown) < 2:
                continue
            if e in ("leave", "disappear") and len(shown) <= 1 and len(allowed) > 1:
                continue  # keep something on screen
            choices.append(e)
        if not choices:
            break
        kind = str(choices[int(rng.integers(len(choices)))])
        ev: dict[str, Any] = {"type": kind}
        if kind in ("enter", "appear"):
            ob = new_object(False)
            objects.append(ob)
            ev["object"] = ob["id"]
            if kind == "enter":
                d = str(list(DIRECTIONS)[int(rng.integers(4))])  # moving direction; enters from the opposite edge
                dx, dy = DIRECTIONS[d]
                s = ob["side"]
                tx, ty = ob["cx"], ob["cy"]
                fx = -s / 2 - 1 if dx > 0 else (w + s / 2 + 1 if dx < 0 else tx)
                fy = -s / 2 - 1 if dy > 0 else (h + s / 2 + 1 if dy < 0 else ty)
                ev.update(from_xy=[fx, fy], to_xy=[tx, ty], direction=d, edge=EDGE_OF[OPPOSITE[d]])
                ob["cx"], ob["cy"] = fx, fy
                spawned[ob["id"]] = dict(ob)
                ob["cx"], ob["cy"] = tx, ty
                dur = float(rng.uniform(1.0, 2.0))
                ev["caption"] = f"{indefinite(ob['concept'], ob['concept'])} enters from the {ev['edge']}"
            else:
                spawned[ob["id"]] = dict(ob)
                dur = float(rng.uniform(0.3, 0.7))
                pos = region_of(ob["cx"] / w, ob["cy"] / h)
                ev.update(at=pos)
                ev["caption"] = f"{indefinite(ob['concept'], ob['concept'])} appears {position_phrase(pos)}"
            ob["visible"] = True
        elif kind in ("move", "leave"):
            ob = shown[int(rng.integers(len(shown)))]
            d = str(list(DIRECTIONS)[int(rng.integers(4))])
            dx, dy = DIRECTIONS[d]
            s = ob["side"]
            speed = "fast" if rng.random() < 0.4 else "slowly"
            dur = float(rng.uniform(0.7, 1.2) if speed == "fast" else rng.uniform(1.6, 2.6))
            if kind == "leave":
                tx = -s / 2 - 1 if dx < 0 else (w + s / 2 + 1 if dx > 0 else ob["cx"])
                ty = -s / 2 - 1 if dy < 0 else (h + s / 2 + 1 if dy > 0 else ob["cy"])
                ev["edge"] = EDGE_OF[d]
                ev["caption"] = f"{_the(ob)} leaves to the {ev['edge']}"
                ob["visible"] = False
            else:
                lo_x, hi_x, lo_y, hi_y = s / 2, w - s / 2, s / 2, h - s / 2
                room = (hi_x - ob["cx"]) if dx > 0 else (ob["cx"] - lo_x) if dx < 0 else (
                    (hi_y - ob["cy"]) if dy > 0 else (ob["cy"] - lo_y))
                if room < 0.2 * side:  # no room that way: go the other way
                    d = OPPOSITE[d]
                    dx, dy = DIRECTIONS[d]
                    room = (hi_x - ob["cx"]) if dx > 0 else (ob["cx"] - lo_x) if dx < 0 else (
                        (hi_y - ob["cy"]) if dy > 0 else (ob["cy"] - lo_y))
                dist = float(rng.uniform(0.6, 1.0)) * max(room, 0.0)
                tx, ty = ob["cx"] + dx * dist, ob["cy"] + dy * dist
                word = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}[d]
                ev["caption"] = f"{_the(ob)} moves {word}" + (" quickly" if speed == "fast" else " slowly")
            ev.update(object=ob["id"], direction=d, speed=speed, from_xy=[ob["cx"], ob["cy"]], to_xy=[tx, ty])
            ob["cx"], ob["cy"] = tx, ty
        elif kind == "disappear":
            ob = shown[int(rng.integers(len(shown)))]
            dur = float(rng.uniform(0.3, 0.7))
            ev.update(object=ob["id"], caption=f"{_the(ob)} disappears")
            ob["visible"] = False
        elif kind == "change_tint":
            ob = shown[int(rng.integers(len(shown)))]
            to = str([c for c in TINTS if c != ob["tint"]][int(rng.integers(len(TINTS) - (1 if ob["tint"] else 0)))])
            dur = float(rng.uniform(0.4, 0.9))
            ev.update(object=ob["id"], **{"from": ob["tint"], "to": to}, caption=f"{_the(ob)} turns {to}")
            ob["tint"] = to
        else:  # approach / pass: one object moves towards / horizontally past another
            i, j = (int(v) for v in rng.choice(len(shown), 2, replace=False))
            ob, other = shown[i], shown[j]
            gap = (ob["side"] + other["side"]) / 2
            if kind == "approach":
                vx, vy = other["cx"] - ob["cx"], other["cy"] - ob["cy"]
                dist = math.hypot(vx, vy)
                keep = min(dist, gap * 1.05)
                f = (dist - keep) / max(dist, 1e-6)
                tx, ty = ob["cx"] + vx * f, ob["cy"] + vy * f
                ev["caption"] = f"{_the(ob)} approaches {_the(other)}"
            else:
                go_right = ob["cx"] < other["cx"]
                tx = other["cx"] + (gap if go_right else -gap)
                tx = float(min(max(tx, ob["side"] / 2), w - ob["side"] / 2))
                if (tx > other["cx"]) != go_right:  # no room beyond: cross to the far side as far as possible
                    tx = float(w - ob["side"] / 2 if go_right else ob["side"] / 2)
                ty = other["cy"] + float(rng.uniform(-0.3, 0.3)) * other["side"]
                ty = float(min(max(ty, ob["side"] / 2), h - ob["side"] / 2))
                ev["direction"] = "right" if go_right else "left"
                ev["caption"] = f"{_the(ob)} passes {_the(other)}"
            dur = float(rng.uniform(1.2, 2.2))
            ev.update(object=ob["id"], other=other["id"], from_xy=[ob["cx"], ob["cy"]], to_xy=[tx, ty])
            ob["cx"], ob["cy"] = tx, ty
        ev["start"], ev["end"] = round(t, 3), round(t + dur, 3)
        events.append(ev)
        t += dur + float(rng.uniform(0.3, 0.8))
    duration = min(15.0, t + float(rng.uniform(0.2, 0.5)))
    n_frames = max(1, int(math.ceil(duration * fps)))

    sprites: dict[tuple, np.ndarray] = {}

    def sprite(o: dict, tint: str | None) -> np.ndarray:
        key = (o["concept"], o["side"], tint)
        if key not in sprites:
            sprites[key] = np.asarray(object_sprite(o["concept"], o["side"], 0.0, tint), dtype=np.float32)
        return sprites[key]

    frames: list[np.ndarray] = []
    tracks: list[list[dict[str, Any]]] = []
    base = np.asarray(canvas, dtype=np.float32)
    for fi in range(n_frames):
        tt = fi / fps
        state = [dict(o) for o in initial] + [dict(spawned[k]) for k in range(len(initial), len(objects))]
        alpha = [1.0 if o["visible"] else 0.0 for o in state]
        blend: dict[int, tuple[str | None, str | None, float]] = {}
        for ev in events:
            p = (tt - ev["start"]) / max(1e-6, ev["end"] - ev["start"])
            if p < 0:
                break
            q = _smooth(p)
            k = ev["object"]
            ob = state[k]
            if "from_xy" in ev:
                (x0, y0), (x1, y1) = ev["from_xy"], ev["to_xy"]
                ob["cx"], ob["cy"] = x0 + (x1 - x0) * q, y0 + (y1 - y0) * q
            if ev["type"] in ("appear", "enter"):
                alpha[k] = q if ev["type"] == "appear" else 1.0
            elif ev["type"] == "disappear":
                alpha[k] = 1.0 - q
            elif ev["type"] == "leave" and p >= 1:
                alpha[k] = 0.0
            elif ev["type"] == "change_tint":
                blend[k] = (ev["from"], ev["to"], q)
                ob["tint"] = ev["to"] if q >= 0.5 else ev["from"]  # the tint that dominates the crossfade
        img = base.copy()
        frame_tracks = []
        for k, ob in enumerate(state):
            if alpha[k] <= 0:
                continue
            if k in blend:
                a, b, q = blend[k]
                spr = sprite(ob, a) * (1 - q) + sprite(ob, b) * q
            else:
                spr = sprite(ob, ob["tint"])
            s = spr.shape[0]
            x0, y0 = int(round(ob["cx"] - s / 2)), int(round(ob["cy"] - s / 2))
            sx0, sy0 = max(0, -x0), max(0, -y0)
            sx1, sy1 = min(s, w - x0), min(s, h - y0)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            part = spr[sy0:sy1, sx0:sx1]
            a_ch = part[..., 3:4] / 255.0 * alpha[k]
            region = img[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1]
            img[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] = region * (1 - a_ch) + part[..., :3] * a_ch
            mask = np.zeros((h, w), dtype=bool)
            mask[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] = part[..., 3] >= 128
            box = mask_bbox(mask)
            if box is not None and alpha[k] >= 0.5:
                frame_tracks.append({"id": k, "concept": ob["concept"], "bbox": box, "tint": ob["tint"]})
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        tracks.append(frame_tracks)

    def public(o: dict) -> dict:
        inside = 0 <= o["cx"] <= w and 0 <= o["cy"] <= h
        return {"id": o["id"], "concept": o["concept"], "category": o["category"], "tint": o["tint"],
                "x": round(o["cx"] / w, 4), "y": round(o["cy"] / h, 4), "scale": round(o["side"] / side, 4),
                "position": region_of(min(max(o["cx"] / w, 0), 1), min(max(o["cy"] / h, 0), 1)),
                "visible": bool(o["visible"] and inside)}

    start = [public(o) for o in initial]
    opening = join_phrases([f"{indefinite(o['concept'], o['concept'])} {position_phrase(o['position'])}"
                            for o in start]) if start else "an empty scene"
    if bg in PLACE_PHRASES:
        opening += " " + PLACE_PHRASES[bg]
    ev_caps = [e["caption"] for e in events]
    clip_caption = f"{opening}; " + ", then ".join(ev_caps) if ev_caps else opening
    captions = [clip_caption, ", then ".join(ev_caps) if ev_caps else opening, f"a video where {clip_caption}"]
    pub_events = []
    for k, e in enumerate(events):
        pe = {kk: v for kk, v in e.items() if kk not in ("from_xy", "to_xy")}
        pe["index"] = k
        pe["start_frame"] = int(math.ceil(e["start"] * fps))
        pe["end_frame"] = min(n_frames - 1, int(math.floor(e["end"] * fps)))
        pe["concept"] = objects[e["object"]]["concept"]
        pub_events.append(pe)
    labels = {
        "theme": "objects", "seed": seed, "width": w, "height": h, "fps": fps, "n_frames": n_frames,
        "duration": round(n_frames / fps, 3), "background": bg, "split": split, "objects": start,
        "final_objects": [public(o) for o in objects], "events": pub_events, "tracks": tracks,
    }
    track = None
    if audio:
        cues = [{"event": e["index"], "category": objects[e["object"]]["category"],
                 "frequency_hz": CATEGORY_TONES.get(objects[e["object"]]["category"], CATEGORY_TONES["object"]),
                 "start": e["start"], "end": e["end"]} for e in pub_events]
        track = event_audio(cues, n_frames / fps)
        labels["audio"] = {"sample_rate": AUDIO_RATE, "codec": "aac", "cues": cues}
    return ObjectVideo(seed=seed, frames=frames, fps=fps, caption=clip_caption, captions=captions, events=pub_events,
                       labels=labels, audio=track)


def event_audio(cues: list[dict[str, Any]], duration: float, sample_rate: int = AUDIO_RATE) -> np.ndarray:
    """A mono float32 track of ``duration`` seconds: silence, and each cue's tone (``frequency_hz``) at
    amplitude 0.3 from its ``start`` to its ``end`` second, with 10 ms fades (no clicks)."""
    n = int(round(duration * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    fade = int(FADE_S * sample_rate)
    for c in cues:
        a, b = int(round(c["start"] * sample_rate)), min(n, int(round(c["end"] * sample_rate)))
        if b <= a:
            continue
        t = np.arange(b - a) / sample_rate
        env = np.ones(b - a)
        k = min(fade, (b - a) // 2)
        if k:
            ramp = np.linspace(0.0, 1.0, k)
            env[:k], env[-k:] = ramp, ramp[::-1]
        out[a:b] = (0.3 * env * np.sin(2 * np.pi * c["frequency_hz"] * t)).astype(np.float32)
    return out
