"""Shared plumbing of the image-understanding-II tools: check every path before a model loads,
decode safely, embed in batches with progress, and refuse a CLIP spec that differs from a
collection's model."""

from __future__ import annotations

from typing import Any

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput


def check_images(paths: list[str], ctx: Context, what: str = "images") -> None:
    """Every path exists under an allowed root (raises before any model loads)."""
    from vltools.models.media import check_path

    if not paths:
        raise InvalidInput(f"no {what} given", hint=f"pass at least one image path in {what}")
    for p in paths:
        check_path(p, ctx.settings)


def load_images(paths: list[str], ctx: Context) -> list[Any]:
    from vltools.models.media import load_image

    return [load_image(p, ctx.settings) for p in paths]


def embed_paths(backend: Any, paths: list[str], ctx: Context, note: str, batch_size: int = 32) -> Any:
    """(n, dim) L2-normalised CLIP embeddings of image files, decoded batch by batch."""
    import numpy as np

    out = []
    for start in range(0, len(paths), batch_size):
        part = paths[start : start + batch_size]
        out.append(backend.encode_images(load_images(part, ctx), batch_size=batch_size))
        ctx.progress(start + len(part), len(paths), note)
    return np.concatenate(out) if out else np.zeros((0, backend.dim), dtype=np.float32)


def dense_paths(backend: Any, paths: list[str], ctx: Context, note: str, batch_size: int = 16) -> Any:
    """(n, gh, gw, dim) dense features of image files, batch by batch with progress."""
    import numpy as np

    out = []
    for start in range(0, len(paths), batch_size):
        part = paths[start : start + batch_size]
        out.append(backend.encode_dense(load_images(part, ctx), batch_size=batch_size))
        ctx.progress(start + len(part), len(paths), note)
    return np.concatenate(out)


def text_embeddings(backend: Any, texts: list[str]) -> Any:
    emb, _ = backend.encode_texts(texts, long_text="truncate")
    return emb


def collection_clip(coll: Any, clip: str | None, tool_name: str) -> str:
    """The collection's CLIP spec; a different explicit ``clip`` is a Conflict (embeddings would not
    be comparable)."""
    if clip is not None and clip != coll.model:
        raise Conflict(
            f"{tool_name}: collection {coll.name!r} was embedded with {coll.model!r}, not {clip!r}",
            hint="omit clip (the collection's model is used) or search a collection built with that model",
            details={"collection": coll.name, "collection_model": coll.model, "clip": clip},
        )
    return coll.model
