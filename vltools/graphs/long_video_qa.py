"""`graph.long_video_qa`: questions about arbitrarily long videos (Goldfish, P57).

A LangGraph ``StateGraph`` over registry tools: ``index`` splits the video into short clips and
indexes each once into a video collection (``video.index`` with ``clip_seconds``: a few frames per
clip, reached by seeking, so memory stays bounded for hours of video; a second question on the same
video reuses the collection), ``retrieve`` finds the top clips for the question (``video.search``),
``describe`` describes only those clips (``video.describe``), and ``answer`` answers from their
events (``evidence.select``, or ``llm.generate`` when an LLM is given), with the evidence spans.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.graphs._common import ctx_of, report, run_graph
from vltools.graphs._video import NOTHING, Evidence, answer_from, describe_spans
from vltools.schemas import ToolInput

NODES = 4


class LongVideoQAInput(ToolInput):
    video: str = Field(min_length=1, description="Path of the (long) video.")
    question: str = Field(min_length=1, max_length=2000, description="The question to answer.")
    collection: str | None = Field(
        None, description="Video collection holding its clips (default: 'clips-' + the file's content hash).",
    )
    clip_seconds: float = Field(10.0, ge=2, le=600, description="Length of the clips the video is split into.")
    frames_per_clip: int = Field(4, ge=1, le=32, description="Frames encoded per clip for retrieval.")
    top_clips: int = Field(3, ge=1, le=20, description="Clips retrieved and described for the answer.")
    mode: Literal["mean", "tempme", "ucofia", "glscl", "prompt_switch"] = Field(
        "prompt_switch", description="video.search scoring mode used to retrieve clips."
    )
    labels: list[str] | None = Field(
        None, max_length=500, description="Names of things that may appear (the caller's vocabulary) for descriptions."
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip).")
    llm: str | None = Field(None, description="LLM spec that writes the answer (default: the best-matching event).")


class ClipHit(BaseModel):
    start: float = Field(description="Clip start, seconds.")
    end: float = Field(description="Clip end, seconds.")
    score: float = Field(description="Retrieval score of the clip for the question.")


class LongVideoQAOutput(BaseModel):
    answer: str = Field(description="The answer.")
    evidence: list[Evidence] = Field(description="The described events the answer rests on, best first.")
    clips: list[ClipHit] = Field(description="The clips retrieved for the question, best first.")
    collection: str = Field(description="The video collection holding the clips (reused by later questions).")
    indexed_clips: int = Field(description="Clips newly indexed by this call (0 when the collection was reused).")
    answered_by: str = Field(description="'llm', 'best-matching event' or 'none'.")
    notice: str | None = Field(None, description="How the video was sampled.")


class _State(TypedDict, total=False):
    question: str
    params: dict[str, Any]
    indexed: int
    notices: list[str]
    clips: list[dict[str, Any]]
    events: list[dict[str, Any]]
    answer: str
    evidence: list[dict[str, Any]]
    answered_by: str


def _index(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 0, NODES, "index", f"clips of {p['clip_seconds']:g} s")
    out = ctx.call("video.index", {"collection": p["collection"], "paths": [p["video"]], "create": True,
                                   "clip": p["clip"], "frames": p["frames_per_clip"],
                                   "clip_seconds": p["clip_seconds"]})
    return {"indexed": out.added + out.updated, "notices": out.notices}


_LEAD = re.compile(r"^\s*((when|where|what|which|who|how|why|does|do|did|is|are|was|were|can|could|in|at|the|"
                   r"video|moment|time|you|see|show|shows)\b[\s,]*)+", re.I)


def search_query(question: str) -> str:
    """The question without its leading question words and final '?' (what the clips should show)."""
    q = _LEAD.sub("", question.strip()).rstrip(" ?")
    return q or question


def _retrieve(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 1, NODES, "retrieve", state["question"])
    coll = ctx.collection(p["collection"])
    out = ctx.call("video.search", {"collection": p["collection"], "query": search_query(state["question"]),
                                    "k": min(coll.count, max(p["top_clips"] * 20, 50)), "mode": p["mode"],
                                    "pool": min(coll.count, 1000)})
    mine = [h for h in out.hits if h.path == p["resolved"]][: p["top_clips"]]
    clips = [{"video": h.path, "start": float(h.metadata["start"]), "end": float(h.metadata["end"]),
              "score": h.score} for h in mine if "start" in h.metadata]
    return {"clips": clips}


def _describe(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 2, NODES, "describe", f"{len(state['clips'])} clips")
    return {"events": describe_spans(ctx, state["clips"], p["labels"], p["clip"])}


def _answer(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 3, NODES, "answer", "answering")
    answer, evidence, how = answer_from(ctx, state["question"], state["events"], p["llm"], p["top_clips"])
    report(config, 4, NODES, "answer", "done")
    return {"answer": answer, "evidence": evidence, "answered_by": how}


@functools.cache
def build_graph() -> Any:
    """The compiled long-video QA graph (input state: question, params)."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_State)
    for name, fn in (("index", _index), ("retrieve", _retrieve), ("describe", _describe), ("answer", _answer)):
        g.add_node(name, fn)
    g.add_edge(START, "index")
    g.add_edge("index", "retrieve")
    g.add_edge("retrieve", "describe")
    g.add_edge("describe", "answer")
    g.add_edge("answer", END)
    return g.compile()


@tool("graph.long_video_qa")
def long_video_qa(inp: LongVideoQAInput, ctx: Context) -> LongVideoQAOutput:
    """Answer a question about an arbitrarily long video - index short clips once, retrieve the top clips, describe
    and answer from them (Goldfish).

    Memory stays bounded: a few frames per clip are reached by seeking; only the retrieved clips are described.
    """
    from vltools.models.media import check_path, file_sha256

    path = check_path(inp.video, ctx.settings)
    name = inp.collection or f"clips-{file_sha256(path)[:16]}"
    params = {**inp.model_dump(exclude={"question"}), "collection": name, "resolved": str(path)}
    final = run_graph(build_graph(), {"question": inp.question.strip(), "params": params}, ctx)
    ev = final.get("evidence", [])
    return LongVideoQAOutput(
        answer=final.get("answer", NOTHING), evidence=[Evidence(start=e["start"], end=e["end"], text=e["text"])
                                                       for e in ev],
        clips=[ClipHit(start=c["start"], end=c["end"], score=round(c["score"], 4)) for c in final.get("clips", [])],
        collection=name, indexed_clips=final.get("indexed", 0), answered_by=final.get("answered_by", "none"),
        notice="; ".join(final.get("notices") or []) or None,
    )
