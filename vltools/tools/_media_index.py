"""What image.index and video.index share: the output model, opening a media collection,
planning which files to add (content-hash duplicates, unchanged files, path clashes), and the
single atomic add at the end, so that a failed call leaves no collection and no partial add.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, NotFound

MediaKind = Literal["image", "video"]
Executor = Literal["local", "ray"]
EXECUTOR_HELP = (
    "local: embed in this process, all or nothing (a bad file fails the call). ray: a resumable job on Ray "
    "(install extra 'scale'): files cut into shards embedded by a pool of actors, added shard by shard; a bad "
    "file is reported in notices, and a stopped job resumes where it was when called again with the same paths."
)
WORKERS_HELP = "executor ray: embedding actors (default: the CPUs Ray sees)."


class Duplicate(BaseModel):
    path: str = Field(description="The file that was not added.")
    duplicate_of: str = Field(description="Id (path) of the item with the same content (stored or earlier here).")


class MediaIndexOutput(BaseModel):
    collection: str = Field(description="The collection written to.")
    added: int = Field(description="Files newly added.")
    updated: int = Field(description="Files replaced (upsert).")
    unchanged: int = Field(description="Files already indexed with the same path and content (skipped).")
    duplicates: list[Duplicate] = Field(description="Files whose content is already indexed under another path.")
    ids: list[str] = Field(description="Ids (resolved paths) of the files added or updated.")
    count: int = Field(description="Items in the collection after the call.")
    notices: list[str] = Field(default_factory=list, description="Per-file notices (e.g. bounded frame sampling).")


def open_media_collection(
    name: str, kind: MediaKind, ctx: Context, *, clip: str | None, create: bool
) -> tuple[Any | None, str]:
    """(the collection, or None when it is still to be created; its CLIP spec). Creates nothing."""
    from vltools.store import open_collection

    try:
        coll = open_collection(name, ctx.settings)
    except NotFound:
        if not create:
            raise NotFound(
                f"no collection named {name!r}",
                hint=f'create it with collection.create {{"name": "{name}", "kind": "{kind}", "clip": "demo"}} '
                'or pass "create": true',
            ) from None
        return None, clip or ctx.settings.clip
    coll.require_kind(kind, f"{kind}.index")
    if clip and clip != coll.model:
        raise InvalidInput(
            f"collection {name!r} was built with {coll.model}, not {clip}",
            hint="omit clip, or use another collection",
        )
    return coll, coll.model


def plan_files(
    files: list[Path],
    coll: Any | None,
    ctx: Context,
    *,
    check: Callable[[Path], dict[str, Any]],
    id_of: Callable[[Path, str], str],
    upsert: bool,
    note: str,
) -> tuple[list[dict[str, Any]], list[Duplicate], int]:
    """Check (``check`` raises on a bad file) and hash every file before anything is embedded.

    Returns the records to add, the duplicates skipped and how many files were unchanged.
    """
    from vltools.models.media import file_sha256

    todo: list[dict[str, Any]] = []
    duplicates: list[Duplicate] = []
    unchanged = 0
    seen: dict[str, str] = {}
    for i, p in enumerate(files):
        ctx.progress(i, len(files), note)
        info = check(p)
        digest = file_sha256(p)
        rid = id_of(p, digest)
        if digest in seen:
            duplicates.append(Duplicate(path=str(p), duplicate_of=seen[digest]))
            continue
        stored = coll.find_by("hash", digest) if coll is not None else []
        if rid in stored:
            unchanged += 1
            continue
        if stored:
            duplicates.append(Duplicate(path=str(p), duplicate_of=stored[0]))
            continue
        seen[digest] = rid
        todo.append({"id": rid, "path": str(p), "hash": digest, "title": p.name, "metadata": info})
    if todo and coll is not None and not upsert:
        clash = coll.has([r["id"] for r in todo])
        if clash:
            raise InvalidInput(
                f"{len(clash)} path(s) are indexed with different content, e.g. {sorted(clash)[0]}",
                hint="pass upsert=true to replace them",
            )
    return todo, duplicates, unchanged


def add_all(
    coll: Any | None, name: str, kind: MediaKind, spec: str, todo: list[dict[str, Any]], vectors: Any, *,
    upsert: bool, ctx: Context,
) -> tuple[Any, dict[str, int]]:
    """Create the collection if needed (only now, after every file was embedded) and add in one atomic step."""
    if coll is None:
        from vltools.store import create_collection

        coll = create_collection(name, kind, model=spec, settings=ctx.settings)
    if not todo:
        return coll, {"added": 0, "updated": 0, "count": coll.count}
    return coll, coll.add(todo, vectors, upsert=upsert, progress=ctx.progress)


def run_job(kind: MediaKind, inp: Any, ctx: Context, *, frames: int = 8) -> MediaIndexOutput:
    """image.index / video.index with ``executor: "ray"``: a `vltools.scale` job (the same as ``vltools index``)."""
    from vltools.scale import IndexSpec, run_index

    coll, spec = open_media_collection(inp.collection, kind, ctx, clip=inp.clip, create=inp.create)
    job = IndexSpec(
        collection=inp.collection, kind=kind, model=spec, inputs=list(inp.paths), create=coll is None,
        upsert=inp.upsert, batch_size=getattr(inp, "batch_size", 32), frames=frames, executor="ray",
        workers=inp.workers,
    )  # fmt: skip
    res = run_index(job, ctx.settings, progress=ctx.progress)
    notices = [f"{f.id}: not indexed ({f.error})" for f in res.failed]
    notices.append(
        f"ray job {res.job}: {res.shards} shard(s), {res.embedded} embedded now, {res.reused} reused, "
        f"{res.workers} worker(s), {res.embed_seconds:.1f} s embedding"
    )
    return MediaIndexOutput(
        collection=res.collection, added=res.added, updated=res.updated, unchanged=res.unchanged,
        duplicates=[Duplicate(**d) for d in res.duplicates], ids=res.ids, count=res.count, notices=notices,
    )  # fmt: skip
