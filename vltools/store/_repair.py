"""Repairing a collection: check every file, then rebuild FAISS and BM25 (and, if lost, the manifest)
from the documents in SQLite, which are the source of truth.

What can be repaired: a damaged, missing or foreign index file, a damaged or missing manifest
(its settings are kept in SQLite too), counts that disagree, vectors missing in SQLite (recomputed
by the caller's ``encode``). What cannot: a damaged or missing docs.sqlite, since the documents
themselves are gone; the error says so.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import numpy as np

from vltools.core.errors import Corrupt, ToolError
from vltools.store import _db
from vltools.store._manifest import (
    DB,
    MANIFEST,
    check_name,
    damaged,
    now,
    read_manifest,
    validate_manifest,
    write_lock,
)
from vltools.store._recovery import cleanup, rebuild

# encode(kind, model, records) -> for each record a vector or a string saying why none can be made
Encoder = Callable[[str, str, list[dict[str, Any]]], list[Any]]


def _message(err: ToolError, name: str) -> str:
    return err.message.removeprefix(f"collection {name!r} is damaged: ")


def _manifest_from_config(conn: Any, name: str) -> dict[str, Any]:
    config = _db.config(conn)
    if config is None:
        raise damaged(
            name,
            f"{MANIFEST} is lost and {DB} holds no copy of the collection's settings (it was made by an older "
            "vltools), so collection.repair cannot rebuild it",
            repairable=False,
        )
    stamp = now()
    man = {
        **config,
        "name": name,
        "dim": None,
        "count": 0,
        "version": 0,
        "files": {"faiss": None, "bm25": None},
        "updated": stamp,
        "checksums": {},
    }
    man.setdefault("created", stamp)
    try:
        return validate_manifest(man, name)
    except Corrupt:
        raise damaged(name, f"the settings kept in {DB} are unreadable", repairable=False) from None


def _bad_vectors(conn: Any, dim: int | None) -> tuple[int | None, list[dict[str, Any]]]:
    """(dimension, records whose stored vector is missing, of the wrong size, not finite or zero)."""
    rows = conn.execute("SELECT rid, id, title, text, path, metadata, vector FROM docs ORDER BY rid").fetchall()
    if dim is None:
        sizes = [len(r[6]) // 4 for r in rows if r[6]]
        dim = max(set(sizes), key=sizes.count) if sizes else None
    bad = []
    for rid, id_, title, text, path, meta, blob in rows:
        ok = blob is not None and dim is not None and len(blob) == 4 * dim
        if ok:
            v = np.frombuffer(blob, dtype=np.float32)
            ok = bool(np.isfinite(v).all()) and float(np.linalg.norm(v)) > 0
        if not ok:
            try:
                metadata = json.loads(meta) if meta else {}
            except ValueError:
                metadata = {}
            bad.append({"rid": rid, "id": id_, "title": title or "", "text": text or "", "path": path,
                        "metadata": metadata})  # fmt: skip
    return dim, bad


def repair_collection(
    name: str,
    settings: Any,
    *,
    encode: Encoder | None = None,
    force: bool = False,
    drop_unrepairable: bool = False,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Check a collection and rebuild what is damaged (see the module docstring); under the write lock.

    Returns:
        {"status": "healthy"|"repaired", "problems": [...], "rebuilt": [file names], "reencoded": n,
         "dropped": [ids], "count": n}
    """
    from vltools.store.collection import _not_found

    check_name(name)
    note = progress or (lambda *a: None)
    root = settings.collections_dir
    folder = root / name
    if not folder.is_dir():
        raise _not_found(name, settings)
    with write_lock(root, name):
        note(0, None, "checking the documents")
        why = _db.integrity_problem(folder / DB)
        if why:
            raise damaged(
                name,
                f"{DB} {why}; the documents themselves are damaged, so collection.repair cannot rebuild this "
                "collection",
                repairable=False,
            )
        try:
            return _repair_locked(name, folder, settings, encode, force, drop_unrepairable, note)
        except sqlite3.Error as err:  # checked sound a moment ago; still never a raw error
            raise damaged(name, f"{DB} cannot be read ({err})", repairable=False) from None


def _repair_locked(
    name: str, folder: Any, settings: Any, encode: Encoder | None, force: bool, drop_unrepairable: bool, note: Any
) -> dict[str, Any]:
    """The body of `repair_collection`, with the write lock held and docs.sqlite checked sound."""
    from vltools.store.collection import Collection, _forget

    problems: list[str] = []
    conn = _db.connect(folder / DB)
    try:
        try:
            manifest = read_manifest(folder)
        except FileNotFoundError:
            problems.append(f"{MANIFEST} is missing")
            manifest = None
        except Corrupt as err:
            problems.append(_message(err, name))
            manifest = None
        if manifest is None:
            manifest = _manifest_from_config(conn, name)
        coll = Collection(folder, manifest, settings)
        if not problems:
            _forget(folder)
            note(0, None, "checking the indexes")
            try:
                coll.check(_again=False)
                coll._load("faiss")
                coll._load("bm25")
            except Corrupt as err:
                problems.append(_message(err, name))
            finally:
                _forget(folder)
        reencoded, dropped = 0, []
        if coll.has_vectors:
            dim, bad = _bad_vectors(conn, manifest["dim"])
            if bad:
                problems.append(f"{len(bad)} document(s) in {DB} have no usable vector")
                fixed, lost = _reencode(coll, bad, encode, note, dim)
                if lost and not drop_unrepairable:
                    ids = ", ".join(r["id"] for r, _ in lost[:5])
                    raise Corrupt(
                        f"collection {name!r}: the vectors of {len(lost)} document(s) cannot be recomputed "
                        f"({ids}: {lost[0][1]})",
                        hint="pass drop_unrepairable=true to remove those documents and repair the rest, "
                        "or delete the collection",
                    )
                dim = dim or (len(fixed[0][1]) if fixed else None)
                conn.execute("BEGIN IMMEDIATE")
                for rec, vec in fixed:
                    v = np.asarray(vec, dtype=np.float32).ravel()
                    v = v / max(float(np.linalg.norm(v)), 1e-12)
                    conn.execute("UPDATE docs SET vector = ? WHERE rid = ?", (v.tobytes(), rec["rid"]))
                for rec, _ in lost:
                    conn.execute("DELETE FROM docs WHERE rid = ?", (rec["rid"],))
                conn.execute("COMMIT")
                reencoded, dropped = len(fixed), [r["id"] for r, _ in lost]
            if manifest["dim"] is None and dim is not None:
                manifest["dim"] = int(dim)
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
    if not problems and not force:
        return {"status": "healthy", "problems": [], "rebuilt": [], "reencoded": 0, "dropped": [],
                "count": coll.count}  # fmt: skip
    note(0, None, "rebuilding the indexes")
    rebuild(coll, progress=note)
    cleanup(folder, keep_from=coll.manifest["version"])  # the damaged files are of no use to anyone
    _forget(folder)
    rebuilt = [MANIFEST] + [f for f in coll.manifest["files"].values() if f]
    return {"status": "repaired", "problems": problems, "rebuilt": rebuilt, "reencoded": reencoded,
            "dropped": dropped, "count": coll.count}  # fmt: skip


def _reencode(
    coll: Any, bad: list[dict[str, Any]], encode: Encoder | None, note: Callable[..., None], dim: int | None
) -> tuple[list[tuple[dict[str, Any], Any]], list[tuple[dict[str, Any], str]]]:
    """(records with a new vector, records that cannot get one and why)."""
    if encode is None:
        return [], [(r, "no encoder was given") for r in bad]
    note(0, len(bad), f"recomputing {len(bad)} vector(s)")
    out = encode(coll.kind, coll.model, bad)
    fixed = [(r, v) for r, v in zip(bad, out, strict=True) if not isinstance(v, str)]
    lost = [(r, v) for r, v in zip(bad, out, strict=True) if isinstance(v, str)]
    sizes = {int(np.asarray(v).size) for _, v in fixed}
    if len(sizes) > 1 or (dim is not None and sizes and sizes != {dim}):
        raise damaged(
            coll.name,
            f"the model {coll.model!r} now gives vectors of dimension {sorted(sizes)}, the stored ones have {dim}",
            repairable=False,
        )
    return fixed, lost
