"""Contact sheets: one picture of the hits of a search, each cell a thumbnail with its rank and score.

People judge image and video search results faster by looking than by reading paths and cosines.
The output path must lie under the allowed roots and end in a raster image suffix; the file is
written atomically (temp file + rename) and an existing symlink is never followed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from vltools.core.errors import InvalidInput
from vltools.core.paths import resolve_under_roots
from vltools.core.settings import Settings

SHEET_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
CELL = 192  # thumbnail side, pixels
CAPTION = 22  # caption band under each thumbnail
PAD = 6
MAX_COLUMNS = 5
CONTACT_SHEET_HELP = (
    "Optional output image path (.png/.jpg/.webp, under the allowed roots): a grid of the hits, each with its rank "
    "and score, is written there."
)


def check_sheet_path(path: str, settings: Settings) -> Path:
    """Resolve the requested sheet path and check it can be written (before any work is done)."""
    p = resolve_under_roots(path, settings, what="contact sheet")
    if p.suffix.lower() not in SHEET_SUFFIXES:
        raise InvalidInput(
            f"contact sheet {path} must end in one of {', '.join(SHEET_SUFFIXES)}", hint="e.g. hits.png"
        )
    if Path(path).expanduser().is_symlink() or p.is_dir():
        raise InvalidInput(f"contact sheet {path} is a symlink or a folder", hint="name a new or regular file")
    if not p.parent.is_dir():
        raise InvalidInput(f"the folder of contact sheet {path} does not exist", hint="create it first")
    return p


def _caption_font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # older Pillow: a fixed-size bitmap font
        return ImageFont.load_default()


def render_sheet(cells: list[tuple[Any | None, str]], *, title: str = "") -> Any:
    """A grid image: each cell is (PIL image or None for unreadable, caption)."""
    from PIL import Image, ImageDraw, ImageOps

    cols = max(1, min(MAX_COLUMNS, len(cells)))
    rows = max(1, -(-len(cells) // cols))
    head = CAPTION + PAD if title else 0
    width = cols * (CELL + PAD) + PAD
    height = head + rows * (CELL + CAPTION + PAD) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = _caption_font(14)
    if title:
        draw.text((PAD, PAD), title[:120], fill="black", font=font)
    if not cells:
        draw.text((PAD, head + PAD), "no hits", fill="gray", font=font)
    for i, (img, caption) in enumerate(cells):
        x = PAD + (i % cols) * (CELL + PAD)
        y = head + PAD + (i // cols) * (CELL + CAPTION + PAD)
        if img is None:
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], outline="gray")
            draw.text((x + PAD, y + CELL // 2), "unreadable", fill="gray", font=font)
        else:
            thumb = ImageOps.contain(img.convert("RGB"), (CELL, CELL))
            sheet.paste(thumb, (x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2))
        draw.text((x + 2, y + CELL + 3), caption[:40], fill="black", font=font)
    return sheet


def save_sheet(sheet: Any, target: Path) -> None:
    """Write ``sheet`` to ``target`` atomically (temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=".sheet-", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            sheet.save(fh, format=SHEET_SUFFIXES[target.suffix.lower()])
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
