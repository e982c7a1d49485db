"""Backgrounds of the "objects" theme: plain, gradients, noise, textures and procedural places.

``make_background(kind, w, h, rng)`` returns an RGB image. Places (sky, grass, water, road, sand,
indoor) have a caption phrase ("on the grass") and are the concepts' natural backgrounds when a
scene asks for object-background co-occurrence (``natural_place``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

PLAIN_KINDS: tuple[str, ...] = ("plain", "gradient", "noise", "texture")
PLACES: tuple[str, ...] = ("sky", "grass", "water", "road", "sand", "indoor")
KINDS: tuple[str, ...] = PLAIN_KINDS + PLACES
PLACE_PHRASES = {
    "sky": "in the sky", "grass": "on the grass", "water": "on the water", "road": "on the road",
    "sand": "on the sand", "indoor": "in a room",
}
PLACE_NAMES = {"sky": "sky", "grass": "grass", "water": "water", "road": "road", "sand": "sand", "indoor": "room"}


def natural_place(category: str, subcategory: str) -> str:
    """The place a concept is most often seen on (used when co-occurrence is asked for)."""
    if subcategory in ("aircraft", "sky and weather") or category == "weather":
        return "sky"
    if subcategory in ("boat", "sea animal"):
        return "water"
    if subcategory in ("land vehicle", "street furniture", "road"):
        return "road"
    if category in ("animal", "plant", "place") or subcategory in ("sports equipment",):
        return "grass"
    if subcategory in ("travel item",) or category in ("clothing",):
        return "sand"
    return "indoor"


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1] of shape (h, w): a coarse random grid upsampled bicubically."""
    g = rng.random((cells, cells)).astype(np.float32)
    im = Image.fromarray((g * 255).astype(np.uint8), "L").resize((w, h), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def _rgb(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _jit(rng: np.random.Generator, base: tuple[int, int, int], amount: float = 18) -> np.ndarray:
    return np.clip(np.asarray(base, dtype=np.float32) + rng.normal(0, amount, 3), 0, 255)


def make_background(kind: str, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """An RGB background of ``kind`` (see KINDS), drawn from ``rng``."""
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    if kind == "plain":
        c = rng.integers(0, 256, 3).astype(np.float32)
        return _rgb(np.broadcast_to(c, (h, w, 3)).copy())
    if kind == "gradient":
        a, b = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        t = (np.cos(ang) * xs + np.sin(ang) * ys)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return _rgb(a * (1 - t) + b * t)
    if kind == "noise":
        c = rng.integers(40, 216, 3).astype(np.float32)
        amp = rng.uniform(15, 50)
        n = _smooth_noise(rng, w, h, int(rng.integers(4, 16)))[..., None] - 0.5
        fine = rng.normal(0, amp / 3, (h, w, 3)).astype(np.float32)
        return _rgb(c + 2 * amp * n + fine)
    if kind == "texture":
        a, b = _jit(rng, tuple(rng.integers(0, 256, 3)), 0), _jit(rng, tuple(rng.integers(0, 256, 3)), 0)
        period = rng.uniform(6, 20)
        style = int(rng.integers(3))
        if style == 0:  # stripes at an angle
            ang = rng.uniform(0, np.pi)
            t = (np.sin((np.cos(ang) * xs * w + np.sin(ang) * ys * h) * 2 * np.pi / period) > 0)
        elif style == 1:  # checkerboard
            t = ((np.floor(xs * w / period) + np.floor(ys * h / period)) % 2) > 0
        else:  # dots
            dx, dy = np.mod(xs * w, period) - period / 2, np.mod(ys * h, period) - period / 2
            t = dx**2 + dy**2 < (period / 4) ** 2
        t = t.astype(np.float32)
        return _rgb(a * (1 - t) + b * t)
    if kind == "sky":
        top = _jit(rng, (70, 130, 220))
        bottom = _jit(rng, (175, 210, 245))
        arr = top * (1 - ys) + bottom * ys + np.zeros_like(xs)
        clouds = _smooth_noise(rng, w, h, int(rng.integers(3, 7)))
        cover = np.clip((clouds - rng.uniform(0.5, 0.8)) * 4, 0, 1)[..., None]
        return _rgb(arr * (1 - cover) + 245 * cover)
    if kind == "grass":
        base = _jit(rng, (70, 150, 50), 15)
        n = _smooth_noise(rng, w, h, 10)[..., None]
        blades = rng.normal(0, 18, (h, w, 1)).astype(np.float32)
        img = _rgb(base * (0.7 + 0.5 * n) + blades * np.array([0.5, 1.0, 0.3]))
        return img.filter(ImageFilter.GaussianBlur(0.4))
    if kind == "water":
        base = _jit(rng, (30, 100, 170), 15)
        freq = rng.uniform(8, 16)
        phase = rng.uniform(0, 2 * np.pi)
        waves = np.sin(ys * freq * np.pi * 2 + np.sin(xs * 6 + phase) * 1.5)
        n = _smooth_noise(rng, w, h, 8)[..., None]
        return _rgb(base + 25 * waves + 30 * (n - 0.5) * np.array([0.6, 0.8, 1.0]))
    if kind == "road":
        grey = float(rng.uniform(70, 110))
        arr = np.full((h, w, 3), grey, dtype=np.float32) + rng.normal(0, 8, (h, w, 1)).astype(np.float32)
        horizontal = rng.random() < 0.6
        pos = ys[:, :, 0] if horizontal else xs[:, :, 0]
        along = xs[:, :, 0] if horizontal else ys[:, :, 0]
        size = w if horizontal else h
        dash = (np.mod(along * size, 16) < 9) & (np.abs(pos - 0.5) < 0.025)
        arr[np.broadcast_to(dash, (h, w))] = (235, 220, 90) if rng.random() < 0.5 else (240, 240, 240)
        return _rgb(arr)
    if kind == "sand":
        base = _jit(rng, (225, 200, 140), 12)
        n = _smooth_noise(rng, w, h, 6)[..., None]
        return _rgb(base * (0.9 + 0.2 * n) + rng.normal(0, 9, (h, w, 1)).astype(np.float32))
    if kind == "indoor":
        wall = _jit(rng, tuple(int(v) for v in rng.choice([(230, 225, 210), (200, 215, 230), (235, 210, 200)])), 12)
        floor = _jit(rng, (150, 105, 65), 15)
        horizon = rng.uniform(0.55, 0.75)
        arr = np.where(ys < horizon, wall, floor) + np.zeros_like(xs)
        planks = (np.mod(xs * w + (ys * 40).astype(np.int32) * 0, 14) < 1) & (ys > horizon)
        arr = arr - 30 * planks
        return _rgb(arr + rng.normal(0, 4, (h, w, 1)).astype(np.float32))
    raise ValueError(f"unknown background {kind!r}; known: {', '.join(KINDS)}")
