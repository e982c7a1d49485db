"""Reading and writing the ``data.*`` tools' JSONL files, and the small text helpers they share.

A record is one JSON object per line: ``{"text": str, "image": PATH?, "source": str?, ...}``; other
keys are kept and passed through. Image paths are relative to the JSONL's folder unless absolute.
Outputs are written atomically, never through a planted symlink, and never over an existing file
unless ``overwrite`` is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vltools.core.errors import Conflict, InvalidInput
from vltools.core.paths import atomic_output, check_output_dir, check_path, resolve_under_roots
from vltools.core.settings import Settings

MAX_RECORDS = 200_000
WORD_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
# Generic English function words and caption boilerplate (not a vocabulary of any dataset).
STOPWORDS = frozenset(
    "a an the and or of in on at to for with from by into onto over under near is are was were be been being "
    "this that these those there here it its some two three four five one several many few all no not "
    "as up down out off than then so such very can we you they he she his her their our your my me us them "
    "photo picture image scene shot view showing shows shown depicting depicts containing contains "
    "top bottom left right centre center middle".split()
)


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text``."""
    return WORD_RE.findall(text.lower())


def normalise(text: str) -> str:
    """Lower-case words joined by single spaces: captions equal up to case, punctuation and spacing match."""
    return " ".join(words(text))


def iter_json_objects(p: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line index, object) for each non-blank line of a JSONL file; InvalidInput naming the line
    for one that is not a JSON object."""
    with p.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError as err:
                raise InvalidInput(f"{what} line {i + 1} is not JSON: {err}", details={"line": i + 1}) from None
            if not isinstance(r, dict):
                raise InvalidInput(f"{what} line {i + 1} is not a JSON object",
                                   hint="one JSON object per line", details={"line": i + 1})
            yield i, r


def read_records(path: str, settings: Settings, *, need_image: bool = False, max_records: int = MAX_RECORDS,
                 what: str = "data") -> list[dict[str, Any]]:
    """The records of a JSONL file; ``image`` made absolute (relative to the file's folder).

    Raises:
        InvalidInput: a line that is not a JSON object, a missing/empty ``text``, a missing ``image``
            when ``need_image``, or more than ``max_records`` records.
    """
    p = check_path(path, settings, what=what)
    rows: list[dict[str, Any]] = []
    for i, r in iter_json_objects(p, what):
        if not isinstance(r.get("text"), str) or not r["text"].strip():
            raise InvalidInput(f"{what} line {i + 1} needs a non-empty \"text\"",
                               hint='one JSON object per line: {"text": "...", "image": "a.png"?, '
                               '"source": "..."?}', details={"line": i + 1})
        img = r.get("image")
        if img is not None:
            if not isinstance(img, str) or not img:
                raise InvalidInput(f"{what} line {i + 1}: \"image\" must be a path", details={"line": i + 1})
            r["image"] = img if Path(img).is_absolute() else str(p.parent / img)
        elif need_image:
            raise InvalidInput(f"{what} line {i + 1} has no \"image\"; this tool scores image-text pairs",
                               hint="add the image path to every record", details={"line": i + 1})
        rows.append(r)
        if len(rows) > max_records:
            raise InvalidInput(f"{what} has more than {max_records} records", hint="split the file")
    if not rows:
        raise InvalidInput(f"{what} {p} has no records", hint="one JSON object per line")
    return rows


def plan_out(out: str, settings: Settings, overwrite: bool, data: str | None = None) -> Path:
    """Check the output path before any work: under the roots, not the input, not taken unless ``overwrite``."""
    target = resolve_under_roots(out, settings, what="out")
    if data is not None and target == resolve_under_roots(data, settings, what="data"):
        raise InvalidInput("out is the input file", hint="write to a new file")
    if target.exists() and not overwrite:
        raise Conflict(f"{target} exists", hint="pass overwrite=true or another out path",
                       details={"path": str(target)})
    if target.exists() and not target.is_file():
        raise InvalidInput(f"{target} exists and is not a file", hint="choose a file path")
    return target


def write_records(target: Path, rows: list[dict[str, Any]], settings: Settings) -> str:
    """Write ``rows`` as JSONL to ``target`` atomically (folder checked at the moment of writing)."""
    check_output_dir(target.parent, settings)
    with atomic_output(target) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return str(target)


def load_list(items: list[str] | None, path: str | None, settings: Settings, what: str) -> list[str]:
    """Entries given inline and/or in a text file (one per line, ``#`` comments), de-duplicated in order."""
    out: list[str] = list(items or [])
    if path:
        p = check_path(path, settings, what=f"{what} file")
        out += [ln.split("#", 1)[0].strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    seen: set[str] = set()
    uniq = []
    for e in out:
        e = e.strip()
        if e and e.lower() not in seen:
            seen.add(e.lower())
            uniq.append(e)
    if not uniq:
        raise InvalidInput(f"no {what} given", hint=f"pass {what} (a list) or {what}_file (one per line)")
    return uniq


def mentions(text_words: list[str], phrase: str) -> bool:
    """Whether ``phrase`` occurs in the word list (whole words; a trailing 's'/'es' plural also counts)."""
    pw = words(phrase)
    if not pw:
        return False
    n = len(pw)
    forms = {tuple(pw), tuple(pw[:-1] + [pw[-1] + "s"]), tuple(pw[:-1] + [pw[-1] + "es"])}
    return any(tuple(text_words[i : i + n]) in forms for i in range(len(text_words) - n + 1))
