"""The concepts table of the "objects" theme: 707 named everyday objects with committed RGBA images.

``concepts()`` returns ``[{"name", "aliases", "category", "subcategory", "split", "image", "related"}]``
(``image`` = absolute path of the PNG; ``split`` = "train" or "heldout", fixed). Held-out concepts
never appear in the demo CLIP v2's training images or captions. See ``assets/objects/README.md``
for the source (Noto Emoji, Apache-2.0) and the curation.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

Split = Literal["train", "heldout", "all"]
SPLITS = ("train", "heldout", "all")
_lock = threading.Lock()


def asset_dir() -> Path:
    """Folder of the committed object images and ``concepts.json``."""
    return Path(str(resources.files("vltools.world") / "assets" / "objects"))


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, Any], ...]:
    folder = asset_dir()
    rows = json.loads((folder / "concepts.json").read_text(encoding="utf-8"))
    out = []
    for r in rows:
        r = dict(r)
        r["image"] = str(folder / r["image"])
        out.append(r)
    return tuple(out)


def concepts(split: Split = "all") -> list[dict[str, Any]]:
    """The concepts table (a fresh copy), optionally only one split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    keys = ("name", "aliases", "category", "subcategory", "split", "image", "related")
    return [{k: copy.copy(r[k]) for k in keys} for r in _table() if split == "all" or r["split"] == split]


def concept_names(split: Split = "all") -> list[str]:
    return [r["name"] for r in concepts(split)]


@lru_cache(maxsize=1)
def _by_name() -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in _table()}


def concept(name: str) -> dict[str, Any]:
    """One row of the table by canonical name (KeyError if unknown)."""
    r = _by_name()[name]
    return {k: copy.copy(v) for k, v in r.items()}


@lru_cache(maxsize=1024)
def _rgba(name: str) -> np.ndarray:
    with Image.open(_by_name()[name]["image"]) as im:
        arr = np.asarray(im.convert("RGBA"), dtype=np.uint8).copy()
    arr.setflags(write=False)
    return arr


def rgba(name: str) -> Image.Image:
    """The concept's RGBA image (64 x 64), a fresh PIL image."""
    with _lock:
        arr = _rgba(name)
    return Image.fromarray(arr, "RGBA")
