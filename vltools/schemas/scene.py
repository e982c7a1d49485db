"""Scene graphs of a prompt or caption: entities with attributes, relations, and events (actions)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SceneEntity(BaseModel):
    """An object (a noun phrase) and its attributes (None / empty = not stated)."""

    id: str = Field(description="Entity id (e1, e2, ...), referenced by relations and events.")
    noun: str | None = Field(None, description="The head noun with its compounds ('dog', 'police car').")
    attributes: list[str] = Field(default_factory=list, description="Attribute words ('brown', 'small', 'sunny').")
    count: int | None = Field(None, ge=0, description="How many (None = unspecified).")
    position: str | None = Field(None, description="Position in the frame (left, top right, ...).")
    text: str | None = Field(None, description="The noun phrase as written.")
    shape: str | None = Field(None, description="Deprecated (shapes world): the object noun; use noun.")
    colour: str | None = Field(None, description="Deprecated (shapes world): a colour; see attributes.")
    size: str | None = Field(None, description="Deprecated (shapes world): a size; see attributes.")


class SceneRelation(BaseModel):
    """A relation between two entities (spatial or prepositional)."""

    subject: str = Field(description="Entity id.")
    predicate: str = Field(description="Relation, e.g. 'above', 'left of', 'on', 'across'.")
    object: str = Field(description="Entity id.")


class SceneEvent(BaseModel):
    """An action or change over time of one entity."""

    subject: str = Field(description="Entity id.")
    type: str = Field(description="move, appear, disappear, turn, grow, shrink, or action (any other verb).")
    verb: str | None = Field(None, description="The verb's lemma ('run', 'move', 'turn').")
    direction: str | None = Field(None, description="left, right, up or down, when stated.")
    value: str | None = Field(None, description="For 'turn': the new attribute ('red').")
    colour: str | None = Field(None, description="Deprecated: the new colour of a 'turn'; see value.")
    object: str | None = Field(None, description="Entity id the action is about ('across the beach').")
    preposition: str | None = Field(None, description="Preposition linking the object ('across').")
    order: int | None = Field(None, ge=0, description="Position of the event in the prompt.")
    after_previous: bool = Field(False, description="True when the prompt puts it after the previous event "
                                 "('then', 'after that').")


class SceneGraph(BaseModel):
    """Entities (with attributes), relations between them, and events (actions over time)."""

    entities: list[SceneEntity] = Field(default_factory=list, description="Objects with their attributes.")
    relations: list[SceneRelation] = Field(default_factory=list, description="Spatial relations.")
    events: list[SceneEvent] = Field(default_factory=list, description="Actions and changes over time.")
