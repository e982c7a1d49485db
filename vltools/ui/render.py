"""Typed results rendered as HTML: hits with paths as thumbnails, lists of records as tables, masks
overlaid on their image, everything else as a compact key/value view.

Values are escaped here; the templates insert the returned markup as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v"}
MASK_KEYS = ("mask", "mask_path", "masks", "mask_paths")
MAX_ROWS = 200


def is_media(value: Any) -> str | None:
    """'image' / 'video' for a string that looks like a media path, else None."""
    if not isinstance(value, str) or "\n" in value or len(value) > 4096:
        return None
    suffix = Path(value).suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def media_url(path: str, *, at: float | None = None) -> str:
    return f"/media?path={quote(path)}" + (f"#t={at:.2f}" if at is not None else "")


def thumb_url(path: str, *, at: float | None = None) -> str:
    return f"/thumb?path={quote(path)}" + (f"&t={at:.3f}" if at is not None else "")


def hit_card(hit: dict[str, Any]) -> Markup:
    """One search hit with a thumbnail: rank, score, and for videos the time of the best frame."""
    path = str(hit.get("path", ""))
    at = hit.get("time", hit.get("best_time"))
    kind = is_media(path)
    caption = f"#{hit.get('rank', '?')} {float(hit.get('score', 0.0)):.3f}"
    if at is not None:
        caption += f" @{float(at):.1f}s"
    link = media_url(path, at=float(at) if at is not None else None)
    masks = [m for k in MASK_KEYS for m in _as_list(hit.get(k)) if is_media(m) == "image"]
    overlay = "".join(f'<img class="mask" src="{escape(thumb_url(m))}" alt="mask">' for m in masks)
    img = (f'<img class="thumb" src="{escape(thumb_url(path, at=float(at) if at is not None else None))}" '
           f'alt="{escape(Path(path).name)}">')
    return Markup(
        f'<figure class="hit" data-kind="{kind or ""}" data-rank="{escape(str(hit.get("rank", "")))}">'
        f'<a href="{escape(link)}"><div class="stack">{img}{overlay}</div></a>'
        f"<figcaption><span class=\"score\">{escape(caption)}</span><br>"
        f'<span class="name" title="{escape(path)}">{escape(Path(path).name or hit.get("id", ""))}</span>'
        "</figcaption></figure>"
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_hit_list(value: Any) -> bool:
    return (isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
            and all(is_media(v.get("path")) for v in value) and all("score" in v for v in value))


def render_value(value: Any, depth: int = 0) -> Markup:
    """HTML for any JSON value of a tool result."""
    if _is_hit_list(value):
        return Markup('<div class="hits">' + "".join(hit_card(v) for v in value) + "</div>")
    if isinstance(value, dict):
        if depth > 4:
            return Markup(f"<code>{escape(json.dumps(value)[:2000])}</code>")
        masks = [m for k in MASK_KEYS for m in _as_list(value.get(k)) if is_media(m) == "image"]
        base = next((value[k] for k in ("image", "path") if is_media(value.get(k)) == "image"), None)
        pic = ""
        if masks and base:
            layers = "".join(f'<img class="mask" src="{escape(thumb_url(m))}" alt="mask">' for m in masks)
            pic = (f'<div class="stack overlay"><img class="thumb" src="{escape(thumb_url(base))}" alt="image">'
                   f"{layers}</div>")
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{render_value(v, depth + 1)}</td></tr>" for k, v in value.items())
        return Markup(f'{pic}<table class="kv">{rows}</table>')
    if isinstance(value, list):
        if not value:
            return Markup('<span class="empty">[]</span>')
        if all(isinstance(v, dict) for v in value):
            keys: list[str] = []
            for v in value[:MAX_ROWS]:
                keys += [k for k in v if k not in keys]
            head = "".join(f"<th>{escape(k)}</th>" for k in keys)
            body = "".join(
                "<tr>" + "".join(f"<td>{render_value(v.get(k), depth + 1) if k in v else ''}</td>" for k in keys)
                + "</tr>" for v in value[:MAX_ROWS]
            )
            more = f"<p>… {len(value) - MAX_ROWS} more</p>" if len(value) > MAX_ROWS else ""
            return Markup(f'<table class="rows"><tr>{head}</tr>{body}</table>{more}')
        if all(not isinstance(v, dict | list) for v in value) and len(value) > 16 and all(
            isinstance(v, int | float) for v in value
        ):
            return Markup(f"<code>[{escape(', '.join(f'{v:.4g}' for v in value[:16]))}, … ({len(value)})]</code>")
        return Markup("<ul>" + "".join(f"<li>{render_value(v, depth + 1)}</li>" for v in value[:MAX_ROWS]) + "</ul>")
    if isinstance(value, float):
        return Markup(f"{value:.4g}")
    kind = is_media(value)
    if kind:
        return Markup(f'<a href="{escape(media_url(value))}"><img class="thumb small" src="{escape(thumb_url(value))}"'
                      f' alt="{escape(Path(value).name)}"></a> <code>{escape(value)}</code>')
    if value is None:
        return Markup('<span class="empty">null</span>')
    return Markup(escape(str(value)))
