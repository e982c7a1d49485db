"""What the video graphs share: describing retrieved spans with `video.describe` and answering from the
described events (the best-matching event sentence by MiniLM cosine through `evidence.select`, or an
LLM through `llm.generate` when one is given). Everything goes through ``ctx.call``."""

from __future__ import annotations

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


def describe_spans(ctx: Context, spans: list[dict[str, Any]], labels: list[str] | None, clip: str | None
                   ) -> list[dict[str, Any]]:
    """Events ({video, start, end, text}) of each span {video, start, end}, via video.describe."""
    out: list[dict[str, Any]] = []
    for sp in spans:
        res = ctx.call("video.describe", {"video": sp["video"], "start": sp["start"], "end": sp["end"],
                                          "labels": labels, "clip": clip})
        events = [{"video": sp["video"], "start": e.start, "end": e.end, "text": e.text} for e in res.events]
        if not events:  # nothing changes: the span itself, described by what is visible
            scene = ", ".join(res.scene) if res.scene else "no visible change"
            events = [{"video": sp["video"], "start": sp["start"], "end": sp["end"],
                       "text": f"the video shows {scene}"}]
        out += events
    return out


def answer_from(ctx: Context, question: str, events: list[dict[str, Any]], llm: str | None, top: int,
                max_tokens: int = 160) -> tuple[str, list[dict[str, Any]], str]:
    """(answer, evidence events best first with their relevance, how it was answered)."""
    if not events:
        return NOTHING, [], "none"
    passages = [{"id": str(i), "text": e["text"]} for i, e in enumerate(events)]
    sel = ctx.call("evidence.select", {"claim": question, "passages": passages, "split": False,
                                       "k": min(len(passages), 100)})
    ranked = [dict(events[int(s.doc_id)], score=float(s.score)) for s in sel.sentences][:top]
    if llm:
        lines = "\n".join(f"[{e['video'].rsplit('/', 1)[-1]} {e['start']:.1f}-{e['end']:.1f} s] {e['text']}"
                          for e in ranked)
        messages = [
            {"role": "system", "content": "Answer the question from the video events only, briefly, citing the "
             "[video start-end] spans you use. If the events do not contain the answer, say you cannot answer."},
            {"role": "user", "content": f"Events:\n{lines}\n\nQuestion: {question}\nAnswer:"},
        ]
        out = ctx.call("llm.generate", {"messages": messages, "llm": llm, "max_tokens": max_tokens})
        return out.text.strip(), ranked, "llm"
    best = ranked[0]
    return f"{best['text'][:1].upper()}{best['text'][1:]} ({best['start']:.1f}-{best['end']:.1f} s).", ranked, \
        "best-matching event"
