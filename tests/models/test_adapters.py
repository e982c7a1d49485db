"""An adapter is applied only to the model it was trained on, image tower included."""

from __future__ import annotations

import numpy as np

from vltools.models.adapters import Adapter, fingerprint


class _Backend:
    """A CLIP stand-in whose text tower is fixed (like the demo's locked MiniLM) and whose image
    tower is a random projection of the pixels chosen by ``seed``."""

    spec = "demo"

    def __init__(self, seed: int) -> None:
        self.proj = np.random.default_rng(seed).normal(size=(64 * 64 * 3, 8))

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, None]:
        rng = np.random.default_rng(7)
        emb = rng.normal(size=(len(texts), 8))
        return emb / np.linalg.norm(emb, axis=1, keepdims=True), None

    def encode_images(self, images: list) -> np.ndarray:
        x = np.stack([np.asarray(im, dtype=np.float64).ravel() / 255 for im in images]) @ self.proj
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_retrained_image_tower_behind_the_same_text_tower_is_refused():
    trained_on = _Backend(seed=1)
    adapter = Adapter(name="t", spec="demo", u=np.zeros((8, 2)), v=np.zeros((2, 8)),
                      fingerprint=fingerprint(trained_on))
    assert adapter.matches(trained_on)
    assert not adapter.matches(_Backend(seed=2))
