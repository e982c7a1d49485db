"""Media references and regions: images, videos, boxes and masks (no file is opened here)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator


class ImageRef(BaseModel):
    """An image on disk (URLs are never fetched)."""

    path: str = Field(min_length=1, description="Path to an image file under an allowed root.")


class VideoRef(BaseModel):
    """A video on disk, optionally a time span of it."""

    path: str = Field(min_length=1, description="Path to a video file under an allowed root.")
    start: float | None = Field(None, ge=0, description="Start of the span of interest (s).")
    end: float | None = Field(None, ge=0, description="End of the span of interest (s).")

    @model_validator(mode="after")
    def _span(self) -> VideoRef:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class Box(BaseModel):
    """An axis-aligned box in pixels: (x0, y0) top-left, (x1, y1) bottom-right, exclusive."""

    x0: float = Field(ge=0, description="Left edge (px).")
    y0: float = Field(ge=0, description="Top edge (px).")
    x1: float = Field(ge=0, description="Right edge (px).")
    y1: float = Field(ge=0, description="Bottom edge (px).")
    label: str | None = Field(None, description="What the box holds.")
    score: float | None = Field(None, description="Detector confidence.")

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"box corners out of order: ({self.x0}, {self.y0}) to ({self.x1}, {self.y1})")
        return self


class Mask(BaseModel):
    """A binary mask as uncompressed run-length encoding (row-major), optionally also saved as a file.

    ``counts`` alternate runs of 0s and 1s starting with 0s (the first run may be 0 long), over the
    ``height * width`` pixels read row by row.
    """

    height: int = Field(ge=1, description="Mask height (px).")
    width: int = Field(ge=1, description="Mask width (px).")
    counts: list[int] = Field(description="Run lengths, alternating 0s and 1s, starting with 0s.")
    path: str | None = Field(None, description="A PNG copy of the mask, if one was written.")
    label: str | None = Field(None, description="What the mask covers.")

    @model_validator(mode="after")
    def _covers_the_image(self) -> Mask:
        if any(c < 0 for c in self.counts):
            raise ValueError("run lengths must be >= 0")
        if sum(self.counts) != self.height * self.width:
            raise ValueError(f"run lengths sum to {sum(self.counts)}, not height*width = {self.height * self.width}")
        return self

    @classmethod
    def from_array(cls, array: Any, **fields: Any) -> Mask:
        """Encode a 2-D boolean (or 0/1) array."""
        import numpy as np

        a = np.asarray(array).astype(bool)
        if a.ndim != 2:
            raise ValueError(f"a mask is 2-D; got shape {a.shape}")
        flat = a.ravel()
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        bounds = np.concatenate([[0], change, [flat.size]])
        runs = np.diff(bounds).tolist()
        if flat.size and flat[0]:
            runs = [0, *runs]
        return cls(height=a.shape[0], width=a.shape[1], counts=[int(r) for r in runs], **fields)

    def to_array(self) -> Any:
        """The mask as a (height, width) boolean numpy array."""
        import numpy as np

        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        return np.repeat(values, self.counts).reshape(self.height, self.width)

    @property
    def area(self) -> int:
        return int(sum(self.counts[1::2]))
