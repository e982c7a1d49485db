"""Video tools on a CLIP backend (P28, ViFi-CLIP style): embed a video as the mean of its frames' CLIP
features (the frame features are kept), index videos into a video collection, and search it by text.

Needs a CLIP spec (default ``demo``, offline) and PyAV; files are read through
`vltools.models.video` (allowed roots, size and duration limits, bounded frame sampling).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.schemas import Hit, Ranking, ToolInput
from vltools.tools._contact_sheet import CONTACT_SHEET_HELP, check_sheet_path
from vltools.tools._media_index import (
    EXECUTOR_HELP,
    WORKERS_HELP,
    Executor,
    MediaIndexOutput,
    add_all,
    open_media_collection,
    plan_files,
    run_job,
)
from vltools.tools.video._modes import Mode

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".gif"})
FEATURE_DECIMALS = 5


def _embed_frames(path: str, ctx: Context, backend: Any, *, frames: int, fps: float | None, max_frames: int):
    """(pooled vector, frame features, times, notice, info) of one video."""
    import numpy as np

    from vltools.models.video import probe_video, sample_frames

    info = probe_video(path, ctx.settings)
    images, times, notice = sample_frames(
        path, ctx.settings, n=None if fps else frames, fps=fps, max_frames=max_frames, max_side=max(448, 2 * 224)
    )
    feats = np.zeros((len(images), backend.dim), dtype=np.float32)
    step = 32
    for start in range(0, len(images), step):
        feats[start : start + step] = backend.encode_images(images[start : start + step])
        ctx.progress(min(start + step, len(images)), len(images), f"frames of {info.path.rsplit('/', 1)[-1]}")
    pooled = feats.mean(0)
    pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
    return pooled, feats, times, notice, info


# -- video.embed ---------------------------------------------------------------------------------
class EmbedInput(ToolInput):
    renamed = {"model": "clip"}

    video: str = Field(min_length=1, description="Path of the video file.")
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip, e.g. 'demo').")
    frames: int = Field(8, ge=1, le=256, description="Frames sampled uniformly (ignored when fps is given).")
    fps: float | None = Field(None, gt=0, le=60, description="Sample at this rate instead (bounded by max_frames).")
    max_frames: int = Field(64, ge=1, le=256, description="Most frames embedded; denser requests are thinned.")
    keep_frames: bool = Field(True, description="Return the per-frame features as well as the pooled vector.")


class EmbedOutput(BaseModel):
    vector: list[float] = Field(description="L2-normalised mean of the frame features (the video embedding).")
    frame_features: list[list[float]] = Field(description="Per-frame L2-normalised CLIP features, in time order.")
    times: list[float] = Field(description="Time (s) of each embedded frame.")
    dim: int = Field(description="Embedding size.")
    duration: float = Field(description="Video duration in seconds.")
    fps: float = Field(description="Video frame rate.")
    size: list[int] = Field(description="[width, height] of the video.")
    model: str = Field(description="The CLIP spec used.")
    notice: str | None = Field(None, description="How the sampling was bounded, if it was.")


@tool("video.embed")
def embed(inp: EmbedInput, ctx: Context) -> EmbedOutput:
    """Embed a video with CLIP as the mean of its sampled frames' features (ViFi-CLIP); frame features kept.

    The frame features and their times are returned too, for temporal tools.
    """
    from vltools.models.video import probe_video

    probe_video(inp.video, ctx.settings)  # a bad file fails before a model loads
    backend = ctx.clip(inp.clip)
    pooled, feats, times, notice, info = _embed_frames(
        inp.video, ctx, backend, frames=inp.frames, fps=inp.fps, max_frames=inp.max_frames
    )
    return EmbedOutput(
        vector=[float(x) for x in pooled],
        frame_features=feats.round(FEATURE_DECIMALS).tolist() if inp.keep_frames else [],
        times=times,
        dim=backend.dim,
        duration=round(info.duration, 4),
        fps=round(info.fps, 4),
        size=[info.width, info.height],
        model=backend.spec,
        notice=notice,
    )


# -- video.index ---------------------------------------------------------------------------------
class IndexInput(ToolInput):
    renamed = {"model": "clip"}

    collection: str = Field(min_length=1, description="Name of a video collection (collection kind 'video').")
    paths: list[str] = Field(
        min_length=1, max_length=10_000, description="Video files, folders (searched recursively) or glob patterns."
    )
    create: bool = Field(False, description="Create the video collection (with `clip`) if it does not exist.")
    clip: str | None = Field(None, description="CLIP spec for a collection created here; must match otherwise.")
    frames: int = Field(8, ge=1, le=64, description="Frames sampled uniformly per video.")
    upsert: bool = Field(False, description="Replace videos whose path is already indexed with changed content.")
    clip_seconds: float | None = Field(
        None, ge=1, le=3600,
        description="Index each video as consecutive clips of this many seconds (ids 'PATH#START-END', `frames` "
        "frames each; Goldfish-style long-video indexing) instead of one item per video.",
    )
    executor: Executor = Field("local", description=EXECUTOR_HELP)
    workers: int | None = Field(None, ge=1, le=4096, description=WORKERS_HELP)


IndexOutput = MediaIndexOutput


@tool("video.index")
def index(inp: IndexInput, ctx: Context) -> IndexOutput:
    """Add videos (files, folders, globs) to a video collection as mean-pooled CLIP frame features, with progress.

    Each video is probed, sampled and embedded (frame features kept) and stored with path and content hash; a bad
    file fails the call before anything is written.
    """
    import numpy as np

    from vltools.models.media import expand_paths
    from vltools.models.video import probe_video

    if inp.executor == "ray":
        if inp.clip_seconds:
            from vltools.core import InvalidInput

            raise InvalidInput("clip_seconds is not supported with executor 'ray'", hint="use executor 'local'")
        return run_job("video", inp, ctx, frames=inp.frames)
    coll, spec = open_media_collection(inp.collection, "video", ctx, clip=inp.clip, create=inp.create)
    files = expand_paths(inp.paths, ctx.settings, extensions=VIDEO_EXTENSIONS)
    if inp.clip_seconds:
        return _index_clips(inp, ctx, coll, spec, files)
    # 1. probe and hash every file first: a bad file fails before anything is embedded.
    todo, duplicates, unchanged = plan_files(
        files, coll, ctx, check=lambda p: (probe_video(p, ctx.settings), {})[1],
        id_of=lambda p, digest: str(p), upsert=inp.upsert, note="checking videos",
    )
    backend = ctx.clip(spec)
    vectors, notices = [], []
    for i, rec in enumerate(todo):  # 2. embed (progress per video and per frame batch)
        ctx.progress(i, len(todo), f"embedding {rec['title']}")
        pooled, feats, times, notice, info = _embed_frames(rec["path"], ctx, backend, frames=inp.frames, fps=None,
                                                           max_frames=inp.frames)
        if notice:
            notices.append(f"{rec['path']}: {notice}")
        rec["metadata"] = {
            "duration": round(info.duration, 4), "fps": round(info.fps, 4), "width": info.width,
            "height": info.height, "times": times, "frame_features": feats.round(FEATURE_DECIMALS).tolist(),
        }
        vectors.append(pooled)
    vecs = np.stack(vectors).astype(np.float32) if vectors else None
    coll, result = add_all(coll, inp.collection, "video", spec, todo, vecs, upsert=inp.upsert, ctx=ctx)  # 3.
    ctx.progress(len(todo), len(todo), "indexed")
    return IndexOutput(collection=coll.name, added=result["added"], updated=result["updated"], unchanged=unchanged,
                       duplicates=duplicates, ids=[r["id"] for r in todo], count=result["count"], notices=notices)


def _index_clips(inp: IndexInput, ctx: Context, coll: Any, spec: str, files: list) -> IndexOutput:
    """Index each file as consecutive clips (one record per clip, frames sampled inside it; memory: one clip)."""
    import numpy as np

    from vltools.models.media import file_sha256
    from vltools.models.video import probe_video, sample_frames

    infos = [(p, probe_video(p, ctx.settings), file_sha256(p)) for p in files]  # bad files fail first
    backend = ctx.clip(spec)
    todo, vectors, unchanged, notices = [], [], 0, []
    length = float(inp.clip_seconds or 0)
    for n, (p, info, digest) in enumerate(infos):
        first = f"{p}#0.0-{min(length, info.duration):.1f}"
        if coll is not None and first in coll.find_by("hash", digest):
            unchanged += 1
            continue
        if coll is not None and coll.has([first]) and not inp.upsert:
            from vltools.core import InvalidInput

            raise InvalidInput(f"{p} is indexed with different content", hint="pass upsert=true to replace it")
        n_clips = max(1, int(np.ceil(info.duration / length - 1e-9)))
        for c in range(n_clips):
            ctx.progress(c, n_clips, f"clips of {p.name} ({n + 1}/{len(infos)})")
            s, e = c * length, min((c + 1) * length, info.duration)
            times = [s + (i + 0.5) * (e - s) / inp.frames for i in range(inp.frames)]
            images, got, _ = sample_frames(p, ctx.settings, timestamps=times, max_frames=inp.frames, max_side=256)
            feats = backend.encode_images(images)
            pooled = feats.mean(0)
            vectors.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
            todo.append({"id": f"{p}#{s:.1f}-{e:.1f}", "path": str(p), "hash": digest,
                         "title": f"{p.name} {s:.1f}-{e:.1f} s",
                         "metadata": {"start": round(s, 3), "end": round(e, 3), "duration": round(info.duration, 4),
                                      "clip_index": c, "times": got,
                                      "frame_features": feats.round(FEATURE_DECIMALS).tolist()}})
        if info.duration > ctx.settings.max_video_seconds:
            notices.append(f"{p}: {n_clips} clips of {length:g} s, {inp.frames} frames each reached by seeking")
    vecs = np.stack(vectors).astype(np.float32) if vectors else None
    coll, result = add_all(coll, inp.collection, "video", spec, todo, vecs, upsert=inp.upsert, ctx=ctx)
    return IndexOutput(collection=coll.name, added=result["added"], updated=result["updated"], unchanged=unchanged,
                       duplicates=[], ids=[r["id"] for r in todo], count=result["count"], notices=notices)


# -- video.search --------------------------------------------------------------------------------
class SearchInput(ToolInput):
    collection: str = Field(min_length=1, description="Name of a video collection.")
    query: str = Field(min_length=1, max_length=20_000, description="Text describing the video wanted.")
    k: int = Field(5, ge=1, le=1000, description="Number of hits to return.")
    mode: Mode = Field(
        "mean", description="Scoring: 'mean' (pooled cosine, FAISS), 'tempme' (P21 temporal merging), 'ucofia' "
        "(P34 coarse-to-fine + Sinkhorn), 'glscl' (P45 global-local), 'prompt_switch' (P31 text-independent "
        "frame features). Non-mean modes rerank the mean-pooled top `pool` candidates.",
    )
    pool: int = Field(100, ge=1, le=5000, description="Candidates (mean-pooled top) rescored by a non-mean mode.")
    contact_sheet: str | None = Field(
        None, min_length=1, description=CONTACT_SHEET_HELP + " Each video shows its best-matching frame."
    )


class SearchCost(BaseModel):
    candidates: int = Field(description="Videos scored by the mode (the mean-pooled top `pool`; all for 'mean').")
    features_per_video: float = Field(description="Mean number of vectors matched per candidate video.")
    video_encodes: int = Field(description="Frames encoded by CLIP for this query (0: stored features reused).")
    text_encodes: int = Field(description="Texts encoded for this query (the query and its content words).")


class SearchOutput(Ranking):
    """The videos best first, as a shared `Ranking`: each `Hit` has its ``path`` and the ``time`` of the
    frame that matches the query best (that frame's cosine is ``metadata["frame_score"]``)."""

    truncated: bool = Field(False, description="True when the query exceeded the text tower's context.")
    notices: list[str] = Field(default_factory=list, description="How a long query was handled (P08).")
    contact_sheet: str | None = Field(None, description="Path of the contact sheet written, when one was asked for.")
    mode: str = Field("mean", description="The scoring mode used.")
    cost: SearchCost | None = Field(None, description="What the mode computed for this query.")


def _video_sheet(hits: list[Hit], target: Any, title: str, ctx: Context) -> str:
    """Contact sheet of video hits: the frame at each hit's best time (the middle when unknown)."""
    from vltools.core.errors import ToolError
    from vltools.models.video import sample_frames
    from vltools.tools._contact_sheet import render_sheet, save_sheet

    cells = []
    for h in hits:
        try:
            if h.time is not None:
                frames, _, _ = sample_frames(h.path, ctx.settings, timestamps=[h.time], max_frames=1,
                                             max_side=256)
            else:
                frames, _, _ = sample_frames(h.path, ctx.settings, n=1, max_side=256)
            img = frames[0] if frames else None
        except ToolError:  # moved or changed since indexing: an empty cell, not a failure
            img = None
        at = f" @{h.time:.1f}s" if h.time is not None else ""
        cells.append((img, f"#{h.rank}  {h.score:.3f}{at}"))
        ctx.progress(len(cells), len(hits), "contact sheet")
    save_sheet(render_sheet(cells, title=title), target)
    return str(target)


@tool("video.search")
def search(inp: SearchInput, ctx: Context) -> SearchOutput:
    """Text-to-video search over a video collection with mean-pooled CLIP features; names the best-matching frame time.

    The pooled score ranks the videos; each hit's ``time`` is the sampled frame that matches the query best.
    """
    import numpy as np

    sheet = check_sheet_path(inp.contact_sheet, ctx.settings) if inp.contact_sheet else None
    title = f"{inp.collection}: {inp.query}"
    coll = ctx.collection(inp.collection)
    coll.require_kind("video", "video.search")
    if not coll.count:
        return SearchOutput(hits=[], contact_sheet=_video_sheet([], sheet, title, ctx) if sheet else None)
    backend = ctx.clip(coll.model)
    vecs, notes = backend.encode_texts_detailed([inp.query])
    if inp.mode == "mean":
        found = coll.search(vecs[0], min(inp.k, coll.count))
        cost = SearchCost(candidates=coll.count, features_per_video=1, video_encodes=0, text_encodes=1)
    else:
        found, cost = _rescore(inp, ctx, coll, backend, vecs)
    records = {r["id"]: r for r in coll.get([i for i, _ in found])}
    hits = []
    for rid, score in found:
        rec = records.get(rid)
        if rec is None:
            continue
        meta = dict(rec.get("metadata") or {})
        frames = meta.pop("frame_features", None)
        times = meta.pop("times", None)
        best_time = None
        if frames:
            sims = np.asarray(frames, dtype=np.float32) @ vecs[0]
            j = int(np.argmax(sims))
            best_time, meta["frame_score"] = float(times[j]), float(sims[j])
        hits.append(Hit(id=rid, path=rec.get("path") or "", time=best_time, score=float(score), rank=len(hits) + 1,
                        title=rec.get("title") or "", metadata=meta))
    written = _video_sheet(hits, sheet, title, ctx) if sheet else None
    return SearchOutput(query=inp.query, hits=hits, truncated=notes[0] is not None,
                        notices=backend.fit_notices([inp.query], notes, "query"), contact_sheet=written,
                        mode=inp.mode, cost=cost)


def _rescore(inp: SearchInput, ctx: Context, coll: Any, backend: Any, vecs: Any) -> tuple[list, SearchCost]:
    """Rescore the mean-pooled top ``pool`` videos with a non-mean mode on their stored frame features."""
    import numpy as np

    from vltools.core.errors import ToolError
    from vltools.models.video import sample_frames
    from vltools.tools.video import _modes

    coarse = coll.search(vecs[0], min(max(inp.pool, inp.k), coll.count))
    ids = [rid for rid, _ in coarse]
    recs = {r["id"]: r for r in coll.get(ids)}
    ids = [i for i in ids if i in recs and (recs[i].get("metadata") or {}).get("frame_features")]
    frames = [np.asarray(recs[i]["metadata"]["frame_features"], dtype=np.float32) for i in ids]
    texts = vecs
    words = _modes.content_words(inp.query) if inp.mode in ("ucofia", "glscl") else []
    if words:
        wv, _ = backend.encode_texts(words)
        texts = np.concatenate([vecs, wv])
    dense, encoded = None, 0
    if inp.mode == "ucofia" and hasattr(backend, "encode_dense"):
        dense = []
        for n, rid in enumerate(ids):  # the fine level: dense cells of the coarse stage's candidates
            ctx.progress(n, len(ids), "patch features")
            times = recs[rid]["metadata"].get("times") or []
            try:
                imgs, _, _ = sample_frames(recs[rid]["path"], ctx.settings, timestamps=times, max_frames=len(times),
                                           max_side=256)
                d = backend.encode_dense(imgs)
                dense.append(d.reshape(-1, d.shape[-1]))
                encoded += len(imgs)
            except ToolError:  # moved or changed since indexing, or a tower without dense features
                dense = None
                break
    scores = _modes.score_candidates(inp.mode, texts, frames, dense) if ids else np.zeros(0)
    order = np.argsort(-scores)[: inp.k]
    per_video = float(np.mean([_modes.features_per_video(inp.mode, f) for f in frames])) if frames else 0.0
    if dense is not None and frames:
        per_video += float(np.mean([len(d) for d in dense]))
    cost = SearchCost(candidates=len(ids), features_per_video=round(per_video, 3), video_encodes=encoded,
                      text_encodes=len(texts))
    return [(ids[i], float(scores[i])) for i in order], cost
