"""Edits of CLIP image embeddings: defocusing a text concept out of them with the Schur-complement
text→image map (P17).

Needs a CLIP spec (default ``demo``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools._image_io import check_images, embed_paths, text_embeddings

MIN_PAIRS = 8


class DefocusInput(ToolInput):
    renamed = {"model": "clip"}

    images: list[str] = Field(min_length=1, max_length=10_000, description="Paths of the images to defocus.")
    concept: str = Field(min_length=1, max_length=2000, description="The text concept to remove, e.g. 'a dog'.")
    captions: list[str] | None = Field(
        None, description="A caption per image (in order): the image-text pairs from which P17's text→image map is "
        f"estimated (method schur, at least {MIN_PAIRS}).",
    )
    method: Literal["schur", "project"] = Field(
        "schur",
        description="schur: subtract the image component the concept's text predicts through the cross-covariance "
        "map C_xt C_tt^-1 (P17); project: remove the component along the concept's text embedding (baseline).",
    )
    strength: float = Field(1.0, ge=0, le=10, description="How much of the predicted component is removed.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    ridge: float = Field(1e-2, gt=0, le=10, description="Ridge added to the text covariance before inverting it.")


class Defocused(BaseModel):
    image: str = Field(description="The image path as given.")
    vector: list[float] = Field(description="The defocused, L2-normalised image embedding.")
    similarity_before: float = Field(description="Cosine of the original embedding with the concept's text.")
    similarity_after: float = Field(description="Cosine of the defocused embedding with the concept's text.")


class DefocusOutput(BaseModel):
    results: list[Defocused] = Field(description="One per image, in input order.")
    method: str = Field(description="The method used.")


@tool("embed.defocus")
def defocus(inp: DefocusInput, ctx: Context) -> DefocusOutput:
    """Remove a text concept from CLIP image embeddings (defocus) with the Schur-complement text-to-image map of P17,
    or by projection as a baseline.

    The map C_xt C_tt^-1, estimated from the given image-caption pairs, predicts the image-side component a text
    induces; subtracting the concept's prediction leaves what the concept does not explain.
    """
    import numpy as np

    from vltools.tools._image_math import l2n, schur_decomposition

    if inp.method == "schur":
        if inp.captions is None or len(inp.captions) < MIN_PAIRS:
            raise InvalidInput(
                f"method schur needs at least {MIN_PAIRS} image-caption pairs to estimate the text→image map; got "
                f"{0 if inp.captions is None else len(inp.captions)}",
                hint="pass captions (one per image), more images, or method 'project'",
                details={"min_pairs": MIN_PAIRS},
            )
        if len(inp.captions) != len(inp.images):
            raise InvalidInput(f"{len(inp.captions)} captions for {len(inp.images)} images",
                               hint="give one caption per image, in order")
    check_images(inp.images, ctx)
    backend = ctx.clip(inp.clip)
    x = embed_paths(backend, inp.images, ctx, "images embedded").astype(np.float64)
    c = text_embeddings(backend, [inp.concept])[0].astype(np.float64)
    if inp.method == "schur":
        t = text_embeddings(backend, inp.captions).astype(np.float64)
        mapping = schur_decomposition(x, t, inp.ridge)["map"]
        out = l2n(x - inp.strength * (mapping @ c)[None, :])
    else:
        out = l2n(x - inp.strength * np.outer(x @ c, c))
    before, after = x @ c, out @ c
    return DefocusOutput(
        results=[Defocused(image=p, vector=[float(v) for v in row], similarity_before=float(b),
                           similarity_after=float(a))
                 for p, row, b, a in zip(inp.images, out, before, after, strict=True)],
        method=inp.method,
    )
