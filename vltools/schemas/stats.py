"""Cost accounting of model-driven calls."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RunStats(BaseModel):
    """Cost accounting of a model-driven tool call."""

    forward_passes: int = Field(0, description="Model forward passes.")
    prompt_tokens: int = Field(0, description="Prompt tokens processed.")
    generated_tokens: int = Field(0, description="Tokens generated.")
    seconds: float = Field(0.0, description="Wall-clock seconds.")
    flops: float = Field(0.0, description="Estimated forward-pass FLOPs (0 where the backend cannot tell).")
