"""Safe reading of user-named input files (corpora, queries, qrels): allowed roots, size, encoding."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vltools.core.errors import InvalidInput, NotFound, TooLarge

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def resolve_input_path(path: str, settings: Any, *, what: str = "file") -> Path:
    """Resolve ``path`` and check it is a readable file under ``settings.roots()`` within the size limit."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(f"empty {what} path")
    if _URL.match(path):
        raise InvalidInput(f"{what} {path!r} is a URL; URLs are not fetched", hint="download it and pass a local path")
    p = Path(path).expanduser()
    p = (p if p.is_absolute() else Path.cwd() / p).resolve()
    roots = settings.roots()
    if not any(p.is_relative_to(r) for r in roots):
        raise InvalidInput(
            f"{what} {path} is outside the folders vltools may read ({', '.join(str(r) for r in roots)})",
            hint="move the file under one of them, or add its folder to VLTOOLS_ALLOWED_ROOTS (a JSON list)",
        )
    if not p.exists():
        raise NotFound(f"{what} {path} does not exist")
    if not p.is_file():
        raise InvalidInput(f"{what} {path} is not a regular file")
    size_mb = p.stat().st_size / 2**20
    if size_mb > settings.max_file_mb:
        raise TooLarge(
            f"{what} {path} is {size_mb:.1f} MiB; the limit is {settings.max_file_mb:g} MiB",
            hint="split it, or raise VLTOOLS_MAX_FILE_MB",
        )
    return p


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line) of a UTF-8 file; a bad byte names its line."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InvalidInput(
                    f"{path.name} line {n} is not valid UTF-8 (byte {err.start} of the line)",
                    hint="re-encode the file as UTF-8",
                ) from None
            if n == 1:
                line = line.removeprefix("\ufeff")
            yield n, line


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; corrupt JSON or a non-object names the line."""
    for n, line in read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInput(
                f"{path.name} line {n} is not valid JSON: {err.msg} (column {err.colno})",
                hint="each line of a .jsonl file must be one JSON object",
            ) from None
        if not isinstance(obj, dict):
            raise InvalidInput(f"{path.name} line {n} is a JSON {type(obj).__name__}, not an object")
        yield n, obj
