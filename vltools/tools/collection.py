"""Collections of documents (text) or media (image, video): create, add, info, list, delete, repair.

Text documents are encoded with the collection's text model (default ``minilm``) and indexed
in FAISS and BM25 (see ``vltools.store``). Needs: the text encoder for adds to text collections.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from vltools.core.context import Context
from vltools.core.errors import Conflict, InvalidInput, NotFound, TooLarge, ToolError
from vltools.core.paths import check_model_spec, check_path
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.store import create_collection, delete_collection, index_text, list_collections, repair_collection
from vltools.store._io import read_jsonl

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_INLINE_DOCUMENTS = 100_000


class ShardInfo(BaseModel):
    shard: int = Field(description="Shard number (vectors with rid % shards == shard).")
    file: str | None = Field(description="Index file of the shard, relative to the collection folder.")
    vectors: int = Field(description="Vectors in the shard.")
    bytes: int | None = Field(description="Size of the shard's index file.")


class CollectionInfo(BaseModel):
    """What a collection is and holds."""

    name: str = Field(description="Collection name.")
    kind: str = Field(description="text, image or video.")
    count: int = Field(description="Number of stored documents/media items.")
    model: str = Field(description="Encoder spec of its vectors ('none' = BM25 only).")
    dim: int | None = Field(description="Vector dimension (null until the first add).")
    index: str = Field(description="FAISS index type: flat, hnsw, ivf or ivfpq.")
    shards: int = Field(1, description="Number of vector-index shards (searched in parallel, merged exactly).")
    shard_sizes: list[ShardInfo] | None = Field(
        None, description="Per shard: file and vector count (collection.info fills it; null in listings)."
    )
    metric: str = Field(description="Vector similarity: 'ip' (inner product of normalised vectors = cosine).")
    retrievers: list[str] = Field(description="Retrievers this collection supports.")
    bm25: dict[str, Any] | None = Field(description="BM25 settings (k1, b, stemmer, stop words); null for media.")
    path: str = Field(description="Folder of the collection on disk.")
    version: int = Field(description="Write version (grows by one per add).")
    created: str = Field(description="Creation time (UTC, ISO 8601).")
    updated: str = Field(description="Last write time (UTC, ISO 8601).")


def info_of(coll: Any, *, shards: bool = False) -> CollectionInfo:
    """The collection's description; ``shards`` adds per-shard sizes (loads the vector index)."""
    m = coll.manifest
    retrievers = (["bm25"] if coll.has_bm25 else []) + (["dense"] if coll.has_vectors else [])
    if len(retrievers) == 2:
        retrievers.append("hybrid")
    return CollectionInfo(
        name=m["name"],
        kind=m["kind"],
        count=m["count"],
        model=m["model"],
        dim=m["dim"],
        index=m["index"]["type"],
        shards=coll.shards,
        shard_sizes=[ShardInfo(**s) for s in coll.shard_info()] if shards else None,
        metric=m["metric"],
        retrievers=retrievers,
        bm25=m.get("bm25"),
        path=str(coll.path),
        version=m["version"],
        created=m["created"],
        updated=m["updated"],
    )


# -- collection.create --------------------------------------------------------------------
class CollectionCreateInput(ToolInput):
    name: str = Field(pattern=NAME_PATTERN, description="New collection name (letters, digits, _ - .).")
    kind: Literal["text", "image", "video"] = Field("text", description="What the collection holds.")
    text_model: str | None = Field(
        None,
        description="Text collections: the text encoder (default settings.text_model, 'minilm'; 'none' = BM25 only).",
    )
    clip: str | None = Field(None, description="Image/video collections: the CLIP spec (default settings.clip).")
    index: Literal["flat", "hnsw", "ivf", "ivfpq"] = Field(
        "flat", description="FAISS index: exact flat, approximate HNSW/IVF, compressed approximate IVF-PQ."
    )
    shards: int = Field(
        1, ge=1, le=256,
        description="Split the vector index into this many shards, searched in parallel and merged exactly.",
    )
    exist_ok: bool = Field(False, description="Return the existing collection if it has the same kind and model.")
    bm25_k1: float = Field(0.9, ge=0, le=10, description="Text: BM25 term-frequency saturation k1 (Anserini default).")
    bm25_b: float = Field(0.4, ge=0, le=1, description="Text: BM25 length normalisation b (Anserini default).")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_model(cls, data: Any) -> Any:
        """``model`` (until 0.2, with a warning) means text_model for text and clip for image/video."""
        if isinstance(data, dict) and "model" in data:
            new = "text_model" if data.get("kind", "text") == "text" else "clip"
            if new in data:
                raise ValueError(f"give {new!r} only; 'model' is its deprecated name")
            warnings.warn(f"collection.create: field 'model' is deprecated, use {new!r}", DeprecationWarning,
                          stacklevel=2)
            data = {**data, new: data["model"]}
            del data["model"]
        return data

    @model_validator(mode="after")
    def _encoder_fits_kind(self) -> CollectionCreateInput:
        if self.kind == "text" and self.clip is not None:
            raise ValueError("a text collection takes 'text_model', not 'clip'")
        if self.kind != "text" and self.text_model is not None:
            raise ValueError(f"an {self.kind} collection takes 'clip', not 'text_model'")
        return self


@tool("collection.create")
def create(inp: CollectionCreateInput, ctx: Context) -> CollectionInfo:
    """Create an empty collection of text documents, images or videos (FAISS + SQLite, BM25 for text)."""
    if inp.kind == "text":
        model = inp.text_model or ctx.settings.text_model
    else:
        model = inp.clip or ctx.settings.clip
    if model != "none":
        check_model_spec("text" if inp.kind == "text" else "clip", model, ctx.settings)  # paths: roots first
    if inp.kind == "text" and model != "none":
        from vltools.models.text import resolve

        resolve(model)  # fail now, not after the first add, when the model is not available offline
    coll = create_collection(
        inp.name,
        inp.kind,
        model=model,
        settings=ctx.settings,
        index=inp.index,
        exist_ok=inp.exist_ok,
        shards=inp.shards,
        bm25_params={"k1": inp.bm25_k1, "b": inp.bm25_b},
    )
    return info_of(coll)


# -- collection.add -----------------------------------------------------------------------
class CollectionAddInput(ToolInput):
    collection: str = Field(description="Name of an existing text collection.")
    documents: list[dict[str, Any]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INLINE_DOCUMENTS,
        description='Documents {"id", "text", "title"?, "metadata"?, ...}; other keys are kept as metadata.',
    )
    path: str | None = Field(
        None, description="A UTF-8 .jsonl file with one such document per line (instead of documents)."
    )
    upsert: bool = Field(False, description="Replace documents whose id exists; otherwise such an add is rejected.")
    batch_size: int = Field(64, ge=1, le=1024, description="Encoding batch size.")
    executor: Literal["local", "ray"] = Field(
        "local",
        description="local: encode in this process, one atomic add. ray: a resumable job on Ray (extra 'scale'): "
        "documents cut into shards encoded by a pool of actors and added shard by shard; a stopped job resumes "
        "when called again with the same documents.",
    )
    workers: int | None = Field(None, ge=1, le=4096, description="executor ray: encoding actors (default: Ray's CPUs).")

    @model_validator(mode="after")
    def _one_source(self) -> CollectionAddInput:
        if (self.documents is None) == (self.path is None):
            raise ValueError("give exactly one of 'documents' (a list) or 'path' (a .jsonl file)")
        return self


class CollectionAddOutput(BaseModel):
    collection: str = Field(description="Collection name.")
    added: int = Field(description="New documents stored.")
    updated: int = Field(description="Existing documents replaced (upsert).")
    count: int = Field(description="Documents in the collection after the add.")
    seconds: float = Field(description="Wall-clock time of the add.")


def _check_doc(doc: dict[str, Any], where: str, max_chars: int) -> dict[str, Any]:
    rid = doc.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid.strip():
        raise InvalidInput(f"{where}: 'id' must be a non-empty string, got {rid!r}")
    for key in ("text", "title"):
        val = doc.get(key)
        if key == "text" and val is None:
            raise InvalidInput(f"{where} (id {rid}): missing 'text'", hint='each document needs {"id", "text"}')
        if val is not None and not isinstance(val, str):
            raise InvalidInput(f"{where} (id {rid}): {key!r} must be a string, got {type(val).__name__}")
    size = len(doc.get("text") or "") + len(doc.get("title") or "")
    if size > max_chars:
        raise TooLarge(
            f"{where} (id {rid}) has {size:,} characters; the limit is {max_chars:,}",
            hint="split long documents into passages, or raise VLTOOLS_MAX_DOCUMENT_CHARS",
        )
    return {**doc, "id": rid}


def load_documents(inp: CollectionAddInput, ctx: Context) -> tuple[list[dict[str, Any]], list[str]]:
    """Validated documents and a 'where' label for each (file line or list position)."""
    limit = ctx.settings.max_document_chars
    docs, where = [], []
    if inp.path is not None:
        path = check_path(inp.path, ctx.settings, what="corpus file")
        for n, obj in read_jsonl(path):
            docs.append(_check_doc(obj, f"{path.name} line {n}", limit))
            where.append(f"line {n}")
        if not docs:
            raise InvalidInput(f"{path.name} holds no documents")
    else:
        for i, obj in enumerate(inp.documents or []):
            if not isinstance(obj, dict):
                raise InvalidInput(f"documents[{i}] is not an object")
            docs.append(_check_doc(obj, f"documents[{i}]", limit))
            where.append(f"documents[{i}]")
    return docs, where


@tool("collection.add")
def add(inp: CollectionAddInput, ctx: Context) -> CollectionAddOutput:
    """Add text documents (inline or from a JSONL file) to a collection; encoded, indexed, all or nothing."""
    t0 = time.monotonic()
    coll = ctx.collection(inp.collection)
    coll.require_kind("text", "collection.add")
    docs, where = load_documents(inp, ctx)
    if not inp.upsert:  # fail before spending minutes on encoding
        first: dict[str, str] = {}
        for d, w in zip(docs, where, strict=True):
            if d["id"] in first:
                raise Conflict(
                    f"id {d['id']!r} appears twice ({first[d['id']]} and {w})",
                    hint="give every document a unique id, or pass upsert=true to keep the last one",
                )
            first[d["id"]] = w
        clash = coll.has(list(first))
        if clash:
            raise Conflict(
                f"{len(clash)} id(s) already in collection {coll.name!r}: {', '.join(sorted(clash)[:5])}",
                hint="pass upsert=true to replace them, or use new ids",
            )
    if inp.executor == "ray" and coll.has_vectors:
        from vltools.scale import IndexSpec, run_index

        job = IndexSpec(collection=coll.name, kind="text", model=coll.model, documents=docs, create=False,
                        upsert=inp.upsert, batch_size=inp.batch_size, executor="ray", workers=inp.workers)
        res = run_index(job, ctx.settings, progress=ctx.progress)
        return CollectionAddOutput(collection=coll.name, added=res.added, updated=res.updated, count=res.count,
                                   seconds=round(time.monotonic() - t0, 3))
    vectors = None
    if coll.has_vectors:
        encoder = ctx.text(coll.model)
        texts = [index_text(d.get("title"), d.get("text")) for d in docs]
        vectors = encoder.encode(texts, batch_size=inp.batch_size, progress=ctx.progress)
    result = coll.add(docs, vectors, upsert=inp.upsert, progress=ctx.progress)
    return CollectionAddOutput(collection=coll.name, seconds=round(time.monotonic() - t0, 3), **result)


# -- collection.info / list / delete --------------------------------------------------------
class CollectionRef(ToolInput):
    collection: str = Field(description="Collection name.")


@tool("collection.info")
def info(inp: CollectionRef, ctx: Context) -> CollectionInfo:
    """Describe a collection - kind, document count, model, vector dimension, index type, shards and path."""
    # verify: a damaged index file is reported here too; the shard sizes come from the loaded index
    return info_of(ctx.collection(inp.collection).verify(), shards=True)


class CollectionListInput(ToolInput):
    kind: Literal["text", "image", "video"] | None = Field(None, description="Only collections of this kind.")


class DamagedCollection(BaseModel):
    name: str = Field(description="Collection name.")
    error: str = Field(description="What is damaged (the file and how).")
    hint: str | None = Field(None, description="How to fix it (collection.repair or collection.delete).")


class CollectionListOutput(BaseModel):
    collections: list[CollectionInfo] = Field(description="The collections, by name.")
    damaged: list[DamagedCollection] = Field(
        default_factory=list, description="Collections that cannot be opened, whatever their kind."
    )


@tool("collection.list")
def list_(inp: CollectionListInput, ctx: Context) -> CollectionListOutput:
    """List the collections stored under VLTOOLS_HOME with their kind, size and model."""
    out, damaged = [], []
    for name in list_collections(ctx.settings):
        try:
            coll = ctx.collection(name)
        except NotFound:  # deleted right now
            continue
        except ToolError as err:
            damaged.append(DamagedCollection(name=name, error=err.message, hint=err.hint))
            continue
        if inp.kind is None or coll.kind == inp.kind:
            out.append(info_of(coll))
    return CollectionListOutput(collections=out, damaged=damaged)


class CollectionDeleteOutput(BaseModel):
    deleted: str = Field(description="Name of the deleted collection.")
    count: int | None = Field(description="Documents it held (null when its manifest was unreadable).")


@tool("collection.delete")
def delete(inp: CollectionRef, ctx: Context) -> CollectionDeleteOutput:
    """Delete a collection and everything stored in it (cannot be undone).

    Works on damaged collections too: the collection is never opened first.
    """
    count = delete_collection(inp.collection, ctx.settings)  # never opens it: a damaged one goes as well
    return CollectionDeleteOutput(deleted=inp.collection, count=count)


# -- collection.repair ----------------------------------------------------------------------
class CollectionRepairInput(ToolInput):
    collection: str = Field(description="Collection to check and repair.")
    force: bool = Field(False, description="Rebuild the indexes even when no damage is found.")
    drop_unrepairable: bool = Field(
        False,
        description="Remove documents whose vectors cannot be recomputed (e.g. an image file that is gone) "
        "instead of refusing to repair.",
    )


class CollectionRepairOutput(BaseModel):
    collection: str = Field(description="Collection name.")
    status: Literal["healthy", "repaired"] = Field(description="healthy: nothing was wrong and nothing rewritten.")
    problems: list[str] = Field(description="The damage found (files and how), before the repair.")
    rebuilt: list[str] = Field(description="Files written anew (manifest, FAISS index, BM25 index).")
    reencoded: int = Field(description="Documents whose missing vectors were recomputed with the model.")
    dropped: list[str] = Field(description="Ids removed because their vectors could not be recomputed.")
    count: int = Field(description="Documents in the collection after the repair.")


def _reencoder(ctx: Context) -> Any:
    """Vectors for documents that lost theirs: text re-encoded, images re-embedded from their files,
    videos from the frame features video.index stored; a string says why one cannot be made."""
    import numpy as np

    def encode(kind: str, model: str, records: list[dict[str, Any]]) -> list[Any]:
        if kind == "text":
            texts = [index_text(r.get("title"), r.get("text")) for r in records]
            return list(ctx.text(model).encode(texts, batch_size=64, progress=ctx.progress))
        out: list[Any] = []
        if kind == "video":
            for r in records:
                frames = (r.get("metadata") or {}).get("frame_features")
                out.append(np.asarray(frames, dtype=np.float32).mean(0) if frames else
                           "no stored frame features; re-index the file with video.index (upsert)")
            return out
        from vltools.models.media import load_image

        images, where = [], []
        for i, r in enumerate(records):
            ctx.progress(i, len(records), "reading images")
            try:
                images.append(load_image(r.get("path") or "", ctx.settings))
                where.append(i)
                out.append(None)
            except ToolError as err:
                out.append(f"its file cannot be read again ({err.message})")
        if images:
            vecs = ctx.clip(model).encode_images(images)
            for i, v in zip(where, vecs, strict=True):
                out[i] = v
        return out

    return encode


@tool("collection.repair")
def repair(inp: CollectionRepairInput, ctx: Context) -> CollectionRepairOutput:
    """Check a collection and rebuild its FAISS and BM25 indexes (and a lost manifest) from the stored
    documents; says so when the documents themselves are damaged."""
    out = repair_collection(
        inp.collection,
        ctx.settings,
        encode=_reencoder(ctx),
        force=inp.force,
        drop_unrepairable=inp.drop_unrepairable,
        progress=ctx.progress,
    )
    return CollectionRepairOutput(collection=inp.collection, **out)
