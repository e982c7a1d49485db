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

Damage is detected, never papered over (`Corrupt`, naming the file): opening checks the manifest's
keys and types, that docs.sqlite is an SQLite file of our schema whose version and row count equal
the manifest's, and that the index files exist with the sizes the manifest recorded; loading an
index checks its sha256 (recorded in the manifest at each write), its vector count and dimension.
A missing docs.sqlite is never recreated. `repair_collection` rebuilds what SQLite still holds;
`delete_collection` never opens the collection, so a damaged one can always be removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from vltools.core.errors import Conflict, InvalidInput, NotFound, ToolError, Unsupported
from vltools.store import _bm25, _db, _faiss
from vltools.store._manifest import (
    DB,
    FORMAT,
    MANIFEST,
    MAX_SHARDS,
    NAME_RE,
    check_name,
    damaged,
    now,
    read_manifest,
    write_lock,
    write_manifest,
)
from vltools.store._records import dedupe, normalise
from vltools.store._recovery import cleanup, config_of, rebuild, recover

KINDS = ("text", "image", "video")
INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq")
NO_MODEL = "none"  # a text collection with BM25 only
TRASH_PREFIX = ".trash-"
_NOUN = {"text": "text documents", "image": "images", "video": "videos"}
_KIND_TOOLS = {
    "text": "collection.add, retrieve.bm25/dense/hybrid and eval.retrieval",
    "image": "image.index, image.search and retrieve.dense",
    "video": "video.index, video.search and retrieve.dense",
}

# Loaded derived indexes, per collection folder: {"faiss"|"bm25": (version, file signature, object)}.
_CACHE: dict[str, dict[str, tuple[int, Any, Any]]] = {}
_CACHE_LOCK = threading.Lock()


def _cached(folder: Path, what: str, version: int, sig: Any) -> Any | None:
    with _CACHE_LOCK:
        hit = _CACHE.get(str(folder), {}).get(what)
    return hit[2] if hit and hit[0] == version and hit[1] == sig else None


def _remember(folder: Path, what: str, version: int, sig: Any, obj: Any) -> None:
    with _CACHE_LOCK:
        _CACHE.setdefault(str(folder), {})[what] = (version, sig, obj)


def _forget(folder: Path) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(str(folder), None)


def _signature(path: Path) -> tuple[Any, ...]:
    """Identity of an index file or folder (inode, size, mtime of it and its files): a cached index is
    reused only while this is unchanged, so a replaced or damaged file is read (and checked) again."""
    st = os.stat(path)
    sig: list[Any] = [(st.st_ino, st.st_size, st.st_mtime_ns)]
    if path.is_dir():
        for e in sorted(os.scandir(path), key=lambda e: e.name):
            es = e.stat()
            sig.append((e.name, es.st_ino, es.st_size, es.st_mtime_ns))
    return tuple(sig)


def _why(err: BaseException) -> str:
    """How an index file failed to load, in a few words."""
    if isinstance(err, FileNotFoundError):
        return "is missing"
    if isinstance(err, ValueError):
        return str(err)
    first = (str(err).strip().splitlines() or [""])[0][:160]
    return f"cannot be read ({type(err).__name__}: {first})"


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
    shards = property(lambda self: _faiss.shard_count(self.manifest["index"]["params"]))

    @property
    def has_vectors(self) -> bool:
        return self.model != NO_MODEL

    @property
    def has_bm25(self) -> bool:
        return self.kind == "text"

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, kind={self.kind}, model={self.model}, count={self.count})"

    def require_kind(self, kind: str, tool: str = "this tool") -> None:
        """InvalidInput unless the collection holds ``kind``; the hint names the tools for what it holds."""
        if self.kind != kind:
            article = "an" if kind[0] in "aeiou" else "a"
            raise InvalidInput(
                f"{tool} needs {article} {kind} collection; {self.name!r} holds {_NOUN.get(self.kind, self.kind)}",
                hint=f"{self.kind} collections work with {_KIND_TOOLS.get(self.kind, 'other tools')}; "
                f"pass {article} {kind} collection here",
            )

    # -- files and errors -------------------------------------------------------------
    def _conn(self):
        return _db.connect(self.path / DB)

    def _gone(self) -> bool:
        return not self.path.is_dir()

    def _deleted(self) -> NotFound:
        return NotFound(
            f"collection {self.name!r} was deleted",
            hint="create it again with collection.create, or use another collection",
        )

    def _db_error(self, err: sqlite3.Error) -> ToolError:
        """A ToolError for an SQLite failure: deleted meanwhile, busy, or a damaged docs.sqlite."""
        if self._gone():
            return self._deleted()
        text = str(err)
        if "locked" in text or "busy" in text:
            return Conflict(f"collection {self.name!r} is busy ({text})", hint="retry in a moment")
        why = _db.header_problem(self.path / DB) or f"cannot be read ({text})"
        return damaged(self.name, f"{DB} {why}", repairable=False)

    @contextlib.contextmanager
    def _sql(self):
        """A connection to docs.sqlite whose failures become ToolErrors (never raw sqlite3 errors)."""
        try:
            conn = self._conn()
        except sqlite3.Error as err:
            raise self._db_error(err) from None
        try:
            yield conn
        except sqlite3.Error as err:
            raise self._db_error(err) from None
        finally:
            conn.close()

    def refresh(self) -> Collection:
        """Re-read the manifest (NotFound when the collection was deleted, Corrupt when it is damaged)."""
        try:
            self.manifest = read_manifest(self.path)
        except FileNotFoundError:
            if self._gone():
                raise self._deleted() from None
            raise damaged(self.path.name, f"{MANIFEST} is missing") from None
        except NotADirectoryError:
            raise self._deleted() from None
        return self

    def _expects(self, what: str) -> bool:
        """Whether the current manifest must name an index file of this kind."""
        if what == "faiss":
            return self.has_vectors and self.count > 0
        return self.has_bm25 and self.count > 0

    def _quick_problem(self, what: str) -> str | None:
        """Missing file or wrong size, from a stat (no reading)."""
        fname = self.manifest["files"].get(what)
        if fname is None:
            return f"{MANIFEST} names no {what} index for {self.count} documents" if self._expects(what) else None
        path = self.path / fname
        sums = self.manifest.get("checksums", {}).get(what)
        if what == "faiss" and not fname.endswith(".shards"):
            expected = {fname: sums.get("size") if sums else None}
            folder = self.path
        else:
            first = "rids.npy" if what == "bm25" else _faiss.SHARD_FILE.format(0)
            expected = {f: size for f, (size, _) in (sums or {first: (None, None)}).items()}
            folder = path
            if not path.is_dir():
                return f"{fname} is missing"
        for f, size in expected.items():
            shown = f if folder == self.path else f"{fname}/{f}"
            try:
                found = (folder / f).stat().st_size
            except FileNotFoundError:
                return f"{shown} is missing"
            if size is not None and found != size:
                return f"{shown} has {found:,} bytes, the manifest recorded {size:,}"
        return None

    def check(self, *, _again: bool = True) -> Collection:
        """The checks done on open: docs.sqlite readable with our schema, its version and count equal to
        the manifest's (a crashed writer's commit is settled first), index files present with their
        recorded sizes. Raises NotFound or Corrupt (naming the file)."""
        why = _db.header_problem(self.path / DB)
        if why:
            if self._gone():
                raise self._deleted()
            raise damaged(self.name, f"{DB} {why}", repairable=False)
        with self._sql() as conn:
            problem = _db.schema_problem(conn)
            if problem:
                raise damaged(self.name, f"{DB} {problem}", repairable=False)
            version, count = _db.snapshot(conn)
        if version != self.manifest["version"] and _again:
            # A writer crashed after committing, or one is just finishing: settle under the lock.
            with write_lock(self.path.parent, self.name):
                self.refresh()
                recover(self)
            return self.check(_again=False)
        if version != self.manifest["version"]:
            raise damaged(self.name, f"{DB} is at version {version}, {MANIFEST} at {self.manifest['version']}")
        if count != self.count:
            raise damaged(self.name, f"{DB} holds {count} documents but {MANIFEST} records {self.count}")
        for what in ("faiss", "bm25"):
            for _ in range(5):
                problem = self._quick_problem(what)
                if problem is None:
                    break
                old = self.manifest["version"]
                self.refresh()  # a writer may have moved on and removed the files we were told about
                if self.manifest["version"] == old:
                    raise damaged(self.name, problem)
        return self

    def verify(self) -> Collection:
        """`check` plus loading both indexes (checksums, vector count and dimension); raises Corrupt."""
        self.check()
        self._load("faiss")
        self._load("bm25")
        return self

    # -- reading ----------------------------------------------------------------------
    def _read_index(self, what: str, path: Path) -> Any:
        sums = self.manifest.get("checksums", {}).get(what)
        if what == "faiss":
            index = _faiss.load(path, sums)
            if index.ntotal != self.count:
                raise ValueError(f"holds {index.ntotal} vectors but the collection has {self.count} documents")
            if self.dim is not None and index.d != self.dim:
                raise ValueError(f"has dimension {index.d}, the collection {self.dim}")
            return index
        retriever, rids = _bm25.load(path, sums)
        if len(rids) != self.count:
            raise ValueError(f"indexes {len(rids)} documents but the collection has {self.count}")
        return retriever, rids

    def _load(self, what: str) -> Any:
        """The FAISS index or (bm25 retriever, rids) of the current manifest version.

        A file that fails to load is a concurrent writer's doing only if the manifest moved on
        meanwhile; otherwise the collection is damaged (Corrupt, naming the file).
        """
        for _ in range(5):
            version, fname = self.manifest["version"], self.manifest["files"].get(what)
            if fname is None:
                if self._expects(what):
                    raise damaged(self.name, f"{MANIFEST} names no {what} index for {self.count} documents")
                return None
            path = self.path / fname
            try:
                sig = _signature(path)
                obj = _cached(self.path, what, version, sig)
                if obj is None:
                    obj = self._read_index(what, path)
                    _remember(self.path, what, version, sig, obj)
                return obj
            except Exception as err:  # missing, truncated, garbage, checksum, count or dimension
                problem = f"{fname} {_why(err)}"
            self.refresh()  # NotFound when deleted meanwhile, Corrupt when the manifest is damaged
            if self.manifest["version"] == version:
                raise damaged(self.name, problem)
        raise Conflict(f"collection {self.name!r} is being rewritten faster than it can be read", hint="retry")

    def shard_info(self) -> list[dict[str, Any]]:
        """One entry per vector-index shard: {"shard", "file", "vectors", "bytes"} (loads the index).

        An unsharded collection has one shard, its single index file; a collection without vectors none.
        """
        if not self.has_vectors:
            return []
        index = self._load("faiss")
        fname = self.manifest["files"].get("faiss")
        if index is None or fname is None:
            return [{"shard": i, "file": None, "vectors": 0, "bytes": 0} for i in range(self.shards)]
        sums = self.manifest.get("checksums", {}).get("faiss") or {}
        if not _faiss.is_sharded(index):
            return [{"shard": 0, "file": fname, "vectors": int(index.ntotal), "bytes": sums.get("size")}]
        return [
            {"shard": i, "file": f"{fname}/{_faiss.SHARD_FILE.format(i)}", "vectors": n,
             "bytes": (sums.get(_faiss.SHARD_FILE.format(i)) or [None])[0]}
            for i, n in enumerate(index.sizes())
        ]  # fmt: skip

    def _ids(self, rids: list[int]) -> dict[int, str]:
        with self._sql() as conn:
            return _db.ids_of(conn, rids)

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
        if _faiss.use_gpu(self.settings):
            index = self._on_gpu(index)
        scores, labels = _faiss.search(index, self.index_type, self.manifest["index"]["params"], q, k)
        names = self._ids([int(x) for x in labels.ravel() if x >= 0])
        return [
            [(names[int(r)], float(s)) for s, r in zip(srow, lrow, strict=True) if r >= 0 and int(r) in names]
            for srow, lrow in zip(scores, labels, strict=True)
        ]

    def _on_gpu(self, index: Any) -> Any:
        """The GPU copy of the loaded CPU index (cached beside it: made again when the CPU index changes)."""
        version = self.manifest["version"]
        hit = _cached(self.path, "faiss-gpu", version, id(index))
        if hit is None:
            hit = _faiss.to_gpu(index)
            _remember(self.path, "faiss-gpu", version, id(index), hit)
        return hit

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Nearest documents to one (dim,) vector by inner product, best first."""
        return self.search_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)[0]

    def bm25_search(self, query: str, k: int) -> list[tuple[str, float]]:
        """BM25 top-k (id, score), best first; documents sharing no term with the query are left out."""
        self.require_kind("text", "BM25 retrieval")
        loaded = self._load("bm25")
        if loaded is None:
            return []
        retriever, rids = loaded
        hits = _bm25.search(retriever, rids, query, k, self.manifest["bm25"])
        names = self._ids([r for r, _ in hits])
        return [(names[r], s) for r, s in hits if r in names]

    def get(self, ids: list[str]) -> list[dict[str, Any]]:
        """Stored records for ``ids`` in the order given (missing ids skipped)."""
        with self._sql() as conn:
            return _db.get(conn, list(ids))

    def has(self, ids: list[str]) -> set[str]:
        with self._sql() as conn:
            return set(_db.rids_of(conn, ids))

    def find_by(self, field: str, value: str) -> list[str]:
        """Ids of records whose ``field`` ("hash" or "path") equals ``value``."""
        if field not in ("hash", "path"):
            raise InvalidInput(f"find_by field must be 'hash' or 'path', not {field!r}")
        with self._sql() as conn:
            return _db.find_by(conn, field, value)

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
            self.check(_again=False)  # we hold the lock: nothing to settle, and a damaged file stops the add
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
        files: dict[str, str | None] = {"faiss": None, "bm25": None}
        sums: dict[str, Any] = {}
        with self._sql() as conn:
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
                _db.set_config(conn, config_of(man))
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
                    files["faiss"] = _faiss.file_name(version, man["index"]["params"])
                    new_files.append(self.path / files["faiss"])
                    sums["faiss"] = _faiss.save(index, new_files[-1])
                if self.has_bm25:
                    note(0, len(recs), "indexing BM25")
                    rids, texts = _db.all_texts(conn)
                    files["bm25"] = f"bm25.{version}"
                    new_files.append(self.path / files["bm25"])
                    sums["bm25"] = _bm25.save(_bm25.build(texts, man["bm25"]), rids, new_files[-1])
                total = _db.count(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for f in new_files:
                    shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)
                raise
        man.update(version=version, count=total, files=files, checksums=sums, updated=now())
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
    shards: int = 1,
) -> Collection:
    """Create an empty collection (Conflict if it exists, unless ``exist_ok`` and it matches).

    ``shards`` > 1 splits the vector index into that many shards (searched in parallel, merged exactly).
    """
    check_name(name)
    if kind not in KINDS:
        raise InvalidInput(f"unknown collection kind {kind!r}", hint=f"choose one of {', '.join(KINDS)}")
    if index not in INDEX_TYPES:
        raise InvalidInput(f"unknown index type {index!r}", hint=f"choose one of {', '.join(INDEX_TYPES)}")
    if not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InvalidInput(f"shards must be between 1 and {MAX_SHARDS}, got {shards!r}")
    if not model:
        raise InvalidInput("a collection needs a model spec", hint="e.g. 'minilm' for text or 'demo' for images")
    if model == NO_MODEL and kind != "text":
        raise InvalidInput(f"a {kind} collection needs a model (only text collections can be BM25-only)")
    root = settings.collections_dir
    root.mkdir(parents=True, exist_ok=True)
    with write_lock(root, name):
        folder = root / name
        if os.path.lexists(folder):
            try:
                coll = Collection(folder, read_manifest(folder), settings)
            except (OSError, ToolError) as err:
                why = err.message if isinstance(err, ToolError) else f"{MANIFEST} cannot be read"
                raise Conflict(
                    f"collection {name!r} already exists and is damaged ({why})",
                    hint="repair it with collection.repair, or remove it with collection.delete",
                ) from None
            if exist_ok and coll.kind == kind and coll.model == model:
                return coll
            why = "" if not exist_ok else f" with kind={coll.kind}, model={coll.model}"
            raise Conflict(
                f"collection {name!r} already exists{why}",
                hint="pick another name, or delete it first with collection.delete",
            )
        manifest = {
            "format": FORMAT,
            "name": name,
            "kind": kind,
            "model": model,
            "dim": None,
            "metric": "ip",
            "index": {"type": index, "params": {**_faiss.DEFAULT_PARAMS[index], **(index_params or {}),
                                                **({"shards": shards} if shards > 1 else {})}},
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
            _db.init(tmp / DB, config_of(manifest))
            write_manifest(tmp, manifest)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _forget(folder)
    return Collection(folder, manifest, settings)


def clean_trash(root: Path) -> None:
    """Remove what deletes left behind (a killed delete, or files a reader created meanwhile)."""
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(TRASH_PREFIX)]
    except OSError:
        return
    for e in entries:
        path = Path(e.path)
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
            continue
        for _ in range(3):  # a reader may still create a -wal/-shm file in it while we remove it
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.lexists(path):
                break


def list_collections(settings: Any) -> list[str]:
    """Names of the collection folders (damaged ones too: opening them says what is wrong)."""
    root = settings.collections_dir
    if not root.is_dir():
        return []
    clean_trash(root)
    return sorted(p.name for p in root.iterdir() if NAME_RE.fullmatch(p.name) and p.is_dir())


def _not_found(name: str, settings: Any, hint: str | None = None) -> NotFound:
    if hint is None:
        names = list_collections(settings)
        hint = f"existing collections: {', '.join(names[:20])}" if names else "create one with collection.create"
    return NotFound(f"no collection named {name!r}", hint=hint)


def open_collection(name: str, settings: Any) -> Collection:
    """Open an existing collection and check it (NotFound lists the existing names; Corrupt names the
    damaged file)."""
    check_name(name)
    root = settings.collections_dir
    clean_trash(root)
    folder = root / name
    if not folder.is_dir():
        raise _not_found(name, settings)
    try:
        manifest = read_manifest(folder)
    except (FileNotFoundError, NotADirectoryError):
        if not folder.is_dir():  # deleted meanwhile
            raise _not_found(name, settings) from None
        raise damaged(name, f"{MANIFEST} is missing") from None
    return Collection(folder, manifest, settings).check()


def delete_collection(name: str, settings: Any) -> int | None:
    """Delete a collection folder, even a damaged one (it is not opened); returns the document count
    its manifest recorded (None when unreadable). NotFound if there is no such folder."""
    check_name(name)
    root = settings.collections_dir
    folder = root / name
    if not os.path.lexists(folder):
        raise _not_found(name, settings)
    with write_lock(root, name):
        if not os.path.lexists(folder):  # deleted by someone else while we waited
            raise _not_found(name, settings, hint="it was just deleted")
        try:
            count: int | None = read_manifest(folder)["count"]
        except (OSError, ToolError):
            count = None
        os.rename(folder, root / f"{TRASH_PREFIX}{name}-{uuid.uuid4().hex}")
    _forget(folder)
    clean_trash(root)
    return count
