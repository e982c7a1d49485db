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

from vltools.core.errors import Conflict, InvalidInput

FORMAT = 1
MANIFEST = "manifest.json"
DB = "docs.sqlite"
LOCK_DIR = ".locks"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# How long a writer waits for another process's write to finish before answering Conflict.
LOCK_TIMEOUT_S = 120.0


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):  # match() lets "name\n" through
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


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())


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
