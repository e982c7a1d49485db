"""spaCy dependency parses for fact checking: the process's one pipeline (`vltools.models.nlp`)."""

from __future__ import annotations

from vltools.models.nlp import get_nlp, parse

__all__ = ["get_nlp", "parse"]
