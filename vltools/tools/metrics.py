"""Set-level metrics of image collections on CLIP embeddings: kernel-based diversity with the
Schur-complement split into prompt-induced and intrinsic diversity (P17).

Needs a CLIP spec (default ``demo``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools._image_io import check_images, embed_paths, text_embeddings


class DiversityInput(ToolInput):
    renamed = {"model": "clip"}

    images: list[str] = Field(min_length=2, max_length=10_000, description="Paths of the image set (at least 2).")
    prompts: list[str] | None = Field(
        None, description="The text prompt of each image (one per image, in order) to separate prompt-induced from "
        "intrinsic diversity; a single prompt applies to all images.",
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    ridge: float = Field(1e-3, gt=0, le=10, description="Ridge added to the text covariance before inverting it.")
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per forward pass.")


class DiversityOutput(BaseModel):
    n: int = Field(description="Images in the set.")
    entropy: float = Field(description="Von Neumann entropy (nats) of the images' cosine-kernel covariance.")
    vendi: float = Field(description="exp(entropy): the effective number of distinct images.")
    intrinsic_entropy: float | None = Field(
        None, description="Schur Complement Entropy (P17): entropy of the part the prompts do not explain."
    )
    intrinsic_vendi: float | None = Field(None, description="exp(intrinsic_entropy).")
    prompt_share: float | None = Field(
        None, description="Share of the images' kernel covariance (trace) explained by the prompts, 0..1."
    )


@tool("metrics.diversity")
def diversity(inp: DiversityInput, ctx: Context) -> DiversityOutput:
    """Diversity of an image set as the matrix entropy of its CLIP kernel covariance, split by the Schur complement
    into prompt-induced and intrinsic diversity when prompts are given (P17).

    With prompts, the images' covariance minus the part explained by their texts (the Schur complement of the joint
    image-text covariance) gives the Schur Complement Entropy: diversity not caused by varying the prompt.
    """
    import math

    import numpy as np

    from vltools.tools._image_math import matrix_entropy, schur_decomposition

    prompts = inp.prompts
    if prompts is not None:
        if len(prompts) == 1:
            prompts = prompts * len(inp.images)
        if len(prompts) != len(inp.images):
            raise InvalidInput(
                f"{len(prompts)} prompts for {len(inp.images)} images",
                hint="give one prompt per image (in order) or a single prompt for all",
                details={"prompts": len(prompts), "images": len(inp.images)},
            )
        if any(not p.strip() for p in prompts):
            raise InvalidInput("a prompt is blank", hint="give every image its text prompt")
    check_images(inp.images, ctx)
    backend = ctx.clip(inp.clip)
    x = embed_paths(backend, inp.images, ctx, "images embedded", inp.batch_size).astype(np.float64)
    n = len(x)
    h = matrix_entropy(x.T @ x / n)
    out = DiversityOutput(n=n, entropy=h, vendi=math.exp(h))
    if prompts is not None:
        t = text_embeddings(backend, prompts).astype(np.float64)
        parts = schur_decomposition(x, t, inp.ridge)
        hi = matrix_entropy(parts["schur"], normalise=False)
        share = float(np.trace(parts["explained"]) / max(np.trace(parts["cxx"]), 1e-12))
        out.intrinsic_entropy, out.intrinsic_vendi, out.prompt_share = hi, math.exp(hi), min(max(share, 0.0), 1.0)
    return out
