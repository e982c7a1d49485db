"""Rankings: what retrievers, media search and rerankers return (``produces: [ranking]``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Hit(BaseModel):
    """One ranked result: a document, passage, image or video."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="Document, passage, image or video id.")
    score: float = Field(description="Higher is more relevant; scale depends on the tool.")
    rank: int = Field(0, ge=0, description="1-based position in the ranking.")
    text: str = Field("", description="The text (empty for media).")
    title: str = Field("", description="Title, if any.")
    path: str | None = Field(None, description="File of an image or video hit (None for text).")
    time: float | None = Field(None, description="Video hits: time (s) of the frame that matches the query best.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored metadata.")


class Ranking(BaseModel):
    """An ordered list of hits, best first."""

    model_config = ConfigDict(extra="allow")

    query: str = Field("", description="The query that produced this ranking.")
    hits: list[Hit] = Field(default_factory=list, description="Hits, best first.")
