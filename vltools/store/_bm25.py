"""BM25 side of a text collection: bm25s with Lucene scoring, Snowball English stemming and the
Lucene English stop-word list — the analysis the published BM25 baselines (Anserini/Pyserini) use.

The index is rebuilt from the SQLite documents on every add (a few seconds per 100k short
documents); it lives in a versioned folder next to a ``rids.npy`` that maps positions to rids.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PARAMS: dict[str, Any] = {
    "k1": 0.9,
    "b": 0.4,
    "method": "lucene",
    "stemmer": "english",
    "stopwords": "en",
}
_STEMMERS: dict[str, Any] = {}
_STEM_LOCK = threading.Lock()


def _stemmer(language: str | None):
    if not language:
        return None
    import Stemmer

    with _STEM_LOCK:  # PyStemmer objects are not thread-safe; one per thread would also do
        if language not in _STEMMERS:
            _STEMMERS[language] = Stemmer.Stemmer(language)
        return _STEMMERS[language]


def tokenize(texts: list[str], params: dict[str, Any] = DEFAULT_PARAMS) -> list[list[str]]:
    """Lower-case word tokens, stop words removed, stemmed."""
    import bm25s

    stemmer = _stemmer(params.get("stemmer"))
    with _STEM_LOCK:
        return bm25s.tokenize(
            texts,
            stopwords=params.get("stopwords") or None,
            stemmer=stemmer,
            return_ids=False,
            show_progress=False,
        )


def build(texts: list[str], params: dict[str, Any]) -> Any:
    import bm25s

    retriever = bm25s.BM25(k1=float(params["k1"]), b=float(params["b"]), method=params["method"])
    retriever.index(tokenize(texts, params), show_progress=False)
    return retriever


def digest(folder: Path) -> dict[str, list[Any]]:
    """{file name: [size, sha256]} of the files in an index folder."""
    out: dict[str, list[Any]] = {}
    for f in sorted(folder.iterdir()):
        data = f.read_bytes()
        out[f.name] = [len(data), hashlib.sha256(data).hexdigest()]
    return out


def save(retriever: Any, rids: np.ndarray, folder: Path) -> dict[str, list[Any]]:
    """Write into a temp folder and rename it into place; returns its `digest` for the manifest."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    retriever.save(str(tmp), show_progress=False)
    np.save(tmp / "rids.npy", rids.astype(np.int64))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    sums = digest(tmp)
    if folder.exists():  # left by a writer that died before committing this version (we hold the lock)
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return sums


def load(folder: Path, checksum: dict[str, Any] | None = None) -> tuple[Any, np.ndarray]:
    """Read an index folder; with ``checksum`` (a `digest`) its files are verified first (ValueError if not)."""
    import bm25s

    if not folder.is_dir():
        raise FileNotFoundError(str(folder))
    if checksum is not None:
        found = digest(folder)
        if found != checksum:
            odd = sorted(set(found) ^ set(checksum)) or [n for n in checksum if found.get(n) != checksum[n]]
            raise ValueError(f"does not match the checksums recorded in the manifest ({', '.join(odd[:3])})")
    retriever = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
    return retriever, np.load(folder / "rids.npy", allow_pickle=False)


def search(retriever: Any, rids: np.ndarray, query: str, k: int, params: dict[str, Any]) -> list[tuple[int, float]]:
    """Top-k (rid, score) with score > 0 (documents sharing no term with the query are left out)."""
    if len(rids) == 0:
        return []
    tokens = tokenize([query], params)[0]
    ids = retriever.get_tokens_ids(tokens)
    if not ids:
        return []
    scores = retriever.get_scores(ids)
    k = min(int(k), len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]  # by score, ties by insertion order
    return [(int(rids[i]), float(scores[i])) for i in top if scores[i] > 0]
