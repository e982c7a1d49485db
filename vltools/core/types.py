"""Shared types, so that tools chain without glue (a retriever's `Ranking` feeds a reranker)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Document(BaseModel):
    """A text document to store in a collection."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=512, description="Unique id within the collection.")
    title: str = Field("", description="Optional title; indexed with the text.")
    text: str = Field(description="The document body.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form metadata.")


class Passage(BaseModel):
    """A passage to rank: an id and its text."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, description="Passage id (a document id for retrieved hits).")
    text: str = Field(description="Passage text.")
    title: str = Field("", description="Optional title, prepended when ranking.")


class Hit(BaseModel):
    """One ranked result."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="Document, passage or image id.")
    score: float = Field(description="Higher is more relevant; scale depends on the tool.")
    rank: int = Field(0, ge=0, description="1-based position in the ranking.")
    text: str = Field("", description="The text (empty for media).")
    title: str = Field("", description="Title, if any.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored metadata.")


class Ranking(BaseModel):
    """An ordered list of hits, best first."""

    model_config = ConfigDict(extra="allow")

    query: str = Field("", description="The query that produced this ranking.")
    hits: list[Hit] = Field(default_factory=list, description="Hits, best first.")


class RunStats(BaseModel):
    """Cost accounting of a model-driven tool call."""

    forward_passes: int = Field(0, description="Model forward passes.")
    prompt_tokens: int = Field(0, description="Prompt tokens processed.")
    generated_tokens: int = Field(0, description="Tokens generated.")
    seconds: float = Field(0.0, description="Wall-clock seconds.")


class ImageRef(BaseModel):
    """An image on disk (URLs are never fetched)."""

    path: str = Field(description="Path to an image file under an allowed root.")


class VideoRef(BaseModel):
    """A video on disk."""

    path: str = Field(description="Path to a video file under an allowed root.")
