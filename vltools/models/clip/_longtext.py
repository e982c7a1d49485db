"""Long texts for CLIP text towers (P08, Long-CLIP): never cut silently.

A text longer than the tower's context is, by mode: *stretched* (Long-CLIP's knowledge-preserving
positional stretch, for towers with a learned positional table), *extended* (HF towers that have
more learned positions than their training context use them), *chunked* (word-boundary chunks
that fit the context, embeddings averaged by token count), *truncated* (only when asked for), or
refused (``error``). This module holds the decisions and tensor surgery; `ClipBackend` runs them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

from vltools.core.errors import InvalidInput

LongText = Literal["stretch", "chunk", "truncate", "error"]
LONG_TEXT_MODES = ("stretch", "chunk", "truncate", "error")
# How a text was fitted to the text tower; None = it fitted natively.
FIT_NOTES = ("stretched", "extended", "chunked", "truncated")
STRETCH_KEEP = 20  # Long-CLIP keeps the first 20 (well-trained) positions
STRETCH_FACTOR = 4  # and interpolates the rest 4x: 77 -> 20 + 57*4 = 248
MAX_CHUNKS = 256

# tower kinds (see `text_tower`): "clip"/"tt" have a learned positional table, "hf" is a transformers model
TowerKind = Literal["clip", "tt", "hf", "none"]


def text_tower(model: Any) -> tuple[TowerKind, Any]:
    """("clip", model) | ("tt", model.text) for learned positions; ("hf", model.text); ("none", None)."""
    import torch

    if isinstance(getattr(model, "positional_embedding", None), torch.nn.Parameter) and hasattr(
        model, "token_embedding"
    ):
        return "clip", model
    text = getattr(model, "text", None)
    if isinstance(getattr(text, "positional_embedding", None), torch.nn.Parameter):
        return "tt", text
    if text is not None and hasattr(text, "transformer") and hasattr(text.transformer, "config"):
        return "hf", text
    return "none", None


def extended_limit(kind: TowerKind, tower: Any, context_length: int) -> int:
    """Longest text (tokens) that ``stretch`` encodes without chunking."""
    if kind in ("clip", "tt"):
        return STRETCH_KEEP + max(0, context_length - STRETCH_KEEP) * STRETCH_FACTOR
    if kind == "hf":
        cfg = tower.transformer.config
        limit = int(getattr(cfg, "max_position_embeddings", 0) or 0)
        if getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            limit -= 2  # positions offset by padding_idx + 1
        return max(limit, context_length)
    return context_length


def plan(
    counts: list[int], *, context_length: int, limit: int, kind: TowerKind, mode: LongText, spec: str
) -> tuple[dict[str, list[int]], list[str | None]]:
    """Group text indices by how they are encoded ("plain", "stretched", "extended", "chunked") and note each.

    Raises `InvalidInput` for an unknown mode, or with ``error`` when any text exceeds the context.
    """
    if mode not in LONG_TEXT_MODES:
        raise InvalidInput(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, got {mode!r}")
    long_ids = [i for i, c in enumerate(counts) if c > context_length]
    if long_ids and mode == "error":
        raise InvalidInput(
            f"{len(long_ids)} text(s) exceed the {context_length}-token context of {spec} "
            f"(first: #{long_ids[0]}, {counts[long_ids[0]]} tokens)",
            hint="shorten them or use long_text=stretch/chunk",
        )
    groups: dict[str, list[int]] = {"plain": [], "stretched": [], "extended": [], "chunked": []}
    notes: list[str | None] = [None] * len(counts)
    for i, c in enumerate(counts):
        if c <= context_length or mode == "truncate":
            groups["plain"].append(i)
            if c > context_length:
                notes[i] = "truncated"
        elif mode == "stretch" and c <= limit:
            key = "extended" if kind == "hf" else "stretched"
            groups[key].append(i)
            notes[i] = key
        else:
            groups["chunked"].append(i)
            notes[i] = "chunked"
    return groups, notes


def stretch_positions(pos: Any, *, keep: int = STRETCH_KEEP, factor: int = STRETCH_FACTOR) -> Any:
    """Long-CLIP's knowledge-preserving stretch: keep the first ``keep`` rows, interpolate the rest ``factor``x.

    ``pos`` is a (L, width) tensor; returns (keep + (L - keep) * factor, width).
    """
    import torch
    import torch.nn.functional as F

    keep = min(keep, pos.shape[0] - 1)
    head, tail = pos[:keep], pos[keep:]
    tail = F.interpolate(
        tail.T.unsqueeze(0).float(), size=tail.shape[0] * factor, mode="linear", align_corners=True
    )[0].T.to(pos.dtype)
    return torch.cat([head, tail], dim=0)


def _causal_mask(n: int, like: Any) -> Any:
    import torch

    mask = torch.full((n, n), float("-inf"), dtype=like.dtype, device=like.device)
    return mask.triu_(1)


def stretched_copy(tower: Any) -> tuple[Any, int]:
    """A shallow copy of a text tower with Long-CLIP-stretched positions; (copy, new context length).

    The copy shares every weight but the positional table and causal mask, so the original model is
    untouched and may keep serving other threads.
    """
    import torch

    pos = stretch_positions(tower.positional_embedding.detach())
    new_len = pos.shape[0]
    dup = copy.copy(tower)
    dup._parameters = dict(tower._parameters)
    dup._buffers = dict(tower._buffers)
    dup._parameters["positional_embedding"] = torch.nn.Parameter(pos, requires_grad=False)
    if getattr(tower, "attn_mask", None) is not None:
        dup._buffers["attn_mask"] = _causal_mask(new_len, tower.attn_mask)
    dup.context_length = new_len
    if hasattr(tower, "num_pos"):
        dup.num_pos = new_len
    return dup, new_len


def chunk_words(text: str, budget: int, count: Callable[[str], int]) -> tuple[list[str], list[int]]:
    """Greedy word-boundary chunks of at most ``budget`` body tokens each, with their token counts.

    Raises `InvalidInput` past `MAX_CHUNKS` chunks.
    """
    chunks: list[str] = []
    weights: list[int] = []
    cur: list[str] = []
    cur_n = 0
    for word in text.split():
        wn = count(word) or 1
        if cur and cur_n + wn > budget:
            chunks.append(" ".join(cur))
            weights.append(cur_n)
            cur, cur_n = [], 0
        cur.append(word)
        cur_n += wn
    if cur:
        chunks.append(" ".join(cur))
        weights.append(min(cur_n, budget))
    if len(chunks) > MAX_CHUNKS:
        raise InvalidInput(f"a text needs {len(chunks)} chunks (limit {MAX_CHUNKS})", hint="shorten the text")
    return chunks, weights
