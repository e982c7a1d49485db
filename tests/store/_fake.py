"""A tiny deterministic stand-in for the text encoder and CLIP (16-d vectors from a hash of the input),
so that store tests call the real tools without loading a model."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

DIM = 16


def vec(text: str) -> np.ndarray:
    v = np.random.default_rng(zlib.crc32(text.encode("utf-8", "replace"))).standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def vecs(texts: list[str]) -> np.ndarray:
    return np.stack([vec(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


class FakeEncoder:
    """The text-encoder and CLIP methods the collection tools use."""

    spec = "fake"

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: Any = None) -> np.ndarray:
        return vecs(texts)

    def encode_texts(self, texts: list[str], *, batch_size: int = 64, **_: Any) -> tuple[np.ndarray, list[None]]:
        return vecs(texts), [None] * len(texts)

    def encode_texts_detailed(self, texts: list[str], **_: Any) -> tuple[np.ndarray, list[None]]:
        return vecs(texts), [None] * len(texts)

    def fit_notices(self, *_: Any) -> list[str]:
        return []

    def encode_images(self, images: list[Any], **_: Any) -> np.ndarray:
        return vecs([str(getattr(im, "size", im)) for im in images])


FAKE = FakeEncoder()


def install(monkeypatch: Any) -> None:
    """Make every Context hand out the fake encoder for text and CLIP specs."""
    from vltools.core.context import Context

    monkeypatch.setattr(Context, "text", lambda self, spec=None: FAKE)
    monkeypatch.setattr(Context, "clip", lambda self, spec=None: FAKE)
