"""Paths users name: resolved, kept under the allowed roots, never fetched from a URL.

One check for every layer that reads a user-named file (corpora, qrels, images, videos, model
folders), globs whose fixed prefix is checked before anything is listed and whose walk is bounded,
and writes that never follow a symlink planted in an output folder.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from vltools.core.errors import InvalidInput, NotFound, TooLarge
from vltools.core.settings import Settings

URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^data:", re.ASCII)
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; longer names cannot be opened anyway
_GLOB_CHARS = frozenset("*?[")


def _expand_resolve(path: str, label: str) -> Path:
    """``Path(path).expanduser().resolve()``, with every way it can fail as an `InvalidInput`."""
    if len(path) > MAX_PATH_CHARS:
        raise InvalidInput(
            f"path is {len(path):,} characters long, above {MAX_PATH_CHARS:,}", hint="give a shorter path"
        )
    if "\x00" in path:
        raise InvalidInput("path contains a NUL byte", hint="remove the NUL character")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("path is not valid Unicode (a lone surrogate)", hint="give a UTF-8 path") from None
    try:
        return Path(path).expanduser().resolve()
    except RuntimeError:  # ~user for an unknown user
        user = path[1:].split("/", 1)[0]
        shown = user if re.fullmatch(r"[\w.-]{1,64}", user, re.ASCII) else "?"
        raise InvalidInput(f"{label}: unknown user ~{shown}", hint="give an absolute path") from None
    except OSError as err:  # a name too long, a symlink loop
        reason = os.strerror(err.errno) if err.errno else "cannot be resolved"
        raise InvalidInput(f"{label}: {reason}", hint="give a valid path") from None


def _roots_text(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def _label(path: str, what: str = "") -> str:
    """How messages show a user's path: short paths verbatim, long or odd ones shortened."""
    shown = path if len(path) <= 300 and path.isprintable() else repr(path[:120]) + "..."
    return f"{what} {shown}" if what else shown


def _under(p: Path, roots: list[Path]) -> bool:
    return any(p.is_relative_to(r) for r in roots)


def resolve_under_roots(path: str, settings: Settings, *, what: str = "") -> Path:
    """Resolve ``path`` (which need not exist, e.g. an output folder) and check it lies under the roots.

    Raises:
        InvalidInput: a URL, a NUL byte, or a path outside the allowed roots.
    """
    label = _label(path, what)
    if URL_RE.match(path.strip()):
        raise InvalidInput(
            f"{label} is a URL; URLs are not fetched", hint="download the file yourself and pass its local path"
        )
    resolved = _expand_resolve(path, label)
    roots = settings.roots()
    # Check the roots before existence, so nothing is revealed about files outside them.
    if not _under(resolved, roots):
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
    label = _label(path, what)
    resolved = resolve_under_roots(path, settings, what=what)
    try:
        st = resolved.stat()
    except FileNotFoundError:
        raise NotFound(
            f"{label} does not exist", hint="check the path (relative paths start at the current dir)"
        ) from None
    except OSError as err:  # permission denied, a name too long, ...
        raise InvalidInput(f"{label} cannot be read ({os.strerror(err.errno or errno.EIO)})") from None
    if stat.S_ISDIR(st.st_mode):
        if "dir" not in kinds:
            raise InvalidInput(f"{label} is a folder, expected a file")
        return resolved
    if "file" not in kinds:
        raise InvalidInput(f"{label} is a file, expected a folder")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{label} is not a regular file")
    if not os.access(resolved, os.R_OK):
        raise InvalidInput(f"{label} cannot be read (permission denied)")
    size_mb = st.st_size / 2**20
    if size_mb > settings.max_file_mb:
        raise TooLarge(
            f"{label} is {size_mb:.1f} MiB, above the limit of {settings.max_file_mb:g} MiB",
            hint="raise VLTOOLS_MAX_FILE_MB or pass a smaller file",
        )
    return resolved




# -- globs and folder walks ------------------------------------------------------------------------
def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in _GLOB_CHARS)


class _Budget:
    """Counts directory entries visited; a walk past ``limit`` is `TooLarge`."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what, self.seen = limit, what, 0

    def scan(self, folder: Path) -> Iterator[os.DirEntry]:
        try:
            it = os.scandir(folder)
        except OSError:  # unreadable folders (e.g. /proc/1/fd) hold nothing we may list
            return
        with it:
            for entry in it:
                self.seen += 1
                if self.seen > self.limit:
                    raise TooLarge(
                        f"{self.what} visits more than {self.limit:,} files and folders",
                        hint="narrow the pattern or folder, or raise VLTOOLS_MAX_GLOB_FILES",
                    )
                yield entry


def _is_dir(entry: os.DirEntry, *, follow: bool = True) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def _match(base: Path, parts: list[str], budget: _Budget) -> Iterator[Path]:
    """Paths under ``base`` matching the glob components ``parts`` (``**``: any depth, links not followed)."""
    if not parts:
        yield base
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        yield from _match(base, rest, budget)
        for entry in budget.scan(base):
            if not entry.name.startswith(".") and _is_dir(entry, follow=False):
                yield from _match(Path(entry.path), parts, budget)
        return
    if not is_glob(head):
        child = base / head
        if rest:
            if child.is_dir():
                yield from _match(child, rest, budget)
        elif os.path.lexists(child):
            yield child
        return
    for entry in budget.scan(base):
        if entry.name.startswith(".") and not head.startswith("."):
            continue  # like glob: wildcards do not match hidden names
        if fnmatch.fnmatchcase(entry.name, head):
            if not rest:
                yield Path(entry.path)
            elif _is_dir(entry):
                yield from _match(Path(entry.path), rest, budget)


def expand_glob(pattern: str, settings: Settings) -> list[Path]:
    """Files matching ``pattern`` that lie under the allowed roots (resolved, sorted, de-duplicated).

    The pattern's fixed prefix (the folders before the first wildcard) is checked against the roots
    before anything is listed, matches that resolve outside the roots are dropped without being
    named, and the walk stops after ``settings.max_glob_files`` entries. "Outside the roots" and "no
    match" give the same message, so the answer says nothing about files outside the roots.

    Raises:
        InvalidInput: a URL, ``..`` after a wildcard, or a malformed path.
        NotFound: no file under the allowed roots matches.
        TooLarge: the walk visits more than ``settings.max_glob_files`` entries.
    """
    label = _label(pattern)
    if URL_RE.match(pattern.strip()):
        raise InvalidInput(f"{label} is a URL; URLs are not fetched", hint="pass local paths or globs")
    expanded = str(_expand_user(pattern, label))
    parts = Path(expanded).parts
    first = next(i for i, part in enumerate(parts) if is_glob(part))
    if ".." in parts[first:]:
        raise InvalidInput(f"glob {label} has '..' after a wildcard", hint="put '..' before the first wildcard")
    prefix = _expand_resolve(str(Path(*parts[:first])) if first else ".", label)
    roots = settings.roots()
    none = NotFound(
        f"no files under the allowed roots match {label}",
        hint=f"check the pattern (use ** for sub-folders); files must lie under {_roots_text(roots)}",
    )
    if not _under(prefix, roots):  # nothing outside the roots is listed
        raise none
    budget = _Budget(settings.max_glob_files, f"glob {label}")
    found: dict[Path, None] = {}
    for m in _match(prefix, list(parts[first:]), budget):
        try:
            r = m.resolve()
            ok = _under(r, roots) and r.is_file()
        except (OSError, RuntimeError):
            ok = False
        if ok:
            found.setdefault(r, None)
    if not found:
        raise none
    return sorted(found)


def _expand_user(pattern: str, label: str) -> Path:
    if len(pattern) > MAX_PATH_CHARS or "\x00" in pattern:
        _expand_resolve(pattern, label)  # raises the matching error
    try:
        pattern.encode("utf-8")
        return Path(pattern).expanduser()
    except UnicodeEncodeError:
        raise InvalidInput("path is not valid Unicode (a lone surrogate)", hint="give a UTF-8 path") from None
    except RuntimeError:
        raise InvalidInput(f"{label}: unknown user", hint="give an absolute path") from None


def walk_files(folder: Path, settings: Settings, *, recursive: bool = True) -> Iterator[Path]:
    """Regular files in ``folder`` (sub-folders too when ``recursive``; symlinked folders are not
    entered), at most ``settings.max_glob_files`` entries visited."""
    budget = _Budget(settings.max_glob_files, f"folder {folder}")
    stack = [folder]
    while stack:
        here = stack.pop()
        for entry in budget.scan(here):
            if _is_dir(entry, follow=False):
                if recursive:
                    stack.append(Path(entry.path))
            else:
                yield Path(entry.path)


# -- model specs that name paths -------------------------------------------------------------------
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?", re.ASCII)


def model_roots(settings: Settings) -> list[Path]:
    """Where model folders may be read from: the allowed roots, ``settings.model_dirs``, the model
    cache, the Hugging Face cache and ``VLTOOLS_HOME/models`` (checkpoints the ``adapt.*`` tools write)."""
    from vltools.models.llm import model_cache_dir  # light module

    extra = [*settings.model_dirs, model_cache_dir(settings), settings.home / "models"]
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME")
    extra.append(Path(hub) if hub else Path.home() / ".cache" / "huggingface")
    return [*settings.roots(), *(p.expanduser().resolve() for p in extra)]


def check_model_target(target: str, settings: Settings, *, what: str = "model") -> str:
    """Check the part of a model spec that names a folder, file or hub repo.

    A path (``/``, ``.``, ``~``, or an existing relative path) must lie under `model_roots`; it is
    checked before existence, so the answer reveals nothing about paths outside. Anything else must
    be a hub-style name (``NAME`` or ``ORG/NAME``). URLs, NUL bytes and ``..`` are refused.

    Raises:
        InvalidInput: a URL, a malformed name, or a path outside the roots.
    """
    if not target or len(target) > MAX_PATH_CHARS:
        raise InvalidInput(f"{what}: empty or overlong model name", hint="give a model name or a local folder")
    if URL_RE.match(target.strip()) or target.strip().lower().startswith("file:"):
        raise InvalidInput(f"{what}: URLs are not model specs", hint="give a local folder or a cached model name")
    if "\x00" in target:
        raise InvalidInput(f"{what}: the model spec contains a NUL byte")
    looks_like_path = target.startswith(("/", ".", "~")) or "\\" in target
    if not looks_like_path and _HUB_NAME.fullmatch(target) and ".." not in target:
        try:
            local = os.path.lexists(target)
        except (OSError, ValueError):
            local = False
        if not local:
            return target  # a hub name; the loaders read only the local cache
    resolved = _expand_resolve(target, what)
    roots = model_roots(settings)
    if not _under(resolved, roots):
        raise InvalidInput(
            f"{what}: {_label(target)} is outside the folders models may be read from",
            hint="put the model under an allowed root or name its folder in VLTOOLS_MODEL_DIRS",
        )
    return str(resolved)


def check_model_spec(kind: str, spec: str | None, settings: Settings) -> None:
    """Check a backend spec (``llm``/``clip``/``text``) before a loader sees it: the parts that name
    paths go through `check_model_target`. Other kinds and unknown shapes are left to the loader."""
    if spec is None or not isinstance(spec, str):
        return
    s = spec.strip()
    if "\x00" in s:
        raise InvalidInput(f"{kind} spec contains a NUL byte")
    if kind == "llm":
        if s.startswith("hf:") and len(s) > 3:
            check_model_target(s[3:], settings, what="hf: model")
    elif kind == "clip":
        if s.startswith("open_clip:"):
            rest = s[len("open_clip:") :]
            if rest.startswith("local-dir:"):
                check_model_target(rest[len("local-dir:") :] or ".", settings, what="CLIP folder")
            elif rest.startswith("hf-hub:"):
                repo = rest[len("hf-hub:") :]
                if not _HUB_NAME.fullmatch(repo) or ".." in repo:
                    raise InvalidInput("open_clip hf-hub: needs ORG/REPO", hint="e.g. open_clip:hf-hub:org/model")
            elif "@" in rest:
                ckpt = rest.partition("@")[2]
                if not ckpt.startswith(("/", ".", "~")):
                    ckpt = "./" + ckpt
                check_model_target(ckpt, settings, what="CLIP checkpoint")
    elif kind == "text" and s:
        check_model_target(s, settings, what="text model")


# -- writes that never follow a planted symlink -----------------------------------------------------
def check_output_dir(folder: Path, settings: Settings) -> Path:
    """Create ``folder`` (and parents) and check, at the moment of writing, that it is a real folder
    (not a symlink) whose resolved path still lies under the allowed roots.

    Raises:
        InvalidInput: the folder is a symlink, not a folder, or resolves outside the roots.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        st = os.lstat(folder)
    except FileExistsError:
        raise InvalidInput(f"{folder} exists and is not a folder", hint="choose another output folder") from None
    except OSError as err:
        raise InvalidInput(f"cannot create {folder}: {os.strerror(err.errno or errno.EIO)}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{folder} is a symlink or not a folder; outputs are not written through links",
                           hint="remove the link or choose another output folder")
    if not _under(folder.resolve(), settings.roots()):
        raise InvalidInput(f"{folder} resolves outside the allowed roots", hint="choose another output folder")
    return folder


@contextmanager
def atomic_output(path: Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a fresh temp path next to ``path`` (created with O_EXCL under a random name); on success
    it replaces ``path``. ``os.replace`` swaps a symlink planted at ``path`` for the new file and never
    writes through it; a planted ``path.tmp`` is never touched."""
    # The temp name keeps the suffix, so writers that pick a format from it (PIL, PyAV) still can.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, mode)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_nofollow(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically without following a symlink at ``path``."""
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
