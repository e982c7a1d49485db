"""Scene graphs of a prompt or caption: entities with attributes, relations, and events (actions)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SceneEntity(BaseModel):
    """An object and its attributes (None = not stated)."""

    id: str = Field(description="Entity id (e1, e2, ...), referenced by relations and events.")
    shape: str | None = Field(None, description="The object noun (a shape in the synthetic world).")
    colour: str | None = Field(None, description="Colour attribute.")
    size: str | None = Field(None, description="Size attribute (small, large, ...).")
    count: int | None = Field(None, ge=0, description="How many (None = unspecified).")
    position: str | None = Field(None, description="Position in the frame (left, top right, ...).")


class SceneRelation(BaseModel):
    """A spatial relation between two entities."""

    subject: str = Field(description="Entity id.")
    predicate: str = Field(description="Relation, e.g. 'above', 'to the left of'.")
    object: str = Field(description="Entity id.")


class SceneEvent(BaseModel):
    """An action or change over time of one entity."""

    subject: str = Field(description="Entity id.")
    type: Literal["move", "appear", "disappear", "turn", "grow", "shrink"] = Field(description="What happens.")
    direction: Literal["left", "right", "up", "down"] | None = Field(None, description="For 'move'.")
    colour: str | None = Field(None, description="For 'turn': the new colour.")


class SceneGraph(BaseModel):
    """Entities (with attributes), relations between them, and events (actions over time)."""

    entities: list[SceneEntity] = Field(default_factory=list, description="Objects with their attributes.")
    relations: list[SceneRelation] = Field(default_factory=list, description="Spatial relations.")
    events: list[SceneEvent] = Field(default_factory=list, description="Actions and changes over time.")
