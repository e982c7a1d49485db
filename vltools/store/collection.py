"""`Collection`: a folder with manifest.json, docs.sqlite, a FAISS index and (text) a BM25 index.

Write protocol (``Collection.add``), all under the collection's cross-process file lock:

1. validate the batch (ids, fields, sizes, vectors) — nothing is touched if anything is wrong;
2. in one SQLite transaction write the rows (vectors included: SQLite is the source of truth)
   and bump the version ``v`` stored in the database;
3. build the next FAISS index and BM25 index from it as *new* files ``index.{v}.faiss`` and
   ``bm25.{v}/`` (temp name + rename); any failure rolls the transaction back and removes them;
4. commit, then atomically replace manifest.json (which names the files of version ``v``);
5. remove files older than ``v - 1`` (readers that just read manifest ``v-1`` still find theirs).

A crash between 4's commit and the manifest leaves the database one version ahead; the next
open notices (``meta.version != manifest.version``) and rebuilds the derived indexes from SQLite.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from vltools.core.errors import Conflict, InvalidInput, NotFound, Unsupported
from vltools.store import _bm25, _db, _faiss
from vltools.store._manifest import DB, FORMAT, MANIFEST, check_name, now, read_manifest, write_lock, write_manifest
from vltools.store._records import dedupe, normalise
from vltools.store._recovery import cleanup, rebuild, recover

KINDS = ("text", "image", "video")
INDEX_TYPES = ("flat", "hnsw", "ivf")
NO_MODEL = "none"  # a text collection with BM25 only

# Loaded derived indexes, per collection folder: {"faiss"|"bm25": (version, object)}.
_CACHE: dict[str, dict[str, tuple[int, Any]]] = {}
_CACHE_LOCK = threading.Lock()


def _cached(folder: Path, what: str, version: int) -> Any | None:
    with _CACHE_LOCK:
        hit = _CACHE.get(str(folder), {}).get(what)
    return hit[1] if hit and hit[0] == version else None


def _remember(folder: Path, what: str, version: int, obj: Any) -> None:
    with _CACHE_LOCK:
        _CACHE.setdefault(str(folder), {})[what] = (version, obj)


def _forget(folder: Path) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(str(folder), None)


class Collection:
    """A handle on one collection; cheap to create (indexes load lazily and are cached per process)."""

    def __init__(self, folder: Path, manifest: dict[str, Any], settings: Any) -> None:
        self.path = folder
        self.manifest = manifest
        self.settings = settings

    # -- manifest fields --------------------------------------------------------------
    name = property(lambda self: self.manifest["name"])
    kind = property(lambda self: self.manifest["kind"])
    model = property(lambda self: self.manifest["model"])
    dim = property(lambda self: self.manifest["dim"])
    count = property(lambda self: self.manifest["count"])
    index_type = property(lambda self: self.manifest["index"]["type"])

    @property
    def has_vectors(self) -> bool:
        return self.model != NO_MODEL

    @property
    def has_bm25(self) -> bool:
        return self.kind == "text"

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, kind={self.kind}, model={self.model}, count={self.count})"

    def _conn(self):
        return _db.connect(self.path / DB)

    def refresh(self) -> Collection:
        self.manifest = read_manifest(self.path)
        return self

    # -- reading ----------------------------------------------------------------------
    def _load(self, what: str) -> Any:
        """The FAISS index or (bm25 retriever, rids) of the current manifest version."""
        for _ in range(5):
            version, fname = self.manifest["version"], self.manifest["files"].get(what)
            if fname is None:
                return None
            obj = _cached(self.path, what, version)
            if obj is not None:
                return obj
            try:
                obj = _faiss.load(self.path / fname) if what == "faiss" else _bm25.load(self.path / fname)
            except (FileNotFoundError, RuntimeError):
                # A writer replaced this version meanwhile: read the new manifest and retry.
                self.refresh()
                continue
            _remember(self.path, what, version, obj)
            return obj
        raise RuntimeError(f"collection {self.name}: index files keep changing; try again")

    def _ids(self, rids: list[int]) -> dict[int, str]:
        conn = self._conn()
        try:
            return _db.ids_of(conn, rids)
        finally:
            conn.close()

    def search_many(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Nearest documents by inner product for each row of ``vectors`` (n, dim)."""
        if not self.has_vectors:
            raise Unsupported(
                f"collection {self.name!r} has no vectors (it was created with model 'none')",
                hint="use BM25 retrieval, or create a collection with a text model",
            )
        q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if self.dim is not None and q.shape[1] != self.dim:
            raise InvalidInput(f"query vector has dimension {q.shape[1]}, collection {self.name!r} has {self.dim}")
        index = self._load("faiss")
        if index is None or index.ntotal == 0:
            return [[] for _ in range(len(q))]
        scores, labels = _faiss.search(index, self.index_type, self.manifest["index"]["params"], q, k)
        names = self._ids([int(x) for x in labels.ravel() if x >= 0])
        return [
            [(names[int(r)], float(s)) for s, r in zip(srow, lrow, strict=True) if r >= 0 and int(r) in names]
            for srow, lrow in zip(scores, labels, strict=True)
        ]

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Nearest documents to one (dim,) vector by inner product, best first."""
        return self.search_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)[0]

    def bm25_search(self, query: str, k: int) -> list[tuple[str, float]]:
        """BM25 top-k (id, score), best first; documents sharing no term with the query are left out."""
        if not self.has_bm25:
            raise Unsupported(
                f"collection {self.name!r} holds {self.kind}s, which have no BM25 index",
                hint="BM25 works on text collections; use dense retrieval for image and video collections",
            )
        loaded = self._load("bm25")
        if loaded is None:
            return []
        retriever, rids = loaded
        hits = _bm25.search(retriever, rids, query, k, self.manifest["bm25"])
        names = self._ids([r for r, _ in hits])
        return [(names[r], s) for r, s in hits if r in names]

    def get(self, ids: list[str]) -> list[dict[str, Any]]:
        """Stored records for ``ids`` in the order given (missing ids skipped)."""
        conn = self._conn()
        try:
            return _db.get(conn, list(ids))
        finally:
            conn.close()

    def has(self, ids: list[str]) -> set[str]:
        conn = self._conn()
        try:
            return set(_db.rids_of(conn, ids))
        finally:
            conn.close()

    def find_by(self, field: str, value: str) -> list[str]:
        """Ids of records whose ``field`` ("hash" or "path") equals ``value``."""
        if field not in ("hash", "path"):
            raise InvalidInput(f"find_by field must be 'hash' or 'path', not {field!r}")
        conn = self._conn()
        try:
            return _db.find_by(conn, field, value)
        finally:
            conn.close()

    # -- writing ----------------------------------------------------------------------
    def add(
        self,
        records: list[dict[str, Any]],
        vectors: np.ndarray | None = None,
        *,
        upsert: bool = False,
        progress=None,
    ) -> dict[str, int]:
        """Add (or with ``upsert`` replace) records, all or nothing.

        Args:
            records: dicts with "id" and any of "text", "title", "metadata" (dict), "path", "hash";
                other keys are folded into metadata.
            vectors: float32 (n, dim), row i for records[i]; required when the collection has a model.
            upsert: replace records whose id exists instead of answering Conflict.
            progress: optional callable(done, total, note).

        Returns:
            {"added": n_new, "updated": n_replaced, "count": total after the add}
        """
        note = progress or (lambda *a: None)
        recs = normalise(records, self.settings.max_document_chars)
        vecs = self._check_vectors(recs, vectors)
        recs, vecs = dedupe(recs, vecs, upsert)
        if not recs:
            return {"added": 0, "updated": 0, "count": self.count}
        with write_lock(self.path.parent, self.name):
            self.refresh()
            recover(self)
            return self._write(recs, vecs, upsert, note)

    def _check_vectors(self, recs: list[dict[str, Any]], vectors: np.ndarray | None) -> np.ndarray | None:
        if not self.has_vectors:
            if vectors is not None:
                raise InvalidInput(f"collection {self.name!r} has no model; do not pass vectors")
            return None
        if vectors is None:
            raise InvalidInput(f"collection {self.name!r} stores {self.model} vectors; pass one per record")
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[0] != len(recs):
            raise InvalidInput(f"vectors must have shape ({len(recs)}, dim), got {tuple(v.shape)}")
        if self.dim is not None and v.shape[1] != self.dim:
            raise InvalidInput(
                f"vectors have dimension {v.shape[1]} but collection {self.name!r} holds dimension {self.dim}",
                hint=f"encode with the collection's model {self.model!r}",
            )
        if not np.isfinite(v).all():
            raise InvalidInput("vectors contain NaN or infinity")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InvalidInput("a vector is all zeros; it cannot be normalised")
        return np.ascontiguousarray(v / norms, dtype=np.float32)

    def _write(self, recs, vecs, upsert: bool, note) -> dict[str, int]:
        man = json.loads(json.dumps(self.manifest))  # a copy to edit
        version = man["version"] + 1
        if vecs is not None and man["dim"] is None:
            man["dim"] = int(vecs.shape[1])
        new_files: list[Path] = []
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            existing = _db.rids_of(conn, [r["id"] for r in recs])
            if existing and not upsert:
                some = ", ".join(sorted(existing)[:5])
                raise Conflict(
                    f"{len(existing)} id(s) already in collection {self.name!r}: {some}",
                    hint="pass upsert=true to replace them, or use new ids",
                )
            note(0, len(recs), "writing documents")
            new_rids, upd_rids = _db.write_rows(conn, recs, vecs, existing)
            _db.set_version(conn, version)
            files: dict[str, str | None] = {"faiss": None, "bm25": None}
            if vecs is not None:
                note(0, len(recs), "indexing vectors")
                is_new = np.array([r["id"] not in existing for r in recs])
                index = _faiss.update(
                    self._load("faiss"),
                    self.index_type,
                    man["dim"],
                    man["index"]["params"],
                    np.array(new_rids, dtype=np.int64),
                    vecs[is_new],
                    np.array(upd_rids, dtype=np.int64),
                    vecs[~is_new],
                    lambda: _db.all_vectors(conn, man["dim"]),
                )
                files["faiss"] = f"index.{version}.faiss"
                new_files.append(self.path / files["faiss"])
                _faiss.save(index, new_files[-1])
            if self.has_bm25:
                note(0, len(recs), "indexing BM25")
                rids, texts = _db.all_texts(conn)
                files["bm25"] = f"bm25.{version}"
                new_files.append(self.path / files["bm25"])
                _bm25.save(_bm25.build(texts, man["bm25"]), rids, new_files[-1])
            total = _db.count(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for f in new_files:
                shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)
            raise
        finally:
            conn.close()
        man.update(version=version, count=total, files=files, updated=now())
        write_manifest(self.path, man)
        self.manifest = man
        cleanup(self.path, keep_from=version - 1)
        with contextlib.suppress(Exception):  # the add has landed: a late timeout must not hide that
            note(len(recs), len(recs), "done")
        return {"added": len(new_rids), "updated": len(upd_rids), "count": total}

    def rebuild(self) -> None:
        """Rebuild the derived indexes from SQLite (under the write lock)."""
        with write_lock(self.path.parent, self.name):
            self.refresh()
            rebuild(self)


# -- collection-level functions ---------------------------------------------------------
def create_collection(
    name: str,
    kind: str,
    *,
    model: str,
    settings: Any,
    index: str = "flat",
    exist_ok: bool = False,
    index_params: dict[str, Any] | None = None,
    bm25_params: dict[str, Any] | None = None,
) -> Collection:
    """Create an empty collection (Conflict if it exists, unless ``exist_ok`` and it matches)."""
    check_name(name)
    if kind not in KINDS:
        raise InvalidInput(f"unknown collection kind {kind!r}", hint=f"choose one of {', '.join(KINDS)}")
    if index not in INDEX_TYPES:
        raise InvalidInput(f"unknown index type {index!r}", hint=f"choose one of {', '.join(INDEX_TYPES)}")
    if not model:
        raise InvalidInput("a collection needs a model spec", hint="e.g. 'minilm' for text or 'demo' for images")
    if model == NO_MODEL and kind != "text":
        raise InvalidInput(f"a {kind} collection needs a model (only text collections can be BM25-only)")
    root = settings.collections_dir
    root.mkdir(parents=True, exist_ok=True)
    with write_lock(root, name):
        folder = root / name
        if (folder / MANIFEST).exists():
            coll = Collection(folder, read_manifest(folder), settings)
            if exist_ok and coll.kind == kind and coll.model == model:
                return coll
            why = "" if not exist_ok else f" with kind={coll.kind}, model={coll.model}"
            raise Conflict(
                f"collection {name!r} already exists{why}",
                hint="pick another name, or delete it first with collection.delete",
            )
        if folder.exists():  # a half-created folder from a crash: nothing in it was ever visible
            shutil.rmtree(folder)
        manifest = {
            "format": FORMAT,
            "name": name,
            "kind": kind,
            "model": model,
            "dim": None,
            "metric": "ip",
            "index": {"type": index, "params": {**_faiss.DEFAULT_PARAMS[index], **(index_params or {})}},
            "bm25": {**_bm25.DEFAULT_PARAMS, **(bm25_params or {})} if kind == "text" else None,
            "count": 0,
            "version": 0,
            "files": {"faiss": None, "bm25": None},
            "created": now(),
            "updated": now(),
        }
        tmp = root / f".{name}.creating.{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            _db.init(tmp / DB)
            write_manifest(tmp, manifest)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _forget(folder)
    return Collection(folder, manifest, settings)


def list_collections(settings: Any) -> list[str]:
    root = settings.collections_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def open_collection(name: str, settings: Any) -> Collection:
    """Open an existing collection (NotFound lists the existing names)."""
    check_name(name)
    folder = settings.collections_dir / name
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError:
        names = list_collections(settings)
        hint = f"existing collections: {', '.join(names[:20])}" if names else "create one with collection.create"
        raise NotFound(f"no collection named {name!r}", hint=hint) from None
    coll = Collection(folder, manifest, settings)
    conn = coll._conn()
    try:
        behind = _db.version(conn) != manifest["version"]
    finally:
        conn.close()
    if behind:  # a writer crashed after committing, or one is just finishing: settle under the lock
        with write_lock(settings.collections_dir, name):
            coll.refresh()
            recover(coll)
    return coll


def delete_collection(name: str, settings: Any) -> None:
    """Delete a collection folder (NotFound if it does not exist)."""
    coll = open_collection(name, settings)
    root = settings.collections_dir
    with write_lock(root, name):
        if not (coll.path / MANIFEST).exists():  # deleted by someone else while we waited
            raise NotFound(f"no collection named {name!r}", hint="it was just deleted")
        trash = root / f".trash-{name}-{uuid.uuid4().hex}"
        coll.path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    _forget(coll.path)
