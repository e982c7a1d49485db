"""Small trained adapters on top of a frozen CLIP's embeddings (issue 12): the quality-aware
alignment of `image.quality` (P12) and the ranking adapter of `image.rank_by_text` (P02).

Each is an ``.npz`` under ``vltools/models/weights/`` (read with importlib.resources) written by a
script in ``scripts/``: a residual low-rank map of image embeddings ``f + (f @ U) @ V``, the CLIP
spec it was trained for, and a fingerprint of that model (its embeddings of fixed probe texts and
probe images: both towers, because the demo CLIP's text tower is locked and a retrained image tower
would pass a text-only check) so an adapter is never applied to a model that has changed since.
"""

from __future__ import annotations

import importlib.resources
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PROBE_TEXTS = ["a photo of a dog", "a blurry picture", "a red circle"]
_cache: dict[str, Adapter | None] = {}
_lock = threading.Lock()


@dataclass
class Adapter:
    """A residual low-rank map of L2-normalised image embeddings, plus named extra arrays."""

    name: str
    spec: str
    u: np.ndarray
    v: np.ndarray
    fingerprint: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def apply(self, feats: np.ndarray) -> np.ndarray:
        f = np.asarray(feats, dtype=np.float64)
        out = f + (f @ self.u) @ self.v
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def matches(self, backend: Any) -> bool:
        """True when ``backend`` is the model this adapter was trained on (same spec, same weights)."""
        if backend.spec != self.spec:
            return False
        fp = fingerprint(backend)
        return fp.shape == self.fingerprint.shape and bool(np.min(np.sum(fp * self.fingerprint, axis=1)) > 0.999)


def _probe_images() -> list[Any]:
    """Three fixed 64-px images (a red disc, a grey ramp, seeded noise), drawn here, not loaded."""
    from PIL import Image, ImageDraw

    disc = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(disc).ellipse((12, 12, 52, 52), fill=(220, 30, 30))
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1)), "L").convert("RGB")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    return [disc, ramp, noise]


def fingerprint(backend: Any) -> np.ndarray:
    """The model's embeddings of the probe texts and probe images, one L2-normalised row each."""
    emb, _ = backend.encode_texts(PROBE_TEXTS)
    img = np.asarray(backend.encode_images(_probe_images()), dtype=np.float32)
    rows = np.concatenate([np.asarray(emb, dtype=np.float32), img])
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def load_adapter(name: str) -> Adapter | None:
    """The committed adapter ``name`` (file ``weights/{name}.npz``), or None if there is none."""
    with _lock:
        if name in _cache:
            return _cache[name]
        res = importlib.resources.files("vltools.models").joinpath("weights", f"{name}.npz")
        adapter = None
        if res.is_file():
            with res.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            adapter = Adapter(
                name=name, spec=str(arrays.pop("spec")), u=arrays.pop("u").astype(np.float64),
                v=arrays.pop("v").astype(np.float64), fingerprint=arrays.pop("fingerprint"), extra=arrays,
            )
        _cache[name] = adapter
        return adapter


def save_adapter(path: Any, spec: str, u: np.ndarray, v: np.ndarray, fp: np.ndarray, **extra: Any) -> None:
    """Write an adapter file (used by the training scripts)."""
    np.savez_compressed(path, spec=np.array(spec), u=u.astype(np.float32), v=v.astype(np.float32),
                        fingerprint=fp.astype(np.float32), **extra)
