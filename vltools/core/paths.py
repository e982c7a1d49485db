"""Input paths users name: resolved, kept under the allowed roots, never fetched from a URL.

One check for every layer that reads a user-named file (corpora, qrels, images, videos).
"""

from __future__ import annotations

import re
from pathlib import Path

from vltools.core.errors import InvalidInput, NotFound, TooLarge
from vltools.core.settings import Settings

URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^data:", re.ASCII)


def _roots_text(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def resolve_under_roots(path: str, settings: Settings, *, what: str = "") -> Path:
    """Resolve ``path`` (which need not exist, e.g. an output folder) and check it lies under the roots.

    Raises:
        InvalidInput: a URL, a NUL byte, or a path outside the allowed roots.
    """
    label = f"{what} {path}" if what else path
    if URL_RE.match(path.strip()):
        raise InvalidInput(
            f"{what + ' ' if what else ''}{path!r} is a URL; URLs are not fetched",
            hint="download the file yourself and pass its local path",
        )
    if "\x00" in path:
        raise InvalidInput(f"path {path!r} contains a NUL byte")
    resolved = Path(path).expanduser().resolve()
    roots = settings.roots()
    # Check the roots before existence, so nothing is revealed about files outside them.
    if not any(resolved.is_relative_to(r) for r in roots):
        raise InvalidInput(
            f"{label} is outside the allowed roots ({_roots_text(roots)})",
            hint="move the file under an allowed root or set VLTOOLS_ALLOWED_ROOTS",
        )
    return resolved


def check_path(
    path: str, settings: Settings, *, kinds: tuple[str, ...] = ("file",), what: str = ""
) -> Path:
    """Resolve ``path`` and check it may be read.

    Args:
        path: a local path (``~`` expanded). URLs are refused, never fetched.
        settings: gives the allowed roots and ``max_file_mb``.
        kinds: what the path may be: ``"file"`` and/or ``"dir"``.
        what: a label for messages, e.g. ``"qrels file"``.

    Returns:
        The resolved path (symlinks followed, so a link pointing outside the roots is refused).

    Raises:
        InvalidInput: a URL, a path outside the allowed roots, or the wrong kind (file/dir).
        NotFound: the path does not exist.
        TooLarge: a file above ``settings.max_file_mb``.
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(f"empty {what or 'path'}", hint="give a path to a local file")
    label = f"{what} {path}" if what else path
    resolved = resolve_under_roots(path, settings, what=what)
    if not resolved.exists():
        raise NotFound(f"{label} does not exist", hint="check the path (relative paths start at the current dir)")
    if resolved.is_dir():
        if "dir" not in kinds:
            raise InvalidInput(f"{label} is a folder, expected a file")
        return resolved
    if "file" not in kinds:
        raise InvalidInput(f"{label} is a file, expected a folder")
    if not resolved.is_file():
        raise InvalidInput(f"{label} is not a regular file")
    size_mb = resolved.stat().st_size / 2**20
    if size_mb > settings.max_file_mb:
        raise TooLarge(
            f"{label} is {size_mb:.1f} MiB, above the limit of {settings.max_file_mb:g} MiB",
            hint="raise VLTOOLS_MAX_FILE_MB or pass a smaller file",
        )
    return resolved


