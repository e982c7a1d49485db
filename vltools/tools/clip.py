"""`clip.score`: CLIPScore of image–text pairs (CLIP-T), image–image pairs (CLIP-I) and text–text
pairs, as used by P16 to evaluate personalised generation: ``w * max(cos, 0)`` with ``w = 2.5``.

Needs a CLIP spec (default ``demo``, offline). Long texts are never cut silently (P08).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.schemas import ToolInput

LongTextMode = Literal["stretch", "chunk", "truncate", "error"]


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(None, min_length=1, description="Path of the (first) image.")
    text: str | None = Field(None, min_length=1, max_length=20_000, description="The (first) text.")
    image2: str | None = Field(None, min_length=1, description="Second image, for an image–image pair (CLIP-I).")
    text2: str | None = Field(None, min_length=1, max_length=20_000, description="Second text, for a text–text pair.")

    @model_validator(mode="after")
    def _two_sides(self) -> Pair:
        if self.kind is None:
            raise ValueError(
                "a pair is {image, text}, {image, image2} or {text, text2}; got fields "
                + ", ".join(k for k in ("image", "text", "image2", "text2") if getattr(self, k) is not None)
            )
        return self

    @property
    def kind(self) -> str | None:
        given = tuple(getattr(self, k) is not None for k in ("image", "text", "image2", "text2"))
        return {
            (True, True, False, False): "image-text",
            (True, False, True, False): "image-image",
            (False, True, False, True): "text-text",
        }.get(given)


class ScoreInput(ToolInput):
    renamed = {"model": "clip"}

    pairs: list[Pair] = Field(min_length=1, max_length=10_000, description="Pairs to score.")
    clip: str | None = Field(None, description="CLIP spec: demo, open_clip:ARCH/TAG, ... (default: settings.clip).")
    w: float = Field(2.5, gt=0, le=100, description="CLIPScore weight w in w * max(cos, 0) (2.5 as in CLIPScore).")
    long_text: LongTextMode = Field(
        "stretch",
        description="Texts longer than the text tower's context (P08): stretch (Long-CLIP positions, chunk if longer "
        "still), chunk (average of chunk embeddings), truncate (cut, reported), or error.",
    )


class ScoreOutput(BaseModel):
    scores: list[float] = Field(description="w * max(cos, 0) per pair, in input order.")
    cosines: list[float] = Field(description="Raw cosine similarity per pair.")
    kinds: list[Literal["image-text", "image-image", "text-text"]] = Field(description="The kind of each pair.")
    truncated: list[bool] = Field(description="Per pair: a text exceeded the text tower's context (see notices).")
    mean: float = Field(description="Mean score over the pairs.")
    notices: list[str] = Field(default_factory=list, description="How long texts were handled (P08).")


@tool("clip.score")
def score(inp: ScoreInput, ctx: Context) -> ScoreOutput:
    """CLIPScore (2.5 * max(cos, 0)) of image-text (CLIP-T), image-image (CLIP-I) or text-text pairs."""
    import numpy as np

    from vltools.models.media import check_path, load_image

    images = list(dict.fromkeys(p for pr in inp.pairs for p in (pr.image, pr.image2) if p is not None))
    texts = list(dict.fromkeys(t for pr in inp.pairs for t in (pr.text, pr.text2) if t is not None))
    for p in images:  # check every path before loading the model
        check_path(p, ctx.settings)
    backend = ctx.clip(inp.clip)
    img_vec: dict[str, np.ndarray] = {}
    for start in range(0, len(images), 32):
        part = images[start : start + 32]
        feats = backend.encode_images([load_image(p, ctx.settings) for p in part])
        img_vec.update(zip(part, feats, strict=True))
        ctx.progress(start + len(part), len(images), "images embedded")
    txt_vec: dict[str, np.ndarray] = {}
    long: set[str] = set()
    notices: list[str] = []
    if texts:
        emb, notes = backend.encode_texts_detailed(texts, long_text=inp.long_text)
        txt_vec = dict(zip(texts, emb, strict=True))
        long = {t for t, n in zip(texts, notes, strict=True) if n is not None}
        notices = backend.fit_notices(texts, notes, "text")
    cosines, truncated = [], []
    for pr in inp.pairs:
        a = img_vec[pr.image] if pr.image is not None else txt_vec[pr.text]
        b = txt_vec[pr.text] if pr.kind == "image-text" else (img_vec[pr.image2] if pr.image2 else txt_vec[pr.text2])
        cosines.append(float(np.dot(a, b)))
        truncated.append(any(t in long for t in (pr.text, pr.text2) if t is not None))
    scores = [inp.w * max(c, 0.0) for c in cosines]
    return ScoreOutput(
        scores=scores,
        cosines=cosines,
        kinds=[pr.kind for pr in inp.pairs],
        truncated=truncated,
        mean=float(np.mean(scores)),
        notices=notices,
    )
