"""VisDiff (P32) for `image.set_difference`: propose differences between two image sets, rank them by AUROC.

Proposer: captions of each image (``caption.zero_shot`` through the registry when it is
registered; otherwise CLIP zero-shot classification over the caller's ``vocabulary``), or an LLM
reading samples of both sets' captions. Each candidate description is then scored by the
ranker: the AUROC with which the CLIP similarity of image and description separates set A
(positives) from set B.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from vltools.core.errors import BackendUnavailable, InvalidInput


class Difference(BaseModel):
    description: str = Field(description="A description more true of set A than of set B.")
    auroc: float = Field(description="AUROC of CLIP image-description similarity separating A (positive) from B.")
    mean_a: float = Field(description="Mean cosine of set A's images with the description.")
    mean_b: float = Field(description="Mean cosine of set B's images with the description.")
    source: str = Field(description="Who proposed it: captions, vocabulary, llm or given.")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z\-]+", text.lower())


def caption_phrases(captions: list[str]) -> list[str]:
    """Candidate phrases of captions: whole captions and their word n-grams (1-3) that are not function words."""
    stop = {"a", "an", "the", "of", "on", "in", "with", "and", "is", "are", "there", "this", "that", "photo",
            "picture", "image", "some", "to", "at", "its", "it", "by", "for", "from", "one", "two", "three"}
    out: list[str] = []
    for c in captions:
        w = _words(c)
        for n in (1, 2, 3):
            for i in range(len(w) - n + 1):
                gram = w[i : i + n]
                if gram[0] in stop or gram[-1] in stop:
                    continue
                out.append(" ".join(gram))
    return out


def propose_from_counts(a_phrases: list[list[str]], b_phrases: list[list[str]], limit: int,
                        pool: list[str] | None = None) -> list[str]:
    """Phrases most over-represented in A's per-image phrase sets (document frequency A minus B); with
    ``pool``, its every phrase is a candidate (ties broken by that order) and the top ``limit`` are kept."""
    fa: dict[str, float] = {}
    fb: dict[str, float] = {}
    for sets, freq in ((a_phrases, fa), (b_phrases, fb)):
        for s in sets:
            for p in set(s):
                freq[p] = freq.get(p, 0.0) + 1.0 / max(len(sets), 1)
    if pool is not None:
        order = {p: i for i, p in enumerate(pool)}
        ranked = sorted(pool, key=lambda p: (-(fa.get(p, 0.0) - fb.get(p, 0.0)), order[p]))
        return ranked[:limit]
    gain = sorted(((fa[p] - fb.get(p, 0.0), p) for p in fa), key=lambda t: (-t[0], t[1]))
    return [p for g, p in gain if g > 0][:limit]


def propose_from_vocabulary(backend: Any, feats_a: np.ndarray, feats_b: np.ndarray, vocabulary: list[str],
                            limit: int, top_k: int = 3) -> list[str]:
    """Words of the vocabulary most often among an image's top-k zero-shot labels in A more than in B."""
    from vltools.tools._probe_common import text_matrix

    text = text_matrix(backend, vocabulary, ["a photo of a {}.", "{}"])
    k = min(top_k, len(vocabulary))

    def tops(f: np.ndarray) -> list[list[str]]:
        idx = np.argsort(-(f @ text.T), axis=1)[:, :k]
        return [[vocabulary[int(i)] for i in row] for row in idx]

    return propose_from_counts(tops(feats_a), tops(feats_b), limit, pool=list(dict.fromkeys(vocabulary)))


def propose_with_llm(llm: Any, caps_a: list[str], caps_b: list[str], limit: int) -> list[str]:
    """Short descriptions an LLM proposes as true of set A and not of set B, from samples of captions."""
    def block(caps: list[str]) -> str:
        return "\n".join(f"- {c}" for c in caps[:20])

    prompt = (f"Set A captions:\n{block(caps_a)}\nSet B captions:\n{block(caps_b)}\n"
              f"List {limit} short phrases (2-5 words) describing what set A images have that set B images lack. "
              "One per line, nothing else.")
    reply = llm.generate([{"role": "user", "content": prompt}], max_tokens=160)
    out: list[str] = []
    for line in reply.splitlines():
        phrase = re.sub(r"^[\s\-*\d.)]+", "", line).strip(" .'\"")
        if 0 < len(phrase) <= 80 and phrase.lower() not in {o.lower() for o in out}:
            out.append(phrase)
    return out[:limit]


def caption_sets(ctx: Any, paths_a: list[str], paths_b: list[str],
                 clip: str | None) -> tuple[list[str], list[str]] | None:
    """Captions of both sets from ``caption.zero_shot`` (one call per image) if the registry has it; None when
    it is not registered (another part of vltools provides it) or has no decoder for this CLIP."""
    reg = ctx.registry
    if reg is None or "caption.zero_shot" not in reg.names():
        return None
    fields = reg.get("caption.zero_shot").input_model.model_fields
    spec_field = "clip" if "clip" in fields else "model" if "model" in fields else None
    caps: list[str] = []
    paths = [*paths_a, *paths_b]
    for i, path in enumerate(paths):
        args: dict[str, Any] = {"image": path}
        if clip is not None and spec_field:
            args[spec_field] = clip
        try:
            out = ctx.call("caption.zero_shot", args)
        except BackendUnavailable:  # e.g. no caption decoder for this CLIP: fall back like an absent tool
            return None
        caption = getattr(out, "caption", None)
        if not isinstance(caption, str):
            raise InvalidInput("caption.zero_shot returned no caption this tool can read",
                               hint="pass a vocabulary or candidates instead")
        caps.append(caption)
        ctx.progress(i + 1, len(paths), "images captioned")
    return caps[: len(paths_a)], caps[len(paths_a) :]


def rank(backend: Any, feats_a: np.ndarray, feats_b: np.ndarray, candidates: list[tuple[str, str]],
         templates: tuple[str, ...] = ("a photo of {}.", "{}")) -> list[Difference]:
    """Score each (description, source) by AUROC of CLIP similarity separating A from B; best first."""
    from vltools.tools._probe_common import auroc, text_matrix

    if not candidates:
        return []
    text = text_matrix(backend, [c for c, _ in candidates], templates)
    sa, sb = feats_a @ text.T, feats_b @ text.T
    out = [Difference(description=d, auroc=auroc(sa[:, i], sb[:, i]), mean_a=float(sa[:, i].mean()),
                      mean_b=float(sb[:, i].mean()), source=src) for i, (d, src) in enumerate(candidates)]
    out.sort(key=lambda d: (-d.auroc, -(d.mean_a - d.mean_b), d.description))
    return out
