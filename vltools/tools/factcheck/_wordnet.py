"""WordNet 3.0 through nltk, read from the folder ``scripts/setup_data.py`` lays out.

Looked up in order: ``$VLTOOLS_NLTK_DATA``, ``<sys.prefix>/share/vltools/nltk_data`` (the venv),
then nltk's own data path. Loaded once per process.
"""

from __future__ import annotations

import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from vltools.core.errors import BackendUnavailable

_LOCK = threading.Lock()
_WN: Any = None


def nltk_roots() -> list[Path]:
    roots = []
    from vltools.core.settings import get_settings

    extra = get_settings().nltk_data
    if extra is not None:
        roots.append(Path(extra).expanduser())
    roots.append(Path(sys.prefix) / "share" / "vltools" / "nltk_data")
    return roots


def get_wordnet() -> Any:
    """The nltk WordNet reader (English only; the multilingual OMW mapping is skipped)."""
    global _WN
    with _LOCK:
        if _WN is not None:
            return _WN
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        class _EnglishWordNet(WordNetCorpusReader):
            def map_wn(self, version: str = "wordnet") -> None:  # OMW only; costs seconds at load
                return None

        candidates = [r for r in nltk_roots() if (r / "corpora" / "wordnet" / "lexnames").is_file()]
        for root in candidates:
            if str(root) not in nltk.data.path:
                nltk.data.path.insert(0, str(root))
        if not candidates:
            try:
                wn_dir = Path(str(nltk.data.find("corpora/wordnet")))
            except LookupError:
                raise BackendUnavailable(
                    "WordNet 3.0 is not installed for nltk",
                    hint="apt-get install wordnet-base, then run `.venv/bin/python scripts/setup_data.py`",
                ) from None
        else:
            wn_dir = candidates[0] / "corpora" / "wordnet"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _WN = _EnglishWordNet(str(wn_dir), None)
        return _WN
