"""Text that crosses tools: documents to store and passages to rank."""

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
    """A passage to rank: an id and its text (a retriever's `Hit` is accepted as one, its extras kept)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, description="Passage id (a document id for retrieved hits).")
    text: str = Field(description="Passage text.")
    title: str = Field("", description="Optional title, prepended when ranking.")
