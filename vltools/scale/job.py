"""A resumable indexing job: inputs → fixed shards → embedding shards (Parquet) → a collection.

1. The inputs (paths, folders, globs, ``.jsonl`` or ``.parquet`` lists) are resolved in a stable order
   and cut into shards of ``shard_size`` items. The job's folder is named after the collection and a
   digest of the items, model and settings, so the same command finds its earlier, unfinished run.
2. Unfinished shards are embedded by `ShardEmbedder` — on Ray Data (``map_batches`` on an actor pool:
   each actor loads the model once and embeds whole shards) or in this process (``executor="local"``).
   Each shard is written as ``emb/shard-NNNNN.parquet`` (temp file + rename): a file that exists is done.
3. As shards finish, they are added to the collection in shard order, one atomic ``Collection.add``
   per shard (the store's write protocol), and the job records which shards it loaded. The collection
   is created first, so it is readable (and consistent) at every point of the job.

A killed job re-run with the same inputs embeds only the shards without a file and loads only the
shards not yet loaded (a shard whose ids are already stored with the same content is skipped).
IVF and IVF-PQ collections train on a seeded sample (`vltools.store._faiss.TRAIN_SAMPLE`) and are
filled in chunks; with ``index_shards`` > 1 the collection keeps several index shards.
Files that cannot be read are reported per item (``failed``), never abort the job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core.errors import BackendUnavailable, Conflict, InvalidInput, NotFound, ToolError

log = logging.getLogger(__name__)

Kind = Literal["text", "image", "video"]
Executor = Literal["ray", "local"]
LIST_SUFFIXES = (".jsonl", ".parquet")
SHARD_NAME = "shard-{:05d}.parquet"
JOB_FORMAT = 1


class IndexSpec(BaseModel):
    """What to index where, and how to run it."""

    collection: str = Field(description="Collection to fill (created when missing and `create`).")
    kind: Kind = Field("image", description="What the inputs are: images, videos or text documents.")
    model: str | None = Field(None, description="CLIP spec (image/video) or text-model spec; default from settings.")
    inputs: list[str] = Field(default_factory=list, description="Files, folders, globs, or .jsonl/.parquet lists.")
    documents: list[dict[str, Any]] | None = Field(None, description="Text documents given inline (instead of inputs).")
    create: bool = Field(True, description="Create the collection when it does not exist.")
    index: Literal["flat", "hnsw", "ivf", "ivfpq"] = Field("flat", description="Index type of a new collection.")
    index_shards: int = Field(1, ge=1, le=256, description="Index shards of a new collection.")
    upsert: bool = Field(False, description="Replace stored items whose id has different content.")
    batch_size: int = Field(32, ge=1, le=4096, description="Items per forward pass inside a shard.")
    frames: int = Field(8, ge=1, le=64, description="Video: frames sampled per video.")
    shard_size: int = Field(256, ge=1, le=1_000_000, description="Items per embedding shard (the unit of resume).")
    executor: Executor = Field("ray", description="ray: Ray Data actor pool; local: this process.")
    workers: int | None = Field(None, ge=1, le=4096, description="Ray actors (default: the CPUs Ray sees).")
    address: str | None = Field(None, description="Ray cluster to join (e.g. 'auto' or 'ray://host:10001').")
    gpus_per_worker: float | None = Field(
        None, ge=0, le=8, description="GPUs per actor (default 1 when settings.device is cuda, or auto on a GPU "
        "machine; else 0)."
    )
    max_shards: int | None = Field(None, ge=1, description="Stop after embedding this many shards (resume later).")


class Failed(BaseModel):
    id: str = Field(description="Item id (the path for media).")
    error: str = Field(description="Why it was not indexed.")


class IndexResult(BaseModel):
    collection: str = Field(description="The collection written to.")
    job: str = Field(description="Folder of the job (embedding shards and state); rerun the command to resume.")
    items: int = Field(description="Items in the inputs.")
    shards: int = Field(description="Embedding shards of the job.")
    embedded: int = Field(description="Shards embedded by this run.")
    reused: int = Field(description="Shards found already embedded by an earlier run (not re-embedded).")
    loaded: int = Field(description="Shards in the collection after this run.")
    complete: bool = Field(description="Every shard is embedded and in the collection.")
    added: int = Field(description="Items newly added by this run.")
    updated: int = Field(description="Items replaced (upsert) by this run.")
    unchanged: int = Field(description="Items already stored with the same content (skipped).")
    duplicates: list[dict[str, str]] = Field(description="Items skipped as content duplicates: {path, duplicate_of}.")
    failed: list[Failed] = Field(description="Items that could not be read or embedded.")
    ids: list[str] = Field(description="Ids added or updated by this run.")
    count: int = Field(description="Items in the collection after this run.")
    executor: str = Field(description="Where the embedding ran: ray or local.")
    workers: int = Field(description="Embedding workers used (1 for local).")
    embed_seconds: float = Field(description="Wall time of the embedding stage of this run.")
    seconds: float = Field(description="Wall time of this run.")


# -- inputs ---------------------------------------------------------------------------------------
def _read_list(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl or .parquet input list."""
    if path.suffix == ".jsonl":
        from vltools.store._io import read_jsonl

        return [obj for _, obj in read_jsonl(path)]
    pq = _pyarrow_parquet()
    try:
        return pq.read_table(str(path)).to_pylist()
    except Exception as err:  # pyarrow's errors are many; say which file and why
        raise InvalidInput(f"{path.name} is not a readable Parquet file ({err})") from None


def resolve_items(spec: IndexSpec, settings: Any) -> list[dict[str, Any]]:
    """The items to index in a stable order: media {"path", "id"?}, text {"id", "text", ...}."""
    from vltools.core.paths import check_path

    if spec.kind == "text":
        rows = list(spec.documents or [])
        for src in spec.inputs:
            p = check_path(src, settings, what="document list")
            if p.suffix not in LIST_SUFFIXES:
                raise InvalidInput(f"text inputs must be .jsonl or .parquet files, got {p.name}")
            rows.extend(_read_list(p))
        if not rows:
            raise InvalidInput("no documents to index", hint="give .jsonl/.parquet files or documents")
        out = []
        for i, r in enumerate(rows):
            if not isinstance(r.get("text"), str) or r.get("id") in (None, ""):
                raise InvalidInput(f"document {i} needs an 'id' and a string 'text'")
            out.append({**r, "id": str(r["id"])})
        return out
    if spec.documents is not None:
        raise InvalidInput(f"{spec.kind} jobs take inputs (paths), not documents")
    from vltools.models.media import IMAGE_EXTENSIONS, expand_paths

    if spec.kind == "video":
        from vltools.tools.video import VIDEO_EXTENSIONS as extensions
    else:
        extensions = IMAGE_EXTENSIONS
    items: list[dict[str, Any]] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            items.extend({"path": str(p)} for p in expand_paths(plain, settings, extensions=extensions))
            plain.clear()

    for src in spec.inputs:
        if src.endswith(LIST_SUFFIXES) and not any(c in src for c in "*?["):
            flush()
            p = check_path(src, settings, what="input list")
            for i, row in enumerate(_read_list(p)):
                if not isinstance(row.get("path"), str):
                    raise InvalidInput(f"{p.name} row {i + 1} has no string 'path'")
                items.append({"path": str(check_path(row["path"], settings))})
        else:
            plain.append(src)
    flush()
    if not items:
        raise InvalidInput("no inputs to index", hint="give files, folders, globs or a .jsonl/.parquet list")
    seen: set[str] = set()
    return [it for it in items if not (it["path"] in seen or seen.add(it["path"]))]  # first occurrence wins


# -- the job folder -------------------------------------------------------------------------------
class Job:
    """The folder of one job: ``job.json`` (what and how far) and ``emb/`` (the embedding shards)."""

    def __init__(self, folder: Path, items: list[dict[str, Any]], shard_size: int) -> None:
        self.folder = folder
        self.items = items
        self.shard_size = shard_size
        self.n_shards = (len(items) + shard_size - 1) // shard_size
        (folder / "emb").mkdir(parents=True, exist_ok=True)
        self.state_path = folder / "job.json"

    def shard_items(self, i: int) -> list[dict[str, Any]]:
        return self.items[i * self.shard_size : (i + 1) * self.shard_size]

    def shard_path(self, i: int) -> Path:
        return self.folder / "emb" / SHARD_NAME.format(i)

    def embedded(self, i: int) -> bool:
        """A shard is done when its file exists (written under a temp name, then renamed) and is complete."""
        path = self.shard_path(i)
        if not path.is_file():
            return False
        try:
            rows = _pyarrow_parquet().ParquetFile(str(path)).metadata.num_rows
        except Exception:  # a damaged file: embed the shard again
            log.warning("embedding shard %s is unreadable; it will be embedded again", path)
            return False
        return rows == len(self.shard_items(i))

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {"format": JOB_FORMAT, "loaded": []}

    def mark_loaded(self, i: int, extra: dict[str, Any]) -> None:
        from vltools.store._manifest import atomic_write_bytes

        st = self.state()
        if st.get("collection_created") not in (None, extra.get("collection_created")):
            st["loaded"] = []  # a new collection of the same name: the old list is void
        st["loaded"] = sorted(set(st.get("loaded", [])) | {i})
        st.update(extra)
        atomic_write_bytes(self.state_path, json.dumps(st, indent=1).encode())

    def loaded(self) -> set[int]:
        return set(self.state().get("loaded", []))


def job_folder(spec: IndexSpec, model: str, items: list[dict[str, Any]], settings: Any) -> Path:
    key = {"collection": spec.collection, "kind": spec.kind, "model": model, "frames": spec.frames,
           "shard_size": spec.shard_size, "items": items, "format": JOB_FORMAT}  # fmt: skip
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return settings.home / "jobs" / f"{spec.collection}-{digest}"


# -- embedding one shard (inside a Ray actor or this process) -------------------------------------
class ShardEmbedder:
    """Holds one model; ``__call__`` embeds whole shards and writes their Parquet files.

    Used as a Ray Data ``map_batches`` callable class (one instance per actor, so the model loads
    once per actor) and directly by the local executor.
    """

    def __init__(self, kind: str, model: str, settings: dict[str, Any], job: str, shard_size: int,
                 batch_size: int, frames: int) -> None:  # fmt: skip
        from vltools.core.context import Context
        from vltools.core.settings import Settings

        self.kind, self.model = kind, model
        self.settings = settings if not isinstance(settings, dict) else Settings(**settings)
        self.ctx = Context(settings=self.settings)
        self.folder = Path(job)
        self.shard_size, self.batch_size, self.frames = shard_size, batch_size, frames
        self.backend = self.ctx.text(model) if kind == "text" else self.ctx.clip(model)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"shard": [], "rows": [], "failed": [], "seconds": [], "pid": []}
        for shard, items_json in zip(batch["shard"], batch["items"], strict=True):
            t0 = time.perf_counter()
            rows = self.embed(json.loads(str(items_json)))
            write_shard(self.folder / "emb" / SHARD_NAME.format(int(shard)), rows)
            out["shard"].append(int(shard))
            out["rows"].append(len(rows))
            out["failed"].append(sum(r["error"] is not None for r in rows))
            out["seconds"].append(time.perf_counter() - t0)
            out["pid"].append(os.getpid())
        return out

    def embed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.kind == "text":
            return self._text(items)
        if self.kind == "video":
            return [self._video(it) for it in items]
        return self._images(items)

    def _row(self, rid: str, **kw: Any) -> dict[str, Any]:
        row = {"id": rid, "path": None, "hash": None, "title": None, "text": None, "metadata": "{}",
               "vector": None, "error": None}  # fmt: skip
        row.update(kw)
        return row

    def _text(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from vltools.store import index_text

        texts = [index_text(it.get("title"), it.get("text")) for it in items]
        vecs = self.backend.encode(texts, batch_size=self.batch_size)
        rows = []
        for it, v in zip(items, vecs, strict=True):
            meta = {k: val for k, val in it.items() if k not in ("id", "text", "title", "metadata")}
            meta.update(it.get("metadata") or {})
            rows.append(self._row(it["id"], text=it["text"], title=it.get("title"), metadata=json.dumps(meta),
                                  vector=v.astype("float32").tolist()))
        return rows

    def _images(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from vltools.models.media import file_sha256, load_image
        from vltools.tools.image import _header, _image_id

        rows: list[dict[str, Any]] = []
        ready: list[tuple[int, Any]] = []
        for it in items:
            p = Path(it["path"])
            try:
                info = {**_header(str(p), self.settings), "bytes": p.stat().st_size}
                digest = file_sha256(p)
                image = load_image(str(p), self.settings)
            except (ToolError, OSError) as err:
                rows.append(self._row(str(p), path=str(p), error=getattr(err, "message", None) or str(err)))
                continue
            rows.append(self._row(_image_id(str(p), digest), path=str(p), hash=digest, title=p.name,
                                  metadata=json.dumps(info)))
            ready.append((len(rows) - 1, image))
        for start in range(0, len(ready), self.batch_size):
            part = ready[start : start + self.batch_size]
            vecs = self.backend.encode_images([im for _, im in part], batch_size=self.batch_size)
            for (i, _), v in zip(part, vecs, strict=True):
                rows[i]["vector"] = v.astype("float32").tolist()
        return rows

    def _video(self, it: dict[str, Any]) -> dict[str, Any]:
        from vltools.models.media import file_sha256
        from vltools.tools.video import FEATURE_DECIMALS, _embed_frames

        p = Path(it["path"])
        try:
            digest = file_sha256(p)
            pooled, feats, times, notice, info = _embed_frames(str(p), self.ctx, self.backend, frames=self.frames,
                                                               fps=None, max_frames=self.frames)
        except (ToolError, OSError) as err:
            return self._row(str(p), path=str(p), error=getattr(err, "message", None) or str(err))
        meta = {"duration": round(info.duration, 4), "fps": round(info.fps, 4), "width": info.width,
                "height": info.height, "times": times, "frame_features": feats.round(FEATURE_DECIMALS).tolist()}
        if notice:
            meta["notice"] = notice
        return self._row(str(p), path=str(p), hash=digest, title=p.name, metadata=json.dumps(meta),
                         vector=pooled.astype("float32").tolist())


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BackendUnavailable(
            "indexing jobs write Parquet embedding shards and need pyarrow",
            hint="install the scale extra: pip install -e '.[scale]'",
        ) from None
    return pq


def write_shard(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write one embedding shard as Parquet under a temp name, then rename it into place."""
    import pyarrow as pa

    pq = _pyarrow_parquet()
    dim = next((len(r["vector"]) for r in rows if r["vector"] is not None), 0)
    vec_type = pa.list_(pa.float32(), dim) if dim else pa.list_(pa.float32())
    schema = pa.schema([("id", pa.string()), ("path", pa.string()), ("hash", pa.string()), ("title", pa.string()),
                        ("text", pa.string()), ("metadata", pa.string()), ("vector", vec_type),
                        ("error", pa.string())])  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, str(tmp))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_shard(path: Path) -> list[dict[str, Any]]:
    return _pyarrow_parquet().read_table(str(path)).to_pylist()


# -- running --------------------------------------------------------------------------------------
def _local_results(job: Job, todo: list[int], embedder_kw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    embedder = ShardEmbedder(**embedder_kw)
    for i in todo:
        out = embedder({"shard": [i], "items": [json.dumps(job.shard_items(i))]})
        yield {k: v[0] for k, v in out.items()}


def _ray_results(job: Job, todo: list[int], embedder_kw: dict[str, Any], spec: IndexSpec,
                 workers: int, gpus: float) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Embed ``todo`` on a Ray Data actor pool; yields one result row per finished shard."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailable(
            "executor 'ray' needs Ray, which is not installed",
            hint="install the scale extra: pip install -e '.[scale]', or pass executor 'local'",
        ) from None
    own = not ray.is_initialized()
    if own:
        ray.init(address=spec.address, num_cpus=None if spec.address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)  # fmt: skip
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        if spec.workers is None and spec.address:  # joined a cluster: as many actors as its CPUs (and GPUs) allow
            res = ray.cluster_resources()
            workers = max(1, int(res.get("CPU", workers)))
            if gpus > 0:
                workers = max(1, min(workers, int(res.get("GPU", 0) // gpus)))
        rows = [{"shard": i, "items": json.dumps(job.shard_items(i))} for i in todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map_batches(
            ShardEmbedder,
            fn_constructor_kwargs=embedder_kw,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows))),
            num_cpus=1,
            num_gpus=gpus,
        )
        yield from ds.iter_rows()
    finally:
        if own:
            ray.shutdown()


def _open_or_create(spec: IndexSpec, model: str, settings: Any) -> Any:
    from vltools.store import create_collection, open_collection

    try:
        coll = open_collection(spec.collection, settings)
    except NotFound:
        if not spec.create:
            raise
        return create_collection(spec.collection, spec.kind, model=model, settings=settings, index=spec.index,
                                 shards=spec.index_shards)  # fmt: skip
    coll.require_kind(spec.kind, "this indexing job")
    if coll.model != model:
        raise InvalidInput(
            f"collection {spec.collection!r} was built with {coll.model}, not {model}",
            hint="omit the model, or use another collection",
        )
    return coll


class _Loader:
    """Adds embedded shards to the collection in shard order, deduplicating by content hash."""

    def __init__(self, job: Job, coll: Any, spec: IndexSpec) -> None:
        self.job, self.coll, self.spec = job, coll, spec
        st = job.state()
        # shards loaded into a collection that was deleted (and made again) since are loaded again
        same = st.get("collection_created") in (None, coll.manifest["created"])
        self.done = job.loaded() if same else set()
        self.added = self.updated = self.unchanged = 0
        self.ids: list[str] = []
        self.duplicates: list[dict[str, str]] = []
        self.failed: list[Failed] = []
        self.seen: dict[str, str] = {}

    def load_ready(self) -> None:
        for i in range(self.job.n_shards):
            if i in self.done:
                continue
            if not self.job.embedded(i):
                return  # keep shard order: later shards wait for this one
            self.load(i)

    def load(self, i: int) -> None:
        import numpy as np

        recs, vecs = [], []
        for r in read_shard(self.job.shard_path(i)):
            if r["error"] is not None:
                self.failed.append(Failed(id=r["id"], error=r["error"]))
                continue
            if r["hash"] is not None:  # media: skip content already stored (or seen earlier in this job)
                stored = self.coll.find_by("hash", r["hash"])
                if r["id"] in stored:
                    self.unchanged += 1
                    continue
                dup = stored[0] if stored else self.seen.get(r["hash"])
                if dup is not None:
                    self.duplicates.append({"path": r["path"], "duplicate_of": dup})
                    continue
                self.seen[r["hash"]] = r["id"]
            rec = {"id": r["id"], "metadata": json.loads(r["metadata"] or "{}")}
            for key in ("path", "hash", "title", "text"):
                if r[key] is not None:
                    rec[key] = r[key]
            recs.append(rec)
            vecs.append(r["vector"])
        if recs and not self.spec.upsert:
            clash = self.coll.has([r["id"] for r in recs])
            if clash and self.spec.kind == "text":  # text: same id, same text → unchanged
                same = {d["id"] for d in self.coll.get(sorted(clash))
                        if d.get("text") == next(r["text"] for r in recs if r["id"] == d["id"])}  # fmt: skip
                self.unchanged += len(same)
                clash -= same
                keep = [j for j, r in enumerate(recs) if r["id"] not in same]
                recs, vecs = [recs[j] for j in keep], [vecs[j] for j in keep]
            if clash:
                for j in [j for j, r in enumerate(recs) if r["id"] in clash]:
                    self.failed.append(Failed(id=recs[j]["id"], error="already indexed with different content "
                                              "(pass upsert to replace it)"))  # fmt: skip
                keep = [j for j, r in enumerate(recs) if r["id"] not in clash]
                recs, vecs = [recs[j] for j in keep], [vecs[j] for j in keep]
        if recs:
            res = self.coll.add(recs, np.asarray(vecs, dtype=np.float32), upsert=self.spec.upsert)
            self.added += res["added"]
            self.updated += res["updated"]
            self.ids.extend(r["id"] for r in recs)
        self.job.mark_loaded(i, {"collection": self.coll.name, "collection_created": self.coll.manifest["created"]})
        self.done.add(i)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _lock(folder: Path) -> Any:
    from filelock import FileLock
    from filelock import Timeout as LockTimeout

    lock = FileLock(str(folder / ".lock"), timeout=0)
    try:
        lock.acquire()
    except LockTimeout:
        raise Conflict(
            f"the indexing job in {folder} is running in another process",
            hint="wait for it to finish (or stop it), then run the command again to resume",
        ) from None
    return lock


def run_index(spec: IndexSpec, settings: Any, progress: Callable[[float, float | None, str], None] | None = None
              ) -> IndexResult:  # fmt: skip
    """Run (or resume) an indexing job; see the module docstring."""
    t0 = time.perf_counter()
    note = progress or (lambda *a: None)
    if spec.kind == "text" and not spec.inputs and not spec.documents:
        raise InvalidInput("give inputs (.jsonl/.parquet) or documents")
    if spec.kind != "text" and not spec.inputs:
        raise InvalidInput("give inputs: files, folders, globs or .jsonl/.parquet lists")
    model = spec.model or (settings.text_model if spec.kind == "text" else settings.clip)
    if model == "none":
        raise InvalidInput("an indexing job needs a model (BM25-only collections take collection.add)")
    from vltools.core.paths import check_model_spec

    check_model_spec("text" if spec.kind == "text" else "clip", model, settings)
    _pyarrow_parquet()
    items = resolve_items(spec, settings)
    job = Job(job_folder(spec, model, items, settings), items, spec.shard_size)
    lock = _lock(job.folder)
    try:
        coll = _open_or_create(spec, model, settings)
        loader = _Loader(job, coll, spec)
        loader.load_ready()  # shards embedded by an earlier run but not yet loaded
        todo = [i for i in range(job.n_shards) if not job.embedded(i)]
        reused = job.n_shards - len(todo)
        if spec.max_shards is not None:
            todo = todo[: spec.max_shards]
        device_cuda = settings.device.startswith("cuda") or (settings.device == "auto" and spec.executor == "ray"
                                                             and _cuda_available())  # fmt: skip
        gpus = spec.gpus_per_worker if spec.gpus_per_worker is not None else (1.0 if device_cuda else 0.0)
        workers = spec.workers or max(1, os.cpu_count() or 1)
        embedder_kw = {"kind": spec.kind, "model": model, "settings": settings.model_dump(mode="json"),
                       "job": str(job.folder), "shard_size": spec.shard_size, "batch_size": spec.batch_size,
                       "frames": spec.frames}  # fmt: skip
        embedded = 0
        t_embed = time.perf_counter()
        note(reused, job.n_shards, f"{reused} of {job.n_shards} shards already embedded")
        if todo:
            if spec.executor == "ray":
                results = _ray_results(job, todo, embedder_kw, spec, workers, gpus)
            else:
                embedder_kw["settings"] = settings
                results = _local_results(job, todo, embedder_kw)
            try:
                for row in results:
                    embedded += 1
                    loader.load_ready()
                    note(reused + embedded, job.n_shards,
                         f"embedded shard {row['shard']} ({row['rows']} items, {row['seconds']:.1f} s); "
                         f"{len(loader.done)} in the collection")  # fmt: skip
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()  # stops a Ray pipeline (and its cluster) when the caller gave up
        embed_s = time.perf_counter() - t_embed
        loader.load_ready()
        coll.refresh()
        complete = len(loader.done) == job.n_shards
        note(job.n_shards if complete else len(loader.done), job.n_shards, "done" if complete else "paused")
        return IndexResult(
            collection=coll.name, job=str(job.folder), items=len(items), shards=job.n_shards, embedded=embedded,
            reused=reused, loaded=len(loader.done), complete=complete, added=loader.added, updated=loader.updated,
            unchanged=loader.unchanged, duplicates=loader.duplicates, failed=loader.failed, ids=loader.ids,
            count=coll.count, executor=spec.executor, workers=workers if spec.executor == "ray" else 1,
            embed_seconds=round(embed_s, 3), seconds=round(time.perf_counter() - t0, 3),
        )  # fmt: skip
    finally:
        lock.release()
