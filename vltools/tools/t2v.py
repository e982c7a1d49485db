"""Text-to-video alignment by fine-grained question generation and answering (P35, ETVA).

`t2v.questions` parses a prompt into a scene graph (entities with shape, colour, size, count and
position; spatial relations; motion and events) — with an LLM when one is given, checked against the
prompt, and otherwise (or when the LLM's graph is unusable, as with a 135M model) with a
deterministic parser — and turns each node, relation and event into an atomic yes/no question.
`t2v.etva` answers every question on the video's sampled frames with `vqa.zero_shot` (temporal
questions across the frames in order; through the registry) and scores the video by the fraction of
"yes" answers. Needs a CLIP backend; the LLM is optional.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.schemas import SceneGraph, ToolInput
from vltools.tools import _vl_language as lang


class Question(BaseModel):
    id: str = Field(description="Question id (q1, q2, ...).")
    question: str = Field(description="An atomic yes/no question about the video.")
    kind: Literal["entity", "attribute", "count", "relation", "event"] = Field(description="What it checks.")
    entity: str | None = Field(None, description="Id of the scene-graph entity it is about.")
    depends_on: list[str] = Field(default_factory=list, description="Questions that must be 'yes' for it to apply.")
    temporal: bool = Field(False, description="True when it asks about change over time (answered across frames).")


class QuestionsInput(ToolInput):
    prompt: str = Field(min_length=1, max_length=2000, description="The text-to-video prompt (or caption) to check.")
    llm: str | None = Field(
        None, description="LLM spec for the scene-graph parse (optional; the rule parser is the fallback)."
    )


class QuestionsOutput(BaseModel):
    graph: SceneGraph = Field(description="Scene graph: entities with attributes, relations, events.")
    questions: list[Question] = Field(description="Atomic yes/no questions, in dependency order.")
    parser: Literal["llm", "rules"] = Field(description="Which parser produced the graph.")
    notice: str | None = Field(None, description="Why the LLM's graph was not used, if it was not.")


_LLM_SYSTEM = (
    "Convert the video description into a JSON scene graph. Reply with JSON only, in this form:\n"
    '{"entities": [{"id": "e1", "shape": "circle", "colour": "red", "size": "small", "count": 1, '
    '"position": "left"}], "relations": [{"subject": "e1", "predicate": "above", "object": "e2"}], '
    '"events": [{"subject": "e1", "type": "move", "direction": "left"}]}\n'
    "Event types: move (with direction left/right/up/down), appear, disappear, turn (with colour), grow, shrink. "
    "Omit unknown fields."
)


def _graph_from_llm(prompt: str, spec: str, ctx: Context) -> tuple[dict[str, Any] | None, str | None]:
    """The LLM's scene graph, canonicalised and checked against the prompt, or (None, why not)."""
    llm = ctx.llm(spec)
    reply = llm.generate(
        [{"role": "system", "content": _LLM_SYSTEM}, {"role": "user", "content": prompt}], max_tokens=192
    )
    m = re.search(r"\{.*\}", reply, flags=re.S)
    if not m:
        return None, f"{spec} did not reply with JSON"
    try:
        raw = json.loads(m.group(0))
    except json.JSONDecodeError:
        return None, f"{spec} replied with invalid JSON"
    if not isinstance(raw, dict) or not isinstance(raw.get("entities"), list) or not raw["entities"]:
        return None, f"{spec}'s graph has no entities"
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    ents, ids = [], set()
    for i, e in enumerate(raw["entities"]):
        if not isinstance(e, dict):
            return None, f"{spec}'s graph has a malformed entity"
        obj = lang.parse_object(" ".join(str(e.get(k, "")) for k in ("size", "colour", "color", "shape")))
        shape = str(e.get("shape") or "").strip().lower()
        if shape and obj.shape is None and shape not in lang.GENERIC_NOUNS:
            return None, f"{spec}'s graph names an unknown shape {shape!r}"
        if e.get("count") is not None:
            obj.count = e["count"] if isinstance(e["count"], int) and 0 <= e["count"] <= 10 else None
        pos = str(e.get("position") or "").lower()
        obj.position = lang.POSITION_WORDS.get(pos) if pos else None
        # Every attribute value must be grounded in the prompt's words (no hallucinated objects).
        for value in (obj.shape, obj.colour, obj.size):
            if value and value not in words and value + "s" not in words and value + "es" not in words:
                return None, f"{spec}'s graph mentions {value!r}, which the prompt does not"
        if obj.shape is None and obj.colour is None:
            return None, f"{spec}'s graph has an entity with neither shape nor colour"
        eid = str(e.get("id") or f"e{i + 1}")
        ids.add(eid)
        ents.append({"id": eid, **obj.to_dict()})
    rels = [r for r in raw.get("relations") or [] if isinstance(r, dict) and r.get("subject") in ids
            and r.get("object") in ids and lang.RELATIONS.get(str(r.get("predicate", "")).lower())]
    for r in rels:
        r["predicate"] = lang.RELATIONS[str(r["predicate"]).lower()]
    events = []
    for ev in raw.get("events") or []:
        if not isinstance(ev, dict) or ev.get("subject") not in ids:
            continue
        t = str(ev.get("type", "")).lower()
        if t == "move" and lang.DIRECTIONS.get(str(ev.get("direction", "")).lower()):
            events.append({"subject": ev["subject"], "type": "move",
                           "direction": lang.DIRECTIONS[str(ev["direction"]).lower()]})
        elif t == "turn" and lang.parse_object(str(ev.get("colour", ev.get("color", "")))).colour:
            events.append({"subject": ev["subject"], "type": "turn",
                           "colour": lang.parse_object(str(ev.get("colour", ev.get("color")))).colour})
        elif t in ("appear", "disappear", "grow", "shrink"):
            events.append({"subject": ev["subject"], "type": t})
    return {"entities": ents, "relations": rels, "events": events}, None


@tool("t2v.questions")
def questions(inp: QuestionsInput, ctx: Context) -> QuestionsOutput:
    """Parse a text-to-video prompt into a scene graph and atomic yes/no questions (ETVA question generation)."""
    graph, notice, parser = None, None, "rules"
    if inp.llm:
        graph, notice = _graph_from_llm(inp.prompt, inp.llm, ctx)
        if graph is not None:
            parser = "llm"
        else:
            notice = f"{notice}; used the rule-based parser"
    if graph is None:
        graph = lang.parse_scene_graph(inp.prompt)
    qs = lang.questions_from_graph(graph)
    if not qs and notice is None:
        notice = "no shapes, colours or events recognised in the prompt; no questions generated"
    return QuestionsOutput(
        graph=SceneGraph.model_validate(graph), questions=[Question(**q) for q in qs], parser=parser, notice=notice
    )


# -- t2v.etva ------------------------------------------------------------------------------------
class EtvaInput(ToolInput):
    renamed = {"model": "clip"}

    video: str = Field(min_length=1, description="Path of the generated (or any) video.")
    prompt: str = Field(min_length=1, max_length=2000, description="The text prompt the video should show.")
    llm: str | None = Field(None, description="LLM spec for the scene-graph parse (optional).")
    clip: str | None = Field(None, description="CLIP spec used to answer the questions (default: settings.clip).")
    frames: int = Field(8, ge=2, le=64, description="Frames sampled uniformly to answer on.")


class AnsweredQuestion(Question):
    answer: Literal["yes", "no"] = Field(description="The answer on the video.")
    score: float = Field(description="Probability of 'yes' (0 when a question it depends on was answered 'no').")
    evidence_frames: list[int] = Field(default_factory=list, description="Indices of the frames that decided it.")
    evidence_times: list[float] = Field(default_factory=list, description="Times (s) of those frames.")
    skipped_because: str | None = Field(None, description="Id of the 'no' question that made this one 'no'.")


class EtvaOutput(BaseModel):
    score: float = Field(description="ETVA score: the fraction of questions answered 'yes' (0..1).")
    soft_score: float = Field(description="Mean probability of 'yes' over the questions (a tie-breaker).")
    questions: list[AnsweredQuestion] = Field(description="Questions with answers and evidence.")
    graph: SceneGraph = Field(description="The prompt's scene graph.")
    parser: Literal["llm", "rules"] = Field(description="Which parser produced the graph.")
    frame_times: list[float] = Field(default_factory=list, description="Times (s) of the sampled frames.")
    notice: str | None = Field(None, description="Parser fallbacks and sampling notices.")


@tool("t2v.etva")
def etva(inp: EtvaInput, ctx: Context) -> EtvaOutput:
    """Score text-to-video alignment - atomic questions from the prompt answered on the video's frames (ETVA).

    Questions come from the prompt's scene graph (t2v.questions); each is answered on sampled frames by
    vqa.zero_shot; score = fraction answered yes.
    """
    from vltools.models.video import probe_video

    probe_video(inp.video, ctx.settings)  # fail on a bad file before any model loads
    gen = ctx.call("t2v.questions", {"prompt": inp.prompt, "llm": inp.llm})
    notices = [gen.notice] if gen.notice else []
    answered: dict[str, AnsweredQuestion] = {}
    frame_times: list[float] = []
    total = len(gen.questions)
    for i, q in enumerate(gen.questions):
        ctx.progress(i, total, q.question)
        failed = next((d for d in q.depends_on if d in answered and answered[d].answer == "no"), None)
        if failed:
            answered[q.id] = AnsweredQuestion(**q.model_dump(), answer="no", score=0.0, skipped_because=failed)
            continue
        res = ctx.call("vqa.zero_shot", {"video": inp.video, "question": q.question, "clip": inp.clip,
                                         "frames": inp.frames})
        p_yes = next((c.score for c in res.candidates if c.answer == "yes"), 0.0)
        if res.notice and res.notice not in notices:
            notices.append(res.notice)
        times = [f.time for f in res.frames]
        frame_times = frame_times or times
        answered[q.id] = AnsweredQuestion(
            **q.model_dump(), answer="yes" if res.answer == "yes" else "no", score=round(float(p_yes), 6),
            evidence_frames=res.evidence_frames,
            evidence_times=[times[j] for j in res.evidence_frames if j < len(times)],
        )
    ctx.progress(total, total, "answered")
    rows = list(answered.values())
    score = sum(r.answer == "yes" for r in rows) / len(rows) if rows else 0.0
    soft = sum(r.score for r in rows) / len(rows) if rows else 0.0
    return EtvaOutput(score=round(score, 6), soft_score=round(soft, 6), questions=rows, graph=gen.graph,
                      parser=gen.parser, frame_times=frame_times, notice="; ".join(notices) or None)


# -- t2v.score / t2v.stream (T2VScore P55, STREAM P56): implemented in _t2v_quality -----------------
from vltools.tools import _t2v_quality  # noqa: E402

score = _t2v_quality.score
stream = _t2v_quality.stream
