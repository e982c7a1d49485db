"""Drawing: shape outlines, backgrounds and colour jitter with numpy + PIL.

Shapes are polygons in unit coordinates (extent about 1 around the centre), scaled, rotated and
drawn on a supersampled canvas that is then downsampled (supersampling 1 = aliased edges), so
edges, sizes and tints vary the way they do between different drawing programs.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from vltools.world.vocab import COLOURS


def _regular(n: int, start: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [(math.cos(start + 2 * math.pi * k / n), math.sin(start + 2 * math.pi * k / n)) for k in range(n)]


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    out = []
    for k in range(2 * points):
        rad = 1.0 if k % 2 == 0 else inner
        a = -math.pi / 2 + math.pi * k / points
        out.append((rad * math.cos(a), rad * math.sin(a)))
    return out


def _cross(arm: float = 0.36) -> list[tuple[float, float]]:
    a, b = arm, 1.0
    return [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]


def _heart(n: int = 60) -> list[tuple[float, float]]:
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        pts.append((x / 17.0, (y + 2.5) / 16.0))
    return pts


def shape_polygon(shape: str, aspect: float = 1.0) -> list[tuple[float, float]]:
    """Unit polygon of ``shape`` (extent ~1); ``aspect`` stretches rectangles horizontally."""
    if shape == "circle":
        return _regular(48)
    if shape == "square":
        return [(-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82)]
    if shape == "rectangle":
        h = 0.95 / aspect
        return [(-0.95, -h), (0.95, -h), (0.95, h), (-0.95, h)]
    if shape == "triangle":
        return [(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)]
    if shape == "star":
        return _star()
    if shape == "cross":
        return _cross()
    if shape == "hexagon":
        return _regular(6, start=0.0)
    if shape == "heart":
        return _heart()
    raise ValueError(f"unknown shape {shape!r}")


# How far each shape may be rotated (degrees) while keeping its name honest.
MAX_ROTATION = {
    "circle": 180, "square": 15, "rectangle": 20, "triangle": 20, "star": 36, "cross": 20, "hexagon": 30, "heart": 20,
}


def jitter_colour(name: str, rng: np.random.Generator, amount: int = 22) -> tuple[int, int, int]:
    """A shade of colour ``name``: the base RGB plus bounded noise (green spans dark to lime)."""
    base = np.array(COLOURS[name], dtype=float)
    if name == "green":
        base[1] = rng.uniform(120, 255)
    if name == "gray":
        v = rng.uniform(105, 155)
        return (int(v), int(v), int(v))
    if name == "black":
        v = rng.uniform(0, 40)
        return (int(v), int(v), int(v))
    rgb = base + rng.uniform(-amount, amount, size=3)
    return tuple(int(c) for c in np.clip(rgb, 0, 255))  # type: ignore[return-value]


def background(kind: str, w: int, h: int, rng: np.random.Generator) -> tuple[Image.Image, tuple[int, int, int]]:
    """A light background of ``kind`` (plain, striped, noisy) and its mean tint."""
    tint = rng.uniform(222, 255, size=3)
    if kind == "plain":
        arr = np.broadcast_to(tint, (h, w, 3)).copy()
    elif kind == "striped":
        other = np.clip(tint - rng.uniform(12, 35, size=3), 180, 255)
        period = rng.uniform(4, 12) * max(w, h) / 64
        angle = rng.choice([0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4])
        yy, xx = np.mgrid[0:h, 0:w]
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) / period
        mask = (np.floor(phase) % 2 == 0)[..., None]
        arr = np.where(mask, tint, other)
    elif kind == "noisy":
        arr = tint + rng.normal(0, rng.uniform(5, 14), size=(h, w, 3))
    else:
        raise ValueError(f"unknown background {kind!r}")
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB"), tuple(int(c) for c in tint)  # type: ignore[return-value]


def draw_objects(
    canvas: Image.Image,
    objects: list[dict],
    *,
    supersample: int = 2,
    alpha: list[float] | None = None,
    colours: list[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """Draw objects (dicts with shape, cx, cy, r in pixels, rotation, aspect, rgb) onto ``canvas``.

    ``alpha`` (0..1 per object) fades objects in and out; ``colours`` overrides their RGB.
    """
    w, h = canvas.size
    s = max(1, int(supersample))
    big = canvas.resize((w * s, h * s), Image.NEAREST) if s > 1 else canvas.copy()
    for i, ob in enumerate(objects):
        a = 1.0 if alpha is None else float(alpha[i])
        if a <= 0.0:
            continue
        rgb = colours[i] if colours is not None else ob["rgb"]
        poly = shape_polygon(ob["shape"], ob.get("aspect", 1.0))
        rot = math.radians(ob.get("rotation", 0.0))
        c, sn = math.cos(rot), math.sin(rot)
        pts = [
            ((ob["cx"] + ob["r"] * (x * c - y * sn)) * s, (ob["cy"] + ob["r"] * (x * sn + y * c)) * s) for x, y in poly
        ]
        if a >= 1.0:
            ImageDraw.Draw(big).polygon(pts, fill=tuple(rgb))
        else:
            layer = Image.new("L", big.size, 0)
            ImageDraw.Draw(layer).polygon(pts, fill=int(round(255 * a)))
            big.paste(Image.new("RGB", big.size, tuple(rgb)), (0, 0), layer)
    if s > 1:
        big = big.resize((w, h), Image.BOX)
    return big
