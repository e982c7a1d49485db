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
        return run_job("video", inp, ctx, frames=inp.frames)
    coll, spec = open_media_collection(inp.collection, "video", ctx, clip=inp.clip, create=inp.create)
    files = expand_paths(inp.paths, ctx.settings, extensions=VIDEO_EXTENSIONS)
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


# -- video.search --------------------------------------------------------------------------------
class SearchInput(ToolInput):
    collection: str = Field(min_length=1, description="Name of a video collection.")
    query: str = Field(min_length=1, max_length=20_000, description="Text describing the video wanted.")
    k: int = Field(5, ge=1, le=1000, description="Number of hits to return.")
    contact_sheet: str | None = Field(
        None, min_length=1, description=CONTACT_SHEET_HELP + " Each video shows its best-matching frame."
    )


class SearchOutput(Ranking):
    """The videos best first, as a shared `Ranking`: each `Hit` has its ``path`` and the ``time`` of the
    frame that matches the query best (that frame's cosine is ``metadata["frame_score"]``)."""

    truncated: bool = Field(False, description="True when the query exceeded the text tower's context.")
    notices: list[str] = Field(default_factory=list, description="How a long query was handled (P08).")
    contact_sheet: str | None = Field(None, description="Path of the contact sheet written, when one was asked for.")


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
    found = coll.search(vecs[0], min(inp.k, coll.count))
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
                        notices=backend.fit_notices([inp.query], notes, "query"), contact_sheet=written)
