"""What the video graphs share: a description index (every clip or video described once by `video.describe`,
cached), question-description scoring, the described event a grounded span shows, and the answer from
grounded spans (or an LLM through `llm.generate` when one is given). Tools are called through ``ctx.call``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from vltools.core.context import Context

NOTHING = "I cannot answer this from the video: nothing relevant was found."


class Evidence(BaseModel):
    start: float = Field(description="Start of the evidence span, seconds.")
    end: float = Field(description="End of the evidence span, seconds.")
    text: str = Field(description="What happens in the span (a described event).")


class VideoEvidence(Evidence):
    video: str = Field(description="Path of the video the span is in.")
    score: float = Field(0.0, description="Relevance of the span to the question (MiniLM cosine).")


# -- description index and retrieval (Goldfish / VideoRAG) ----------------------------------------
_KINDS = {
    "appear": ("appear", "enter", "arrive", "come in", "show up"),
    "disappear": ("disappear", "leave", "vanish", "exit", "go away"),
    "move": ("move", "pass", "go", "travel", "cross", "approach", "slide", "fly", "run", "walk"),
    "change": ("turn", "change", "become", "colour", "color", "approach", "grow"),
}


_LEAD = re.compile(r"^\s*((when|where|what|which|who|how|why|does|do|did|is|are|was|were|can|could|in|at|the|"
                   r"video|moment|time|you|see|show|shows)\b[\s,]*)+", re.I)


def search_query(question: str) -> str:
    """The question without its leading question words and final '?' (what the clips should show)."""
    q = _LEAD.sub("", question.strip()).rstrip(" ?")
    return q or question


def question_objects(question: str, labels: list[str] | None) -> list[str]:
    """Labels named in the question (whole words, longest first; a label inside a longer named one is dropped)."""
    q = f" {re.sub(r'[^a-z0-9]+', ' ', question.lower())} "
    found = [lab for lab in sorted(set(labels or []), key=len, reverse=True)
             if f" {re.sub(r'[^a-z0-9]+', ' ', lab.lower()).strip()} " in q]
    return [lab for lab in found if not any(lab != o and f" {lab.lower()} " in f" {o.lower()} " for o in found)]


def question_kinds(question: str) -> set[str]:
    """Event kinds (appear/disappear/move/change) the question's verbs ask about."""
    words = re.sub(r"[^a-z ]+", " ", question.lower())
    return {k for k, verbs in _KINDS.items() if any(re.search(rf"\b{v}", words) for v in verbs)}


def describe_items(ctx: Context, items: list[dict[str, Any]], labels: list[str] | None, clip: str | None,
                   cache_name: str, *, fps: float = 2.0, note: str = "describe") -> list[dict[str, Any]]:
    """Each item {id, video, start?, end?} described once by ``video.describe`` (events + objects seen), cached.

    The descriptions are the index Goldfish and VideoRAG retrieve from: written to
    ``cache_dir/video_descriptions/CACHE_NAME-KEY.json`` (KEY: labels, CLIP, fps) and reused by later
    questions; one clip is decoded at a time, so memory stays bounded however long the video.
    """
    import hashlib
    import json
    import os

    key = hashlib.sha256(json.dumps([sorted(labels or []), clip, fps]).encode()).hexdigest()[:16]
    folder = ctx.settings.cache_dir / "video_descriptions"
    path = folder / f"{cache_name}-{key}.json"
    try:
        cache: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):  # a damaged cache is rebuilt
        cache = {}
    out, new = [], 0
    for n, it in enumerate(items):
        if it["id"] not in cache:
            ctx.progress(n, len(items), f"{note}: {it['id'].rsplit('/', 1)[-1]}")
            args: dict[str, Any] = {"video": it["video"], "labels": labels, "clip": clip, "fps": fps, "objects": 10}
            if it.get("start") is not None:
                args.update(start=it["start"], end=it["end"])
            res = ctx.call("video.describe", args)
            cache[it["id"]] = {
                "events": [{"start": e.start, "end": e.end, "kind": e.kind, "subject": e.subject,
                            "direction": e.direction, "text": e.text} for e in res.events],
                "objects": {o.label: o.score for o in res.objects},
                "seen": {o.label: [o.start, o.end] for o in res.objects}, "scene": res.scene,
                "description": res.description,
            }
            new += 1
        out.append({**it, **cache[it["id"]]})
    if new:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, path)
    return out


def description_score(question: str, labels: list[str] | None, item: dict[str, Any]) -> float | None:
    """How well a described clip matches the question: the highest probability of an object the question names
    in the clip's key frames (CLIP classification of grid cells), plus a small tie-break when one of the clip's
    events is about that object and of the asked kind. None when the question names none of the labels.

    On DEV questions the event terms only break ties: the events' subjects are named less reliably than the
    objects seen (a full bonus for them lowered the right-clip-first rate from 0.61 to 0.54).
    """
    objs = question_objects(question, labels)
    if not objs:
        return None
    kinds = question_kinds(question)
    seen = max(float(item["objects"].get(o, 0.0)) for o in objs)
    about = [e for e in item["events"] if e["subject"] in objs]
    return seen + 0.05 * bool(about) + 0.05 * any(e["kind"] in kinds for e in about)


def retrieval_scores(question: str, labels: list[str] | None, items: list[dict[str, Any]],
                     frame_scores: list[float], frame_weight: float) -> list[float]:
    """Score per described item: the description match plus ``frame_weight`` x the z-scored question-frame
    similarity, or the frame similarity alone when the question names no label (nothing to match)."""
    z = zscores(frame_scores)
    desc = [description_score(question, labels, it) for it in items]
    if any(d is None for d in desc):
        return z
    return [float(d) + frame_weight * zi for d, zi in zip(desc, z, strict=True)]  # type: ignore[arg-type]


def zscores(values: list[float]) -> list[float]:
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    return ((v - v.mean()) / max(float(v.std()), 1e-6)).tolist() if len(v) else []


def grounded_event(question: str, labels: list[str] | None, item: dict[str, Any], start: float, end: float,
                   query: str) -> str:
    """The sentence for a grounded span: the clip's described event about a named object that overlaps it most,
    else the question's content (what was searched for)."""
    objs = question_objects(question, labels)
    best, overlap = None, 0.0
    for e in item["events"]:
        ov = min(e["end"], end) - max(e["start"], start)
        if (not objs or e["subject"] in objs) and ov > overlap:
            best, overlap = e, ov
    return best["text"] if best else query


def answer_spans(ctx: Context, question: str, evidence: list[dict[str, Any]], llm: str | None,
                 max_tokens: int = 160) -> tuple[str, str]:
    """(answer, how) from grounded spans best first: the top span and what happens in it, or an LLM's answer
    from all of them (it is asked to cite the spans it uses)."""
    if llm:
        lines = "\n".join(f"[{e['video'].rsplit('/', 1)[-1]} {e['start']:.1f}-{e['end']:.1f} s] {e['text']}"
                          for e in evidence)
        messages = [
            {"role": "system", "content": "Answer the question from the video spans only, briefly, citing the "
             "[video start-end] spans you use. If the spans do not contain the answer, say you cannot answer."},
            {"role": "user", "content": f"Spans:\n{lines}\n\nQuestion: {question}\nAnswer:"},
        ]
        out = ctx.call("llm.generate", {"messages": messages, "llm": llm, "max_tokens": max_tokens})
        return out.text.strip(), "llm"
    best = evidence[0]
    return (f"From {best['start']:.1f} s to {best['end']:.1f} s: {best['text']}.", "grounded span")


def event_about(question: str, labels: list[str] | None, item: dict[str, Any],
                window: tuple[float, float] | None = None) -> dict[str, Any] | None:
    """The clip's described event about an object the question names (of the asked kind first; inside
    ``window`` when given), or None."""
    objs = question_objects(question, labels)
    about = [e for e in item["events"] if e["subject"] in objs
             and (window is None or (e["end"] > window[0] and e["start"] < window[1]))]
    kinds = question_kinds(question)
    about.sort(key=lambda e: e["kind"] not in kinds)
    return about[0] if about else None


def object_window(question: str, labels: list[str] | None, item: dict[str, Any], pad: float = 0.75
                  ) -> tuple[float, float] | None:
    """The stretch of a described clip where the object the question names is seen (padded), or None.

    Clips of a long video hold several shots; grounding inside the named object's stretch keeps the
    moment in the right shot."""
    objs = [o for o in question_objects(question, labels) if o in item.get("seen", {})]
    if not objs:
        return None
    best = max(objs, key=lambda o: item["objects"].get(o, 0.0))
    s, e = item["seen"][best]
    lo = max(float(item.get("start", 0.0)), s - pad)
    hi = e + pad if item.get("end") is None else min(float(item["end"]), e + pad)
    return (lo, hi) if hi - lo >= 0.5 else None
