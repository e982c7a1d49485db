"""Still scenes of the "objects" theme: 1-5 named everyday objects on varied backgrounds.

``generate_object_scene(seed)`` is deterministic by its arguments. Objects (concepts of
`vltools.world.concept_table`) are placed, scaled, rotated and sometimes overlap (later ones in front;
occlusion recorded); backgrounds are plain, gradients, noise, textures or places (sky, grass,
water, road, sand, indoor) with controllable object-background co-occurrence; tints on request.

Labels per object: concept, category, box (amodal and visible), mask (full-canvas run-length
encoding, see `rle_encode`), size, position (3x3 region and centre), rotation, scale, tint,
occlusion (visible fraction, occluders). Per scene: captions from many templates (counts,
positions, relations, backgrounds) and question-answer pairs. Held-out concepts are used only when
``split`` asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from vltools.world.backgrounds import KINDS, PLACE_NAMES, PLACE_PHRASES, PLACES, make_background, natural_place
from vltools.world.concept_table import Split, concepts, rgba
from vltools.world.degrade import degrade

TINTS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30), "orange": (255, 140, 0), "yellow": (245, 220, 0), "green": (20, 170, 40),
    "blue": (30, 70, 230), "purple": (140, 40, 190), "pink": (255, 110, 190), "brown": (140, 80, 40),
    "gray": (128, 128, 128), "black": (25, 25, 25),
}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
POSITIONS: tuple[str, ...] = (
    "top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right",
)
TEMPLATES: tuple[str, ...] = (
    "{obj}", "a photo of {obj}", "a picture of {obj}", "an image of {obj}", "there is {obj}",
    "a drawing of {obj}", "this picture shows {obj}", "a scene with {obj}", "an illustration of {obj}",
    "a close-up of {obj}", "{obj} in the picture", "a small picture of {obj}",
)
HELDOUT_TEMPLATES: tuple[str, ...] = (
    "a snapshot containing {obj}", "we can see {obj} here", "look, {obj}!", "an emoji-style rendering of {obj}",
)
IMAGE_SIZES = (96, 112, 128)


@dataclass
class ObjectScene:
    """A generated still image of the objects theme with its captions, QA pairs and labels."""

    seed: int
    image: Image.Image
    caption: str
    captions: list[str]
    heldout_captions: list[str]
    qa: list[dict[str, str]]
    labels: dict[str, Any] = field(default_factory=dict)
    masks: list[np.ndarray] = field(default_factory=list)  # full (amodal) boolean masks, one per object
    visible_masks: list[np.ndarray] = field(default_factory=list)


# -- masks ------------------------------------------------------------------------------------
def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Run-length code of a boolean (h, w) mask in row-major order, starting with a run of 0s."""
    flat = np.asarray(mask, dtype=bool).ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of `rle_encode`."""
    h, w = rle["size"]
    vals = np.zeros(len(rle["counts"]), dtype=bool)
    vals[1::2] = True
    return np.repeat(vals, rle["counts"]).reshape(h, w)


def mask_bbox(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, x1, y1] (x1, y1 exclusive) of a boolean mask, or None if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def region_of(x: float, y: float) -> str:
    col = 0 if x < 1 / 3 else (2 if x > 2 / 3 else 1)
    row = 0 if y < 1 / 3 else (2 if y > 2 / 3 else 1)
    return POSITIONS[row * 3 + col]


def position_phrase(pos: str) -> str:
    if pos == "centre":
        return "in the centre"
    if pos in ("left", "right"):
        return f"on the {pos}"
    if pos in ("top", "bottom"):
        return f"at the {pos}"
    return f"in the {pos}"


def article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def is_plural(name: str) -> bool:
    """True for concepts named in the plural or as a mass ("fireworks", "sushi"): no "a"."""
    return plural_of(name) == name


def indefinite(phrase: str, name: str) -> str:
    """'a dog', 'an apple', 'some fireworks' (``phrase`` ends with the concept ``name``)."""
    return f"some {phrase}" if is_plural(name) else f"{article(phrase)} {phrase}"


def exists_question(name: str) -> str:
    return f"Are there any {name}?" if is_plural(name) else f"Is there {article(name)} {name}?"


def plural_of(name: str) -> str:
    """The concept's plural ("dogs", "mice", "fireworks")."""
    from vltools.world.concept_table import concept

    return concept(name)["plural"]


def relation(a: dict, b: dict) -> str | None:
    """Spatial relation of object a to object b ('above', 'below', 'to the left of', 'to the right of')."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dy) > 1.3 * abs(dx) and abs(dy) > 0.15:
        return "above" if dy < 0 else "below"
    if abs(dx) > 1.3 * abs(dy) and abs(dx) > 0.15:
        return "to the left of" if dx < 0 else "to the right of"
    return None


# -- drawing ----------------------------------------------------------------------------------
def tinted(img: Image.Image, tint: str | None) -> Image.Image:
    """``img`` (RGBA) recoloured to ``tint`` (its luminance times the tint colour), alpha kept."""
    if not tint:
        return img
    arr = np.asarray(img, dtype=np.float32)
    lum = (0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]) / 255.0
    lum = 0.35 + 0.8 * lum  # keep detail but let the tint dominate
    col = np.asarray(TINTS[tint], dtype=np.float32)
    rgb = np.clip(lum[..., None] * col, 0, 255)
    out = np.concatenate([rgb, arr[..., 3:]], axis=-1).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


def object_sprite(name: str, side: int, rotation: float, tint: str | None, flip: bool = False) -> Image.Image:
    """The concept's RGBA image scaled to ``side`` px, optionally mirrored, tinted and rotated (canvas expands)."""
    im = tinted(rgba(name), tint)
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = im.resize((side, side), Image.LANCZOS if side < 64 else Image.BICUBIC)
    if rotation:
        im = im.rotate(rotation, resample=Image.BICUBIC, expand=True)
    return im


def paste(canvas: Image.Image, sprite: Image.Image, x0: int, y0: int) -> np.ndarray:
    """Alpha-composite ``sprite`` at (x0, y0) (may lie partly outside); returns its full-canvas mask (alpha>=128)."""
    w, h = canvas.size
    mask = np.zeros((h, w), dtype=bool)
    alpha = np.asarray(sprite.getchannel("A")) >= 128
    sx0, sy0 = max(0, -x0), max(0, -y0)
    sx1, sy1 = min(sprite.width, w - x0), min(sprite.height, h - y0)
    if sx1 > sx0 and sy1 > sy0:
        mask[y0 + sy0 : y0 + sy1, x0 + sx0 : x0 + sx1] = alpha[sy0:sy1, sx0:sx1]
        canvas.alpha_composite(sprite.crop((sx0, sy0, sx1, sy1)), (x0 + sx0, y0 + sy0))
    return mask


# -- planning ---------------------------------------------------------------------------------
def _pool(split: Split, names: list[str] | None) -> list[dict[str, Any]]:
    rows = concepts(split)
    if names is not None:
        by = {r["name"]: r for r in concepts("all")}
        unknown = [n for n in names if n not in by]
        if unknown:
            raise ValueError(f"unknown concepts: {', '.join(unknown[:5])}")
        rows = [by[n] for n in names]
    if not rows:
        raise ValueError("no concepts to draw from")
    return rows


def _plan(rng: np.random.Generator, pool: list[dict], n: int, repeat_p: float) -> list[dict]:
    chosen: list[dict] = []
    while len(chosen) < n:
        if chosen and rng.random() < repeat_p:
            chosen.append(chosen[int(rng.integers(len(chosen)))])
            continue
        for _ in range(20):
            c = pool[int(rng.integers(len(pool)))]
            # distinct concepts are also not related (no "cat face" next to "cat": captions stay unambiguous)
            if all(c["name"] != o["name"] and c["name"] not in o["related"] for o in chosen) or len(pool) < 2:
                break
        chosen.append(c)
    return chosen


def generate_object_scene(
    seed: int,
    *,
    n_objects: int | None = None,
    split: Split = "train",
    concept_names: list[str] | None = None,
    image_size: int | tuple[int, int] | None = None,
    background: str | None = None,
    cooccurrence: float = 0.3,
    tint: str | bool | None = None,
    tint_p: float = 0.0,
    overlap_p: float = 0.2,
    rotate_p: float = 0.4,
    scale: tuple[float, float] | None = None,
    repeat_p: float = 0.15,
    blur: float | None = None,
    degradation: str | None = None,
    degradation_level: int = 0,
) -> ObjectScene:
    """A deterministic scene for ``seed``. Unset arguments are drawn from the seed.

    ``split`` picks the concept pool ("train", "heldout" or "all"); ``concept_names`` fixes the
    concepts instead (in order; ``n_objects`` defaults to their number). ``background`` is one of
    `backgrounds.KINDS`; when unset, with probability ``cooccurrence`` it is the first object's
    natural place, otherwise drawn uniformly. ``tint`` = a colour name tints every object, True
    tints each with a random colour; ``tint_p`` tints each object with that probability.
    ``overlap_p`` lets an object overlap earlier ones (it is drawn in front; occlusion recorded).
    ``scale`` = (min, max) object side as a fraction of the image side.
    """
    rng = np.random.default_rng([seed, 7001])
    if n_objects is not None and not 1 <= n_objects <= 5:
        raise ValueError("n_objects must be 1..5")
    if tint not in (None, True, False) and tint not in TINTS:
        raise ValueError(f"unknown tint {tint!r}; known: {', '.join(TINTS)}")
    if background is not None and background not in KINDS:
        raise ValueError(f"unknown background {background!r}; known: {', '.join(KINDS)}")
    if image_size is None:
        w = h = int(rng.choice(IMAGE_SIZES))
    elif isinstance(image_size, int):
        w = h = image_size
    else:
        w, h = image_size
    side = min(w, h)
    if concept_names is not None:
        chosen = _pool(split, concept_names)
        n = len(chosen)
        if n_objects is not None and n_objects != n:
            raise ValueError("n_objects differs from the number of concept_names")
        if not 1 <= n <= 5:
            raise ValueError("1..5 concept_names")
    else:
        n = n_objects or int(rng.choice([1, 2, 3, 4, 5], p=[0.35, 0.27, 0.2, 0.11, 0.07]))
        chosen = _plan(rng, _pool(split, None), n, repeat_p)
    if background is None:
        first = chosen[0]
        if rng.random() < cooccurrence:
            background = natural_place(first["category"], first["subcategory"])
        else:
            background = str(KINDS[int(rng.integers(len(KINDS)))])
    lo, hi = scale or {1: (0.35, 0.75), 2: (0.28, 0.5), 3: (0.24, 0.42), 4: (0.2, 0.36), 5: (0.18, 0.32)}[n]
    canvas = make_background(background, w, h, rng).convert("RGBA")
    objects: list[dict[str, Any]] = []
    masks: list[np.ndarray] = []
    boxes: list[tuple[float, float, float, float]] = []
    for c in chosen:
        s = int(round(rng.uniform(lo, hi) * side))
        rot = float(rng.uniform(-30, 30)) if rng.random() < rotate_p else 0.0
        flip = bool(rng.random() < 0.3)
        if tint is True or (tint is None and tint_p > 0 and rng.random() < tint_p):
            t = str(list(TINTS)[int(rng.integers(len(TINTS)))])
        else:
            t = tint if isinstance(tint, str) else None
        sprite = object_sprite(c["name"], s, rot, t, flip)
        may_overlap = rng.random() < overlap_p
        best = None
        for _attempt in range(40):
            x0 = int(rng.integers(0, max(1, w - sprite.width + 1)))
            y0 = int(rng.integers(0, max(1, h - sprite.height + 1)))
            box = (x0, y0, x0 + sprite.width, y0 + sprite.height)
            inter = max((_overlap(box, b) for b in boxes), default=0.0)
            if best is None or inter < best[0]:
                best = (inter, x0, y0)
            if inter == 0.0 or (may_overlap and inter < 0.45):
                break
        _, x0, y0 = best
        boxes.append((x0, y0, x0 + sprite.width, y0 + sprite.height))
        m = paste(canvas, sprite, x0, y0)
        masks.append(m)
        objects.append({"concept": c["name"], "category": c["category"], "subcategory": c["subcategory"],
                        "split": c["split"], "tint": t, "rotation": round(rot, 2), "flipped": flip,
                        "scale": round(s / side, 4)})
    img = canvas.convert("RGB")
    bl = blur if blur is not None else (float(rng.uniform(0.2, 0.6)) if rng.random() < 0.15 else 0.0)
    if bl > 0:
        img = img.filter(ImageFilter.GaussianBlur(bl * side / 96))
    if degradation:
        img = degrade(img, degradation, degradation_level, seed=seed)
    visible = []
    for i, m in enumerate(masks):
        front = np.zeros_like(m)
        occluders = []
        for j in range(i + 1, len(masks)):
            if (m & masks[j]).any():
                occluders.append(j)
                front |= masks[j]
        vis = m & ~front
        visible.append(vis)
        area = int(m.sum())
        bbox = mask_bbox(m) or [0, 0, 0, 0]
        cx, cy = (bbox[0] + bbox[2]) / 2 / w, (bbox[1] + bbox[3]) / 2 / h
        objects[i].update({
            "bbox": bbox, "visible_bbox": mask_bbox(vis), "area": area, "visible_fraction": round(
                float(vis.sum()) / max(area, 1), 4), "occluded_by": occluders,
            "x": round(cx, 4), "y": round(cy, 4), "position": region_of(cx, cy),
            "size": "large" if objects[i]["scale"] >= 0.4 else "small",
            "mask": rle_encode(m),
        })
    labels: dict[str, Any] = {
        "theme": "objects", "seed": seed, "width": w, "height": h, "background": background,
        "place": background if background in PLACES else None, "split": split, "blur": round(bl, 3),
        "objects": objects, "count": len(objects),
    }
    if degradation:
        labels["degradation"] = {"kind": degradation, "level": degradation_level}
    labels["relations"] = [
        {"a": i, "b": j, "relation": rel}
        for i in range(n) for j in range(n) if i != j and (rel := relation(objects[i], objects[j]))
    ]
    crng = np.random.default_rng([seed, 7002])
    caps, held = describe(objects, background, crng)
    qa = questions(objects, background, split, crng)
    return ObjectScene(seed=seed, image=img, caption=caps[0], captions=caps, heldout_captions=held, qa=qa,
                       labels=labels, masks=masks, visible_masks=visible)


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection area over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(small, 1)


# -- language ---------------------------------------------------------------------------------
def groups_of(objects: list[dict]) -> list[dict]:
    """Objects grouped by (concept, tint), in first-appearance order: [{concept, tint, count, members}]."""
    out: dict[tuple, dict] = {}
    for i, o in enumerate(objects):
        key = (o["concept"], o["tint"])
        g = out.setdefault(key, {"concept": o["concept"], "tint": o["tint"], "count": 0, "members": []})
        g["count"] += 1
        g["members"].append(i)
    return list(out.values())


def noun_phrase(g: dict, objects: list[dict] | None = None, *, position: bool = False, tint: bool = True) -> str:
    """'a dog', 'two purple lemons', 'a car on the left'."""
    name = g["concept"]
    n = g["count"]
    noun = name if n == 1 else plural_of(name)
    head = f"{g['tint']} {noun}" if tint and g["tint"] else noun
    text = indefinite(head, name) if n == 1 else f"{NUMBER_WORDS[n]} {head}"
    if position and objects is not None:
        regions = {objects[i]["position"] for i in g["members"]}
        if len(regions) == 1:
            text += " " + position_phrase(regions.pop())
    return text


def join_phrases(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def describe(objects: list[dict], background: str, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(captions, held-out-phrasing captions). Caption 0 lists every object with its position."""
    groups = groups_of(objects)
    full = join_phrases([noun_phrase(g, objects, position=True) for g in groups])
    plain = join_phrases([noun_phrase(g) for g in groups])
    phrases = [full, plain]
    caps = [full]
    tpl = TEMPLATES[1 + int(rng.integers(len(TEMPLATES) - 1))]
    caps.append(tpl.format(obj=plain))
    if background in PLACE_PHRASES:
        caps.append(f"{plain} {PLACE_PHRASES[background]}")
    n = len(objects)
    if n > 1:
        word = NUMBER_WORDS[n]
        caps.append(f"{word} objects: {plain}")
    if len(groups) >= 2:
        i, j = (int(v) for v in rng.choice(len(groups), 2, replace=False))
        gi, gj = groups[i], groups[j]
        if gi["count"] == 1 and gj["count"] == 1:
            rel = relation(objects[gi["members"][0]], objects[gj["members"][0]])
            if rel:
                caps.append(f"{noun_phrase(gi)} {rel} {noun_phrase(gj)}")
    for g in groups:  # one short caption per group: what a single-concept text query looks like
        caps.append(noun_phrase(g))
    fixed = []
    for c in caps:
        if c.startswith("there is ") and c.split(" ", 3)[2] in NUMBER_WORDS.values():
            c = "there are " + c[len("there is "):]
        fixed.append(c)
    held = [HELDOUT_TEMPLATES[int(rng.integers(len(HELDOUT_TEMPLATES)))].format(obj=p) for p in phrases]
    return fixed, held


def questions(objects: list[dict], background: str, split: Split, rng: np.random.Generator) -> list[dict[str, str]]:
    """Question-answer pairs with exact answers: is there / how many / what is on the left / what colour / where."""
    qa: list[dict[str, str]] = []
    groups = groups_of(objects)
    present = {o["concept"] for o in objects}
    related = set()
    for o in objects:
        from vltools.world.concept_table import concept

        related.update(concept(o["concept"])["related"])
    for g in groups[:2]:
        qa.append({"type": "exists", "question": exists_question(g["concept"]), "answer": "yes"})
    pool = [r["name"] for r in concepts(split if split != "all" else "all")]
    for _ in range(20):
        absent = pool[int(rng.integers(len(pool)))]
        if absent not in present and absent not in related:
            qa.append({"type": "exists", "question": exists_question(absent), "answer": "no"})
            break
    qa.append({"type": "count", "question": "How many objects are there?", "answer": str(len(objects))})
    by_concept: dict[str, int] = {}
    for o in objects:
        by_concept[o["concept"]] = by_concept.get(o["concept"], 0) + 1
    for name, k in list(by_concept.items())[:2]:
        qa.append({"type": "count", "question": f"How many {plural_of(name)} are there?", "answer": str(k)})
    if len(objects) >= 2:
        xs = sorted(range(len(objects)), key=lambda i: objects[i]["x"])
        if objects[xs[1]]["x"] - objects[xs[0]]["x"] > 0.15:
            qa.append({"type": "left", "question": "What is on the left?", "answer": objects[xs[0]]["concept"]})
        if objects[xs[-1]]["x"] - objects[xs[-2]]["x"] > 0.15:
            qa.append({"type": "right", "question": "What is on the right?", "answer": objects[xs[-1]]["concept"]})
    for g in groups:
        if g["tint"] and by_concept[g["concept"]] == 1:
            qa.append({"type": "colour", "question": f"What colour is the {g['concept']}?", "answer": g["tint"]})
    for g in groups:
        if g["count"] == 1 and by_concept[g["concept"]] == 1:
            pos = objects[g["members"][0]]["position"]
            qa.append({"type": "where", "question": f"Where is the {g['concept']}?", "answer": position_phrase(pos)})
    if background in PLACE_NAMES:
        qa.append({"type": "place", "question": "Where was this picture taken?", "answer": PLACE_NAMES[background]})
    return qa
