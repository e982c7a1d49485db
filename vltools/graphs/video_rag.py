"""`graph.video_rag`: retrieval-augmented answers over a video collection (VideoRAG, P50).

A LangGraph ``StateGraph`` over registry tools: ``retrieve`` describes every video of the collection
once (``video.describe``: its events and the labels CLIP finds in its key frames' grid cells; cached,
reused by later questions) and ranks the videos by question-description match (the objects the
question names, the kind of event asked) plus question-frame similarity (``video.search``, any mode);
``ground`` picks each retrieved video's relevant moment (``video.ground``; the described event about
the named object when there is one) and re-ranks the videos by it; ``describe`` gives the events of
those moments; ``answer`` answers citing video and time spans (``evidence.select`` orders the events
of each span, or ``llm.generate`` writes the answer when an LLM is given). Says it cannot answer when
nothing relevant is retrieved.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.graphs._common import ctx_of, report, run_graph
from vltools.graphs._video import (
    NOTHING,
    VideoEvidence,
    answer_spans,
    describe_items,
    event_about,
    grounded_event,
    retrieval_scores,
    search_query,
)
from vltools.schemas import ToolInput

NODES = 4
FRAME_WEIGHT = 0.0  # z-scored question-frame similarity beside the description match: lowered it on DEV
GROUND_WEIGHT = 0.0  # grounded-moment confidence in the re-ranking of the retrieved videos: not chosen on DEV yet


class VideoRagInput(ToolInput):
    question: str = Field(min_length=1, max_length=2000, description="The question to answer.")
    collection: str = Field(min_length=1, description="Video collection to answer from.")
    k: int = Field(3, ge=1, le=20, description="Videos retrieved.")
    mode: Literal["mean", "tempme", "ucofia", "glscl", "prompt_switch"] = Field(
        "mean", description="video.search scoring mode."
    )
    moments: int = Field(1, ge=1, le=5, description="Moments grounded per retrieved video.")
    labels: list[str] | None = Field(
        None, max_length=500, description="Names of things that may appear (the caller's vocabulary) for descriptions."
    )
    min_score: float = Field(-1.0, ge=-1, le=1, description="Retrieval score a video must reach to be used.")
    llm: str | None = Field(None, description="LLM spec that writes the answer (default: the best-matching event).")


class VideoHit(BaseModel):
    video: str = Field(description="Path of a retrieved video.")
    score: float = Field(description="Its retrieval score (description match + frame similarity + grounding).")
    moments: list[list[float]] = Field(description="Its grounded moments [[start, end], ...], best first.")


class VideoRagOutput(BaseModel):
    answer: str = Field(description="The answer, grounded in the cited spans.")
    answerable: bool = Field(description="False when no video was retrieved above min_score.")
    citations: list[VideoEvidence] = Field(description="Cited video/time spans with their described events.")
    videos: list[VideoHit] = Field(description="The videos retrieved and their moments.")
    answered_by: str = Field(description="'llm', 'grounded span' or 'none'.")


class _State(TypedDict, total=False):
    question: str
    params: dict[str, Any]
    videos: list[dict[str, Any]]
    events: list[dict[str, Any]]
    answer: str
    evidence: list[dict[str, Any]]
    answered_by: str


def _retrieve(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 0, NODES, "retrieve", p["mode"])
    coll = ctx.collection(p["collection"])
    n = min(coll.count, 1000)
    if not n:
        return {"videos": []}
    out = ctx.call("video.search", {"collection": p["collection"], "query": state["question"], "k": n,
                                    "mode": p["mode"], "pool": n})
    hits = [h for h in out.hits if h.score >= p["min_score"]]
    if not hits:
        return {"videos": []}
    if p["labels"]:  # the description index: every video described once, cached for later questions
        recs = {r["id"]: r for r in coll.get([h.id for h in hits])}
        items = [{"id": f"{h.id}#{recs.get(h.id, {}).get('hash', '')}", "video": h.path} for h in hits]
        described = describe_items(ctx, items, p["labels"], coll.model, p["collection"], note="describe videos")
    else:
        described = [{"id": h.id, "video": h.path, "events": [], "objects": {}} for h in hits]
    scores = retrieval_scores(state["question"], p["labels"], described, [h.score for h in hits], FRAME_WEIGHT)
    ranked = sorted(({**d, "score": sc, "similarity": h.score} for d, h, sc in zip(described, hits, scores,
                                                                                  strict=True)),
                    key=lambda v: -v["score"])
    return {"videos": [{**v, "moments": []} for v in ranked[: p["k"]]]}


def _ground(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    query = search_query(state["question"])
    videos = []
    for i, v in enumerate(state["videos"]):
        report(config, 1 + i / max(len(state["videos"]), 1), NODES, "ground", v["video"].rsplit("/", 1)[-1])
        out = ctx.call("video.ground", {"video": v["video"], "query": query, "k": p["moments"]})
        moments = [[m.start, m.end] for m in out.moments]
        ev = event_about(state["question"], p["labels"], v)
        if ev is not None:  # the described event about the named object, of the asked kind when there is one
            moments = [[ev["start"], ev["end"]], *moments][: p["moments"]]
        conf = out.moments[0].score if out.moments else 0.0
        videos.append({**v, "moments": moments, "rank": v["score"] + GROUND_WEIGHT * conf})
    videos.sort(key=lambda v: -v["rank"])
    return {"videos": videos}


def _describe(state: _State, config: RunnableConfig) -> dict[str, Any]:
    p = state["params"]
    report(config, 2, NODES, "describe", f"{len(state['videos'])} videos")
    query = search_query(state["question"])
    events = [{"video": v["video"], "start": s, "end": e,
               "text": grounded_event(state["question"], p["labels"], v, s, e, query)}
              for v in state["videos"] for s, e in v["moments"]]
    return {"events": events}


def _answer(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 3, NODES, "answer", "answering")
    evidence = state["events"][: max(3, p["moments"])]
    if not evidence:
        return {"answer": NOTHING, "evidence": [], "answered_by": "none"}
    answer, how = answer_spans(ctx, state["question"], evidence, p["llm"])
    report(config, 4, NODES, "answer", "done")
    return {"answer": answer, "evidence": evidence, "answered_by": how}


def _refuse(state: _State, config: RunnableConfig) -> dict[str, Any]:
    report(config, 4, NODES, "refuse", "nothing relevant")
    return {"answer": NOTHING, "evidence": [], "answered_by": "none"}


@functools.cache
def build_graph() -> Any:
    """The compiled video RAG graph (input state: question, params)."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_State)
    for name, fn in (("retrieve", _retrieve), ("ground", _ground), ("describe", _describe), ("answer", _answer),
                     ("refuse", _refuse)):
        g.add_node(name, fn)
    g.add_edge(START, "retrieve")
    g.add_conditional_edges("retrieve", lambda s: "ground" if s.get("videos") else "refuse",
                            {"ground": "ground", "refuse": "refuse"})
    g.add_edge("ground", "describe")
    g.add_edge("describe", "answer")
    g.add_edge("answer", END)
    g.add_edge("refuse", END)
    return g.compile()


@tool("graph.video_rag")
def video_rag(inp: VideoRagInput, ctx: Context) -> VideoRagOutput:
    """Answer a question from a video collection - retrieve videos, ground their relevant moments, describe them and
    answer citing video/time spans (VideoRAG).
    """
    ctx.collection(inp.collection).require_kind("video", "graph.video_rag")  # NotFound / wrong kind early
    params = inp.model_dump(exclude={"question"})
    final = run_graph(build_graph(), {"question": inp.question.strip(), "params": params}, ctx)
    ev = final.get("evidence", [])
    return VideoRagOutput(
        answer=final.get("answer", NOTHING), answerable=final.get("answered_by", "none") != "none",
        citations=[VideoEvidence(video=e["video"], start=e["start"], end=e["end"], text=e["text"],
                                 score=round(float(e.get("score", 0.0)), 4)) for e in ev],
        videos=[VideoHit(video=v["video"], score=round(v["rank"], 4), moments=v["moments"])
                for v in final.get("videos", [])],
        answered_by=final.get("answered_by", "none"),
    )
