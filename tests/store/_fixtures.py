"""Shared test data for the store and retrieval tests: a small real Cranfield subset, built once per process."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from ..conftest import DATA

CRAN = DATA / "cranfield"
SUBSET_DOCS = 120  # documents 1..120: enough for ~40 judged queries, small enough to encode in seconds

_BUILT: dict[str, str] = {}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _need_cranfield() -> None:
    import pytest

    if not (CRAN / "corpus.jsonl").is_file():
        pytest.skip(f"shared data not found at {CRAN}")


def some_docs(n: int) -> list[dict]:
    """``n`` documents with ids "1".."n" from the sample corpus shipped in the package (cycled)."""
    from importlib import resources

    lines = resources.files("vltools").joinpath("data/sample_corpus.jsonl").read_text(encoding="utf-8").splitlines()
    base = [json.loads(line) for line in lines]
    out = []
    for i in range(n):
        d = base[i % len(base)]
        out.append({"id": str(i + 1), "title": d["title"], "text": d["text"], "topic": d["topic"]})
    return out


def cranfield_docs(n: int = SUBSET_DOCS) -> list[dict]:
    _need_cranfield()
    with open(CRAN / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f, strict=False)]


def cranfield_queries() -> dict[str, str]:
    _need_cranfield()
    with open(CRAN / "queries.jsonl", encoding="utf-8") as f:
        return {q["id"]: q["text"] for q in map(json.loads, f)}


def cranfield_qrels(doc_ids: set[str] | None = None) -> dict[str, dict[str, int]]:
    """query -> {doc: relevance}, restricted to ``doc_ids``; only queries with a relevant doc there."""
    _need_cranfield()
    out: dict[str, dict[str, int]] = {}
    lines = (CRAN / "qrels.tsv").read_text().splitlines()[1:]
    for line in lines:
        q, d, r = line.split()
        if doc_ids is None or d in doc_ids:
            out.setdefault(q, {})[d] = int(r)
    return {q: docs for q, docs in out.items() if any(r > 0 for r in docs.values())}


def cranfield_collection(model: str = "minilm") -> str:
    """Name of a collection holding the Cranfield subset (built once per test process)."""
    import vltools

    if model not in _BUILT:
        name = unique(f"cran-{model}")
        vltools.call("collection.create", {"name": name, "kind": "text", "text_model": model})
        vltools.call("collection.add", {"collection": name, "documents": cranfield_docs()})
        _BUILT[model] = name
    return _BUILT[model]


def write_jsonl(path: Path, rows: list, *, raw_lines: dict[int, bytes] | None = None) -> Path:
    """Write rows as JSONL; ``raw_lines`` replaces given 1-based lines with raw bytes."""
    lines = [json.dumps(r).encode() for r in rows]
    for n, raw in (raw_lines or {}).items():
        lines[n - 1] = raw
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
