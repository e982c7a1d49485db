"""Collection folders: names, the manifest file, atomic writes and the cross-process write lock."""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vltools.core.errors import Conflict, Corrupt, InvalidInput

FORMAT = 1
MANIFEST = "manifest.json"
DB = "docs.sqlite"
LOCK_DIR = ".locks"
MAX_SHARDS = 256
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# How long a writer waits for another process's write to finish before answering Conflict.
LOCK_TIMEOUT_S = 120.0


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"bad collection name {name!r}",
            hint="use 1-100 characters: letters, digits, '_', '-', '.', starting with a letter or digit",
        )
    return name


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace (readers see old or new)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())


def damaged(name: str, what: str, *, repairable: bool = True) -> Corrupt:
    """The error for a damaged collection file: ``what`` names the file and the damage."""
    hint = (
        f'run collection.repair {{"collection": "{name}"}} to rebuild the indexes from the documents, '
        "or collection.delete to remove it"
        if repairable
        else "delete it with collection.delete and add the documents again"
    )
    return Corrupt(f"collection {name!r} is damaged: {what}", hint=hint)


_KINDS = ("text", "image", "video")
_INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq")
# index.{v}.faiss (one index), index.{v}.shards (a folder of shard files), bm25.{v} (a folder)
FILE_RE = re.compile(r"index\.(\d+)\.(?:faiss|shards)|bm25\.(\d+)")


def validate_manifest(m: Any, name: str) -> dict[str, Any]:
    """Check the keys and types of a manifest (and that its file names are our own); Corrupt if not."""

    def bad(why: str) -> Corrupt:
        return damaged(name, f"{MANIFEST} {why}")

    if not isinstance(m, dict):
        raise bad(f"holds a JSON {type(m).__name__}, not an object")
    if m.get("format") != FORMAT:
        raise bad(f"has format {m.get('format')!r}; this vltools reads format {FORMAT}")
    need = {
        "name": str, "kind": str, "model": str, "metric": str, "index": dict, "count": int, "version": int,
        "files": dict, "created": str, "updated": str,
    }  # fmt: skip
    for key, typ in need.items():
        if key not in m:
            raise bad(f"has no {key!r}")
        if not isinstance(m[key], typ) or isinstance(m[key], bool):
            raise bad(f"has a {type(m[key]).__name__} for {key!r}, not a {typ.__name__}")
    if m["name"] != name:
        raise bad(f"names collection {m['name']!r}, but its folder is {name!r}")
    if m["kind"] not in _KINDS or m["index"].get("type") not in _INDEX_TYPES:
        raise bad(f"has an unknown kind {m['kind']!r} or index type {m['index'].get('type')!r}")
    if not isinstance(m["index"].get("params"), dict):
        raise bad("has no index parameters")
    shards = m["index"]["params"].get("shards", 1)
    if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= MAX_SHARDS:
        raise bad(f"has an invalid shard count {shards!r}")
    if m["count"] < 0 or m["version"] < 0:
        raise bad("has a negative count or version")
    dim = m.get("dim")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or not 0 < dim <= 65536):
        raise bad(f"has an invalid dimension {dim!r}")
    if m["kind"] == "text" and not isinstance(m.get("bm25"), dict):
        raise bad("has no BM25 settings for a text collection")
    for what in ("faiss", "bm25"):
        f = m["files"].get(what)
        if f is not None and (not isinstance(f, str) or not FILE_RE.fullmatch(f)):
            raise bad(f"names an unexpected {what} file {f!r}")
    if not isinstance(m.get("checksums", {}), dict):
        raise bad("has invalid checksums")
    return m


def read_manifest(folder: Path) -> dict[str, Any]:
    """The validated manifest (FileNotFoundError when absent, `Corrupt` when unreadable or malformed)."""
    name = folder.name
    try:
        raw = (folder / MANIFEST).read_bytes()
    except IsADirectoryError:
        raise damaged(name, f"{MANIFEST} is a folder") from None
    try:
        m = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise damaged(name, f"{MANIFEST} is not UTF-8 text") from None
    except ValueError as err:
        why = "is empty" if not raw.strip() else f"is not valid JSON ({str(err)[:80]})"
        raise damaged(name, f"{MANIFEST} {why}") from None
    return validate_manifest(m, name)


@contextmanager
def write_lock(collections_dir: Path, name: str, timeout: float = LOCK_TIMEOUT_S):
    """Exclusive cross-process lock for writes to one collection (lock files live outside the folder)."""
    from filelock import FileLock
    from filelock import Timeout as LockTimeout

    lock_dir = collections_dir / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_dir / f"{name}.lock"), timeout=timeout)
    try:
        lock.acquire()
    except LockTimeout:
        raise Conflict(
            f"collection {name!r} is being written by another process (waited {timeout:.0f} s)",
            hint="retry when the other write has finished",
        ) from None
    try:
        yield
    finally:
        lock.release()
