"""`ToolInput`: the base of every tool's input model (unknown fields are rejected, renamed fields warn)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class ToolInput(BaseModel):
    """Base of every tool input model.

    ``extra="forbid"``: a misspelt field (``{"kk": 3}``) is an error naming it, not silently ignored.
    ``renamed`` maps a deprecated field name to its new name; the old name is still accepted for one
    release with a `DeprecationWarning` (giving both is an error).
    """

    model_config = ConfigDict(extra="forbid")

    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _accept_renamed_fields(cls, data: Any) -> Any:
        if not cls.renamed or not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in cls.renamed.items():
            if old not in data:
                continue
            if new in data:
                raise ValueError(f"give {new!r} only; {old!r} is its deprecated name")
            warnings.warn(
                f"{cls.__name__}: field {old!r} is deprecated, use {new!r} (the old name goes in vltools 0.2)",
                DeprecationWarning,
                stacklevel=2,
            )
            data[new] = data.pop(old)
        return data
