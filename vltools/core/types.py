"""Deprecated location of the shared types: use `vltools.schemas` (kept as a re-export)."""

from vltools.schemas import Document, Hit, ImageRef, Passage, Ranking, RunStats, VideoRef

__all__ = ["Document", "Hit", "ImageRef", "Passage", "Ranking", "RunStats", "VideoRef"]
