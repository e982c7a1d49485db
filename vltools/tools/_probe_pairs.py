"""World image sets for `probe.concept_association` (P53) and `probe.fine_grained` (P25, MMVP-style).

Built from the objects theme's sprites so that exactly one factor changes: a tint that contradicts
an object's typical colour, a second object of another colour, or (for pairs) count, orientation,
position or colour.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

SIZE = 112


@lru_cache(maxsize=1)
def typical_colours(min_share: float = 0.45) -> dict[str, str]:
    """Concept -> its dominant chromatic palette colour: saturated sprite pixels (grey, white and black
    ignored) nearest that colour make up >= min_share of the opaque pixels."""
    from vltools.world.concept_table import concepts, rgba
    from vltools.world.objects import TINTS

    names = [n for n in TINTS if n not in ("gray", "black")]
    pal = np.asarray([TINTS[n] for n in names], dtype=np.float32)
    out = {}
    for row in concepts("all"):
        arr = np.asarray(rgba(row["name"]), dtype=np.float32)
        px = arr[arr[..., 3] >= 128][:, :3]
        if len(px) < 50:
            continue
        hi, lo = px.max(1), px.min(1)
        chroma = px[(hi - lo) / np.maximum(hi, 1) >= 0.35]
        chroma = chroma[chroma.max(1) >= 60]
        if len(chroma) < min_share * len(px):
            continue
        nearest = ((chroma[:, None, :] - pal[None]) ** 2).sum(-1).argmin(1)
        counts = np.bincount(nearest, minlength=len(names))
        best = int(counts.argmax())
        if counts[best] >= min_share * len(px):
            out[row["name"]] = names[best]
    return out


def _canvas(rng: np.random.Generator) -> Any:
    from PIL import Image

    grey = int(rng.integers(200, 245))
    return Image.new("RGBA", (SIZE, SIZE), (grey, grey, grey, 255))


def compose(items: list[tuple[str, float, float, float, str | None, float]], seed: int) -> Any:
    """A plain-background image with sprites (name, cx, cy, side fraction, tint, rotation degrees)."""
    from vltools.world.objects import object_sprite, paste

    rng = np.random.default_rng([seed, 5301])
    canvas = _canvas(rng)
    for name, cx, cy, frac, tint, rot in items:
        sp = object_sprite(name, int(frac * SIZE), rot, tint)
        paste(canvas, sp, int(cx * SIZE - sp.width / 2), int(cy * SIZE - sp.height / 2))
    return canvas.convert("RGB")


def pick(names: list[str], n: int, rng: np.random.Generator) -> list[str]:
    idx = rng.permutation(len(names))[:n]
    return [names[int(i)] for i in idx]


def fine_grained_pairs(factor: str, names: list[str], seed: int) -> list[dict[str, Any]]:
    """One MMVP-style pair per concept: two images differing only in ``factor`` and their two statements."""
    from vltools.world.objects import is_plural, plural_of

    rng = np.random.default_rng([seed, 2501, len(factor)])
    out = []
    for i, c in enumerate(names):
        s = seed * 1000 + i
        if factor == "count":
            a = compose([(c, 0.5, 0.5, 0.45, None, 0)], s)
            b = compose([(c, 0.28, 0.5, 0.4, None, 0), (c, 0.72, 0.5, 0.4, None, 0)], s)
            if is_plural(c):
                ta, tb = f"one group of {c}", f"two groups of {c}"
            else:
                ta, tb = f"one {c}", f"two {plural_of(c)}"
        elif factor == "orientation":
            a = compose([(c, 0.5, 0.5, 0.55, None, 0)], s)
            b = compose([(c, 0.5, 0.5, 0.55, None, 180)], s)
            ta, tb = f"an upright {c}", f"an upside-down {c}"
        elif factor == "position":
            a = compose([(c, 0.27, 0.5, 0.42, None, 0)], s)
            b = compose([(c, 0.73, 0.5, 0.42, None, 0)], s)
            ta, tb = f"a {c} on the left", f"a {c} on the right"
        elif factor == "colour":
            k1, k2 = pick(["red", "blue", "green", "yellow", "purple", "orange"], 2, rng)
            a = compose([(c, 0.5, 0.5, 0.55, k1, 0)], s)
            b = compose([(c, 0.5, 0.5, 0.55, k2, 0)], s)
            ta, tb = f"a {k1} {c}", f"a {k2} {c}"
        else:
            raise ValueError(factor)
        out.append({"image_a": a, "image_b": b, "text_a": ta, "text_b": tb, "factor": factor, "concept": c})
    return out
