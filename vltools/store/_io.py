"""Safe reading of user-named input files (corpora, queries, qrels): encoding and JSON, line by line.

Paths are checked first with `vltools.core.paths.check_path` (allowed roots, size).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vltools.core.errors import InvalidInput


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
