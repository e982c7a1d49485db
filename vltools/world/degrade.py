"""Image degradations with levels, for quality-assessment ground truth.

``degrade(image, kind, level)``: level 0 returns the image unchanged; levels 1..5 get strictly
worse (further from the clean image). Noise is seeded so results are deterministic.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

KINDS: tuple[str, ...] = ("blur", "noise", "jpeg", "contrast", "pixelate")
MAX_LEVEL = 5


def degrade(image: Image.Image, kind: str, level: int, *, seed: int = 0) -> Image.Image:
    """``image`` degraded by ``kind`` (blur, noise, jpeg, contrast, pixelate) at ``level`` 0..5."""
    if kind not in KINDS:
        raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(KINDS)}")
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"level must be 0..{MAX_LEVEL}")
    img = image.convert("RGB")
    if level == 0:
        return img.copy()
    side = max(img.size)
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(radius=0.5 * level * side / 64))
    if kind == "noise":
        rng = np.random.default_rng(seed)
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 12.0 * level, size=(img.size[1], img.size[0], 3))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=(60, 30, 15, 8, 3)[level - 1])
        buf.seek(0)
        return Image.open(buf).convert("RGB")
    if kind == "contrast":
        return ImageEnhance.Contrast(img).enhance(1.0 - 0.18 * level)
    # pixelate: down to 1/(level+1) of the size and back up with nearest neighbour
    w, h = img.size
    f = level + 1
    small = img.resize((max(1, w // f), max(1, h // f)), Image.BOX)
    return small.resize((w, h), Image.NEAREST)
