"""Still scenes: 1-3 objects on a background, with exact captions and structured labels.

``generate_scene(seed)`` is deterministic: the same seed (and arguments) always gives the same
pixels, captions and labels. Labels hold everything a question, a class or a retrieval
ground truth needs: per object its shape, colour, size, position (3x3 region), centre, radius
and bounding box; the groups of identical objects (for counts); pairwise relations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from vltools.world import vocab
from vltools.world.render import MAX_ROTATION, background, draw_objects, jitter_colour

SMALL_R = (0.085, 0.12)  # radius as a fraction of the image side
LARGE_R = (0.165, 0.24)
IMAGE_SIZES = (64, 80, 96, 128)


@dataclass
class Scene:
    """A generated still image with its captions and labels."""

    seed: int
    image: Image.Image
    caption: str
    captions: list[str]
    heldout_captions: list[str]
    labels: dict[str, Any] = field(default_factory=dict)


def region_of(x: float, y: float) -> str:
    """3x3 region name of a centre given in [0, 1] coordinates."""
    col = 0 if x < 1 / 3 else (2 if x > 2 / 3 else 1)
    row = 0 if y < 1 / 3 else (2 if y > 2 / 3 else 1)
    return vocab.POSITIONS[row * 3 + col]


def position_phrase(pos: str) -> str:
    if pos == "centre":
        return "in the centre"
    if pos in ("left", "right"):
        return f"on the {pos}"
    if pos in ("top", "bottom"):
        return f"at the {pos}"
    return f"in the {pos}"


def _group_position(members: list[dict]) -> str | None:
    """The coarse side all members share (left/right/top/bottom/centre, or a single region), else None."""
    regions = {m["position"] for m in members}
    if len(regions) == 1:
        return regions.pop()
    xs = [m["x"] for m in members]
    ys = [m["y"] for m in members]
    if all(x < 1 / 3 for x in xs):
        return "left"
    if all(x > 2 / 3 for x in xs):
        return "right"
    if all(y < 1 / 3 for y in ys):
        return "top"
    if all(y > 2 / 3 for y in ys):
        return "bottom"
    return None


def noun_phrase(group: dict, *, size: bool = True, position: bool = True, colour_word: str | None = None,
                shape_word: str | None = None) -> str:
    """'two small red circles on the left' for a group of identical objects."""
    n = group["count"]
    shape = shape_word or group["shape"]
    colour = colour_word or group["colour"]
    noun = shape if n == 1 else (vocab.PLURALS.get(shape) or shape + "s")
    words = [w for w in (group["size"] if size else None, colour, noun) if w]
    head = " ".join(words)
    det = vocab.article(head) if n == 1 else vocab.NUMBER_WORDS[n]
    text = f"{det} {head}"
    if position and group.get("position"):
        text += " " + position_phrase(group["position"])
    return text


def join_phrases(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def relation(a: dict, b: dict) -> str | None:
    """Spatial relation of object a to object b ('above', 'below', 'to the left of', 'to the right of')."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dy) > 1.3 * abs(dx) and abs(dy) > 0.12:
        return "above" if dy < 0 else "below"
    if abs(dx) > 1.3 * abs(dy) and abs(dx) > 0.12:
        return "to the left of" if dx < 0 else "to the right of"
    return None


def _plan(rng: np.random.Generator, n_objects: int | None, shapes, colours, single: bool) -> list[dict]:
    """Groups of identical objects: [{shape, colour, size, count}], 1-3 objects in all."""
    if single:
        n_objects = 1
    total = n_objects or int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    groups: list[dict] = []
    left = total
    used: set[tuple[str, str, str]] = set()
    while left > 0:
        count = 1
        if left >= 2 and not single and rng.random() < 0.35:
            count = int(rng.integers(2, left + 1))
        for _ in range(20):
            key = (str(rng.choice(shapes)), str(rng.choice(colours)), str(rng.choice(vocab.SIZES)))
            if key not in used:
                break
        used.add(key)
        if count > 1 and key[2] == "large" and rng.random() < 0.6:
            key = (key[0], key[1], "small")  # groups of large objects rarely fit
            used.add(key)
        groups.append({"shape": key[0], "colour": key[1], "size": key[2], "count": count})
        left -= count
    return groups


def _place(rng: np.random.Generator, groups: list[dict], w: int, h: int) -> list[dict] | None:
    side = min(w, h)
    objects: list[dict] = []
    for gi, g in enumerate(groups):
        same_col = g["count"] > 1 and rng.random() < 0.6
        col0 = int(rng.integers(0, 3))
        for _ in range(g["count"]):
            lo, hi = SMALL_R if g["size"] == "small" else LARGE_R
            r = rng.uniform(lo, hi) * side
            ok = False
            for _attempt in range(60):
                col = col0 if same_col else int(rng.integers(0, 3))
                row = int(rng.integers(0, 3))
                x0, x1 = max(col / 3 * w, r + 1), min((col + 1) / 3 * w, w - r - 1)
                y0, y1 = max(row / 3 * h, r + 1), min((row + 1) / 3 * h, h - r - 1)
                if x0 >= x1 or y0 >= y1:
                    continue
                cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
                if all(math.hypot(cx - o["cx"], cy - o["cy"]) > r + o["r"] + 0.03 * side for o in objects):
                    ok = True
                    break
            if not ok:
                return None
            objects.append({
                "shape": g["shape"], "colour": g["colour"], "size": g["size"], "group": gi, "cx": cx, "cy": cy, "r": r,
            })
    return objects


def _style(rng: np.random.Generator, objects: list[dict], groups: list[dict]) -> None:
    """Rendering-only attributes (rotation, aspect, shade; one shade per group) drawn from the render rng."""
    shades = [jitter_colour(g["colour"], rng) for g in groups]
    for o in objects:
        lim = MAX_ROTATION[o["shape"]]
        o["rotation"] = float(rng.uniform(-lim, lim))
        o["aspect"] = float(rng.uniform(1.5, 2.3)) if o["shape"] == "rectangle" else 1.0
        o["rgb"] = shades[o["group"]]


def _bbox(ob: dict) -> list[int]:
    r = ob["r"]
    return [int(ob["cx"] - r), int(ob["cy"] - r), int(math.ceil(ob["cx"] + r)), int(math.ceil(ob["cy"] + r))]


def describe(objects: list[dict], groups: list[dict], bg: str, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(training captions, held-out-phrasing captions) for a scene."""
    for gi, g in enumerate(groups):
        g["position"] = _group_position([o for o in objects if o["group"] == gi])
    full = join_phrases([noun_phrase(g) for g in groups])
    plain = join_phrases([noun_phrase(g, size=False, position=False) for g in groups])
    sized = join_phrases([noun_phrase(g, position=False) for g in groups])
    phrases = [full, plain, sized]
    if len(objects) == 2 and len(groups) == 2:
        a, b = objects
        rel = relation(a, b)
        if rel:
            pa = noun_phrase(groups[a["group"]], size=False, position=False)
            pb = noun_phrase(groups[b["group"]], size=False, position=False)
            phrases.append(f"{pa} {rel} {pb}")
    caps = []
    for i, p in enumerate(phrases):
        tpl = vocab.TRAIN_TEMPLATES[int(rng.integers(len(vocab.TRAIN_TEMPLATES)))] if i else "{obj}"
        cap = tpl.format(obj=p, bg=bg)
        if cap.startswith("there is ") and p.split(" ", 1)[0] in ("two", "three"):
            cap = "there are " + cap[len("there is "):]
        caps.append(cap)
    held = [vocab.HELDOUT_TEMPLATES[int(rng.integers(len(vocab.HELDOUT_TEMPLATES)))].format(obj=p) for p in phrases]
    return caps, held


def generate_scene(
    seed: int,
    *,
    n_objects: int | None = None,
    single: bool = False,
    image_size: int | tuple[int, int] | None = None,
    shapes: tuple[str, ...] | list[str] | None = None,
    colours: tuple[str, ...] | list[str] | None = None,
    background_kind: str | None = None,
    supersample: int | None = None,
    blur: float | None = None,
    render_seed: int = 0,
) -> Scene:
    """A deterministic scene for ``seed``. Unset arguments are drawn from the seed.

    ``single=True`` gives one object (colour x shape classification); ``image_size`` is a side or
    (width, height); ``supersample`` 1 draws aliased edges, 2-4 anti-aliased ones. ``render_seed``
    re-draws only the rendering (background tint, shades, rotation, edges, blur) of the same layout, so
    captions and labels other than those rendering fields stay the same.
    """
    rng = np.random.default_rng(seed)
    rrng = np.random.default_rng([seed, 2, render_seed])
    shapes = tuple(shapes or vocab.SHAPES)
    colours = tuple(colours or vocab.COLOUR_NAMES)
    if image_size is None:
        side = int(rng.choice(IMAGE_SIZES))
        w = h = side
    elif isinstance(image_size, int):
        w = h = image_size
    else:
        w, h = image_size
    bg = background_kind or str(rng.choice(vocab.BACKGROUNDS, p=[0.5, 0.25, 0.25]))
    ss = supersample if supersample is not None else int(rrng.choice([1, 2, 3, 4], p=[0.2, 0.3, 0.25, 0.25]))
    bl = blur if blur is not None else (float(rrng.uniform(0.2, 0.7)) if rrng.random() < 0.25 else 0.0)
    if n_objects is not None and not 1 <= n_objects <= 3:
        raise ValueError("n_objects must be 1, 2 or 3")
    objects = None
    groups: list[dict] = []
    while objects is None:
        groups = _plan(rng, n_objects, shapes, colours, single)
        objects = _place(rng, groups, w, h)
    _style(rrng, objects, groups)
    canvas, tint = background(bg, w, h, rrng)
    img = draw_objects(canvas, objects, supersample=ss)
    if bl > 0:
        img = img.filter(ImageFilter.GaussianBlur(bl * max(w, h) / 64))
    side = min(w, h)
    labels = {
        "seed": seed,
        "width": w,
        "height": h,
        "background": bg,
        "background_rgb": list(tint),
        "supersample": ss,
        "blur": round(bl, 3),
        "objects": [
            {
                "shape": o["shape"],
                "colour": o["colour"],
                "size": o["size"],
                "position": region_of(o["cx"] / w, o["cy"] / h),
                "x": round(o["cx"] / w, 4),
                "y": round(o["cy"] / h, 4),
                "radius": round(o["r"] / side, 4),
                "rotation": round(o["rotation"], 2),
                "rgb": list(o["rgb"]),
                "bbox": _bbox(o),
                "group": o["group"],
            }
            for o in objects
        ],
    }
    for o, lab in zip(objects, labels["objects"], strict=True):
        o["position"] = lab["position"]
        o["x"], o["y"] = lab["x"], lab["y"]
    caps, held = describe(objects, groups, bg, np.random.default_rng([seed, 1]))
    labels["groups"] = [dict(g) for g in groups]
    labels["count"] = len(objects)
    labels["relations"] = [
        {"a": i, "b": j, "relation": rel}
        for i in range(len(objects))
        for j in range(len(objects))
        if i != j and (rel := relation(labels["objects"][i], labels["objects"][j]))
    ]
    return Scene(seed=seed, image=img, caption=caps[0], captions=caps, heldout_captions=held, labels=labels)
