"""Validation of records before a write: ids, field types, sizes, JSON metadata, duplicates."""

from __future__ import annotations

import json
from typing import Any

from vltools.core.errors import Conflict, InvalidInput, TooLarge


def normalise(records: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    if not isinstance(records, list):
        raise InvalidInput("records must be a list of objects")
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise InvalidInput(f"record {i} is {type(r).__name__}, not an object")
        rid = r.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str) or not rid.strip() or len(rid) > 512:
            raise InvalidInput(f"record {i}: 'id' must be a non-empty string of at most 512 characters, got {rid!r}")
        rec: dict[str, Any] = {"id": rid}
        for key in ("title", "text", "path", "hash"):
            val = r.get(key)
            if val is not None and not isinstance(val, str):
                raise InvalidInput(f"record {i} ({rid}): {key!r} must be a string, got {type(val).__name__}")
            rec[key] = val
        size = len(rec["text"] or "") + len(rec["title"] or "")
        if size > max_chars:
            raise TooLarge(
                f"record {i} ({rid}) has {size:,} characters; the limit is {max_chars:,}",
                hint="split long documents into passages, or raise VLTOOLS_MAX_DOCUMENT_CHARS",
            )
        meta = r.get("metadata") or {}
        if not isinstance(meta, dict):
            raise InvalidInput(f"record {i} ({rid}): 'metadata' must be an object")
        extra = {k: v for k, v in r.items() if k not in ("id", "title", "text", "path", "hash", "metadata")}
        meta = {**extra, **meta}
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"record {i} ({rid}): metadata is not JSON-serialisable: {err}") from None
        rec["metadata"] = meta
        out.append(rec)
    return out


def dedupe(recs, vecs, upsert: bool):
    seen: dict[str, int] = {}
    for i, r in enumerate(recs):
        if r["id"] in seen and not upsert:
            raise Conflict(
                f"id {r['id']!r} appears twice in this batch (records {seen[r['id']]} and {i})",
                hint="give every document a unique id, or pass upsert=true to keep the last one",
            )
        seen[r["id"]] = i
    if len(seen) == len(recs):
        return recs, vecs
    keep = sorted(seen.values())  # upsert: the last occurrence wins
    return [recs[i] for i in keep], (None if vecs is None else vecs[keep])
