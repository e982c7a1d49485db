"""Keeping derived index files in line with SQLite: rebuild after a crash, remove stale versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vltools.store import _bm25, _db, _faiss
from vltools.store._manifest import DB, FILE_RE, MANIFEST, damaged, now, write_manifest


def cleanup(folder: Path, keep_from: int) -> None:
    """Remove index files of versions before ``keep_from`` and leftovers of failed writes."""
    for f in folder.iterdir():
        m = FILE_RE.fullmatch(f.name)
        old = m and int(m.group(1) or m.group(2)) < keep_from
        if old or (f.name.startswith(".") and f.name.endswith(".tmp")):
            shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)


def rebuild(coll: Any, progress=None) -> None:
    """New FAISS and BM25 files from SQLite as the next version, then a new manifest (caller holds the lock)."""
    note = progress or (lambda *a: None)
    man = json.loads(json.dumps(coll.manifest))
    with coll._sql() as conn:
        try:
            version = max(_db.version(conn), man["version"]) + 1
            conn.execute("BEGIN IMMEDIATE")
            _db.set_version(conn, version)
            _db.set_config(conn, config_of(man))
            files: dict[str, str | None] = {"faiss": None, "bm25": None}
            sums: dict[str, Any] = {}
            if coll.has_vectors and man["dim"] is None:  # the first add crashed before its manifest
                man["dim"] = _db.vector_dim(conn)
            if coll.has_vectors and man["dim"] is not None:
                note(0, None, "rebuilding the vector index")
                rids, vecs = _db.all_vectors(conn, man["dim"])
                files["faiss"] = _faiss.file_name(version, man["index"]["params"])
                index = _faiss.build(coll.index_type, man["dim"], man["index"]["params"], rids, vecs)
                sums["faiss"] = _faiss.save(index, coll.path / files["faiss"])
            if coll.has_bm25:
                note(0, None, "rebuilding the BM25 index")
                rids, texts = _db.all_texts(conn)
                files["bm25"] = f"bm25.{version}"
                sums["bm25"] = _bm25.save(_bm25.build(texts, man["bm25"]), rids, coll.path / files["bm25"])
            total = _db.count(conn)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    man.update(version=version, count=total, files=files, checksums=sums, updated=now())
    write_manifest(coll.path, man)
    coll.manifest = man
    cleanup(coll.path, keep_from=version - 1)


def config_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The settings of a collection that do not change with its contents (kept in SQLite too)."""
    keys = ("format", "name", "kind", "model", "metric", "index", "bm25", "created")
    return {k: manifest.get(k) for k in keys}


def recover(coll: Any) -> None:
    """Bring the derived indexes in line with SQLite after a crash (caller holds the write lock)."""
    with coll._sql() as conn:
        db_version = _db.version(conn)
    if db_version > coll.manifest["version"]:
        rebuild(coll)
    elif db_version < coll.manifest["version"]:
        raise damaged(
            coll.name,
            f"{DB} is at version {db_version} but {MANIFEST} at {coll.manifest['version']} "
            "(the documents file was replaced by an older one)",
        )
