"""Keeping derived index files in line with SQLite: rebuild after a crash, remove stale versions."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from vltools.store import _bm25, _db, _faiss
from vltools.store._manifest import now, write_manifest

_FILE_RE = re.compile(r"^(?:index\.(\d+)\.faiss|bm25\.(\d+))$")


def cleanup(folder: Path, keep_from: int) -> None:
    """Remove index files of versions before ``keep_from`` and leftovers of failed writes."""
    for f in folder.iterdir():
        m = _FILE_RE.match(f.name)
        old = m and int(m.group(1) or m.group(2)) < keep_from
        if old or (f.name.startswith(".") and f.name.endswith(".tmp")):
            shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)


def rebuild(coll: Any) -> None:
    man = json.loads(json.dumps(coll.manifest))
    conn = coll._conn()
    try:
        version = max(_db.version(conn), man["version"]) + 1
        conn.execute("BEGIN IMMEDIATE")
        _db.set_version(conn, version)
        files: dict[str, str | None] = {"faiss": None, "bm25": None}
        if coll.has_vectors and man["dim"] is not None:
            rids, vecs = _db.all_vectors(conn, man["dim"])
            files["faiss"] = f"index.{version}.faiss"
            index = _faiss.build(coll.index_type, man["dim"], man["index"]["params"], rids, vecs)
            _faiss.save(index, coll.path / files["faiss"])
        if coll.has_bm25:
            rids, texts = _db.all_texts(conn)
            files["bm25"] = f"bm25.{version}"
            _bm25.save(_bm25.build(texts, man["bm25"]), rids, coll.path / files["bm25"])
        total = _db.count(conn)
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
    man.update(version=version, count=total, files=files, updated=now())
    write_manifest(coll.path, man)
    coll.manifest = man
    cleanup(coll.path, keep_from=version - 1)


def recover(coll: Any) -> None:
    """Bring the derived indexes in line with SQLite after a crash (caller holds the write lock)."""
    conn = coll._conn()
    try:
        db_version = _db.version(conn)
    finally:
        conn.close()
    if db_version != coll.manifest["version"]:
        rebuild(coll)
