"""The SQLite side of a collection: documents, metadata and (the source of truth for) vectors.

FAISS and BM25 indexes are derived from this database and can always be rebuilt from it.
Each document row has an integer ``rid`` (the FAISS id) that never changes, also on upsert.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT,
    text TEXT,
    path TEXT,
    hash TEXT,
    metadata TEXT,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS docs_hash ON docs(hash);
CREATE INDEX IF NOT EXISTS docs_path ON docs(path);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
_CHUNK = 900  # stay under SQLite's bound-parameter limit
FIELDS = ("id", "title", "text", "path", "hash", "metadata")


COLUMNS = {"rid", "id", "title", "text", "path", "hash", "metadata", "vector"}
_HEADER = b"SQLite format 3\x00"


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """Autocommit connection (transactions are explicit ``BEGIN IMMEDIATE``) with WAL for concurrent readers.

    Without ``create`` a missing file is an error (sqlite3 would silently create an empty database).
    """
    uri = f"file:{urllib.parse.quote(str(path))}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 60000")
    return conn


def init(path: Path, config: dict[str, Any]) -> None:
    conn = connect(path, create=True)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', '0')")
        set_config(conn, config)
    finally:
        conn.close()


def set_config(conn: sqlite3.Connection, config: dict[str, Any]) -> None:
    """Keep a copy of the collection's settings next to the documents, so a lost manifest can be rebuilt."""
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('config', ?)", (json.dumps(config, sort_keys=True),))


def config(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    try:
        out = json.loads(row[0]) if row else None
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def header_problem(path: Path) -> str | None:
    """A cheap look at the file before SQLite opens it: missing, empty, not SQLite, or shorter than it says."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return "is missing"
    except IsADirectoryError:
        return "is a folder"
    if size == 0:
        return "is empty"
    if len(head) < 100 or not head.startswith(_HEADER):
        return "is not an SQLite database"
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    wal = path.with_name(path.name + "-wal")
    valid = head[24:28] == head[92:96]  # the in-header page count is only valid when these agree
    if valid and pages and pages * page > size and not (wal.exists() and wal.stat().st_size):
        return f"is truncated ({size:,} of {pages * page:,} bytes)"
    return None


def schema_problem(conn: sqlite3.Connection) -> str | None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"docs", "meta"} <= tables:
        return f"has no {' or '.join(sorted({'docs', 'meta'} - tables))} table"
    cols = {r[1] for r in conn.execute("PRAGMA table_info(docs)")}
    if not COLUMNS <= cols:
        return f"has a docs table without the column(s) {', '.join(sorted(COLUMNS - cols))}"
    return None


def integrity_problem(path: Path) -> str | None:
    """Full check (reads every page): header, schema, ``PRAGMA integrity_check``; None when sound."""
    why = header_problem(path)
    if why:
        return why
    try:
        conn = connect(path)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
            if rows != ["ok"]:
                return f"fails SQLite's integrity check ({'; '.join(rows)[:200]})"
            return schema_problem(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return f"cannot be read ({err})"


def snapshot(conn: sqlite3.Connection) -> tuple[int, int]:
    """(version, document count) read in one transaction."""
    conn.execute("BEGIN")
    try:
        return version(conn), conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
    finally:
        conn.execute("COMMIT")


def version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        raise sqlite3.DatabaseError(f"meta.version is {row[0]!r}, not a number") from None


def set_version(conn: sqlite3.Connection, v: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(v),))


def count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]


def _chunks(seq: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(seq), _CHUNK):
        yield seq[i : i + _CHUNK]


def rids_of(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, int]:
    """id -> rid for the ids that exist."""
    out: dict[str, int] = {}
    for part in _chunks(list(ids)):
        q = f"SELECT id, rid FROM docs WHERE id IN ({','.join('?' * len(part))})"
        out.update(conn.execute(q, part).fetchall())
    return out


def ids_of(conn: sqlite3.Connection, rids: Iterable[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in _chunks([int(r) for r in rids]):
        q = f"SELECT rid, id FROM docs WHERE rid IN ({','.join('?' * len(part))})"
        out.update(conn.execute(q, part).fetchall())
    return out


def _row_values(rec: dict[str, Any], vec: np.ndarray | None) -> tuple[Any, ...]:
    meta = rec.get("metadata") or {}
    return (
        rec.get("title"),
        rec.get("text"),
        rec.get("path"),
        rec.get("hash"),
        json.dumps(meta, ensure_ascii=False) if meta else None,
        None if vec is None else np.ascontiguousarray(vec, dtype=np.float32).tobytes(),
    )


def write_rows(
    conn: sqlite3.Connection, records: list[dict[str, Any]], vectors: np.ndarray | None, existing: dict[str, int]
) -> tuple[list[int], list[int]]:
    """Insert new records and update existing ones (inside the caller's transaction).

    Returns:
        (rids of inserted rows, rids of updated rows), each in batch order.
    """
    new, upd = [], []
    for i, rec in enumerate(records):
        values = _row_values(rec, None if vectors is None else vectors[i])
        rid = existing.get(rec["id"])
        if rid is None:
            cur = conn.execute(
                "INSERT INTO docs (id, title, text, path, hash, metadata, vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec["id"], *values),
            )
            new.append(cur.lastrowid)
        else:
            conn.execute(
                "UPDATE docs SET title=?, text=?, path=?, hash=?, metadata=?, vector=? WHERE rid=?", (*values, rid)
            )
            upd.append(rid)
    return new, upd


def row_to_record(row: tuple[Any, ...]) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": row[0], "title": row[1] or "", "text": row[2] or "", "metadata": {}}
    if row[3] is not None:
        rec["path"] = row[3]
    if row[4] is not None:
        rec["hash"] = row[4]
    if row[5]:
        rec["metadata"] = json.loads(row[5])
    return rec


def get(conn: sqlite3.Connection, ids: list[str]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for part in _chunks(list(dict.fromkeys(ids))):
        q = f"SELECT {', '.join(FIELDS)} FROM docs WHERE id IN ({','.join('?' * len(part))})"
        for row in conn.execute(q, part):
            found[row[0]] = row_to_record(row)
    return [found[i] for i in ids if i in found]


def find_by(conn: sqlite3.Connection, field: str, value: str) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT id FROM docs WHERE {field} = ? ORDER BY rid", (value,))]


def vector_dim(conn: sqlite3.Connection) -> int | None:
    """Dimension of the stored vectors (from the first row that has one), None when there are none."""
    row = conn.execute("SELECT length(vector) FROM docs WHERE vector IS NOT NULL ORDER BY rid LIMIT 1").fetchone()
    return row[0] // 4 if row and row[0] else None


def all_vectors(conn: sqlite3.Connection, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(rids int64 (n,), vectors float32 (n, dim)) of every row that has a vector."""
    rows = conn.execute("SELECT rid, vector FROM docs WHERE vector IS NOT NULL ORDER BY rid").fetchall()
    rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.empty((len(rows), dim), dtype=np.float32)
    for i, (_, blob) in enumerate(rows):
        vecs[i] = np.frombuffer(blob, dtype=np.float32)
    return rids, vecs


def all_texts(conn: sqlite3.Connection) -> tuple[np.ndarray, list[str]]:
    """(rids, index text = title + text) of every row, for BM25."""
    rows = conn.execute("SELECT rid, title, text FROM docs ORDER BY rid").fetchall()
    rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return rids, [index_text(r[1], r[2]) for r in rows]


def index_text(title: str | None, text: str | None) -> str:
    """Title + text, without repeating a title the text already starts with (as in Cranfield)."""
    title, text = (title or "").strip(), (text or "").strip()
    if title and not text.lower().startswith(title.lower()):
        return f"{title} {text}".strip()
    return text
