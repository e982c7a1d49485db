"""Input safety for media files: allowed roots, no URLs, size limits, safe image decoding.

Every tool that takes an image (and, through `check_path`, a video) goes through here, so that
a path outside the allowed roots, a URL, a decompression bomb, or a corrupt file becomes a
`ToolError` naming the file instead of a crash, a download, or an exhausted machine.
Imports only pillow (no torch).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from vltools.core.errors import InvalidInput, NotFound, TooLarge, Unsupported
from vltools.core.paths import URL_RE as _URL
from vltools.core.paths import check_path, expand_glob, is_glob, walk_files
from vltools.core.settings import Settings

# Formats pillow decodes that we accept; anything else (PSD, EPS, ...) is refused before decoding.
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "PPM"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MAX_EXPANDED = 100_000


def load_image(path: str, settings: Settings):
    """Decode an image safely and return it as an RGB ``PIL.Image.Image``.

    The pixel count is checked from the header before any pixel is decoded (decompression
    bombs); truncated or corrupt files, non-images and unsupported formats raise a `ToolError`
    naming the file. Transparent images are composited on white; EXIF rotation is applied.

    Raises:
        InvalidInput: not an image, corrupt or truncated (plus everything `check_path` raises).
        Unsupported: an image format outside `IMAGE_FORMATS`.
        TooLarge: more pixels than ``settings.max_image_pixels``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = check_path(path, settings)
    try:
        im = Image.open(p)  # reads the header only
    except UnidentifiedImageError:
        raise InvalidInput(f"{path} is not an image file pillow can read", hint="pass a PNG, JPEG, WebP, ...") from None
    except Image.DecompressionBombError as err:  # pillow's own guard fired while reading the header
        m = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
        raise TooLarge(
            f"{path} is {size}, above the limit of {settings.max_image_pixels:,} (decompression bomb guard)",
            hint="resize it first or raise VLTOOLS_MAX_IMAGE_PIXELS",
        ) from None
    except OSError as err:
        raise InvalidInput(f"cannot read {path}: {err}") from None
    with im:
        fmt = im.format or "?"
        if fmt not in IMAGE_FORMATS:
            raise Unsupported(
                f"{path} is a {fmt} image, which is not accepted",
                hint=f"convert it to one of {', '.join(sorted(IMAGE_FORMATS))}",
            )
        w, h = im.size
        if w <= 0 or h <= 0:
            raise InvalidInput(f"{path} has an empty size {w}x{h}")
        if w * h > settings.max_image_pixels:
            raise TooLarge(
                f"{path} is {w}x{h} = {w * h:,} pixels, above the limit of {settings.max_image_pixels:,}",
                hint="resize it first or raise VLTOOLS_MAX_IMAGE_PIXELS",
            )
        try:
            im.load()
            im = ImageOps.exif_transpose(im) or im
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                out = Image.new("RGB", rgba.size, (255, 255, 255))
                out.paste(rgba, mask=rgba.getchannel("A"))
            else:
                out = im.convert("RGB")
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise InvalidInput(
                f"cannot decode {path}: the file is corrupt or truncated ({err})",
                hint="re-export or re-download the image",
            ) from None
    return out


def expand_paths(
    patterns: Iterable[str],
    settings: Settings,
    *,
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
    recursive: bool = True,
) -> list[Path]:
    """Expand files, folders and glob patterns into checked, de-duplicated file paths (sorted per pattern).

    Folders contribute their files whose suffix is in ``extensions`` (recursively by default);
    an explicitly named file is always kept, so that a wrong file surfaces as a decode error.

    Raises:
        NotFound: a glob or folder with no matching files (a glob outside the roots gets the same answer).
        TooLarge: more than `MAX_EXPANDED` files, or a walk past ``settings.max_glob_files`` entries.
        (and everything `check_path` raises)
    """
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        if p not in seen:
            seen.add(p)
            out.append(p)
            if len(out) > MAX_EXPANDED:
                raise TooLarge(f"more than {MAX_EXPANDED:,} files matched", hint="index them in several calls")

    for pattern in patterns:
        if _URL.match(pattern.strip()):
            check_path(pattern, settings)  # raises the URL error
        if is_glob(pattern):
            # The prefix is checked against the roots before listing; the walk is bounded.
            for m in expand_glob(pattern, settings):
                add(check_path(str(m), settings))
            continue
        p = check_path(pattern, settings, kinds=("file", "dir"))
        if p.is_dir():
            walker = walk_files(p, settings, recursive=recursive)
            files = sorted(f for f in walker if f.suffix.lower() in extensions and f.is_file())
            if not files:
                raise NotFound(
                    f"folder {pattern} holds no files with suffix {', '.join(sorted(extensions))}",
                    hint="check the folder",
                )
            for f in files:
                add(check_path(str(f), settings))
        else:
            add(p)
    return out


def file_sha256(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the content hash used for duplicate detection)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
