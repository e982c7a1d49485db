"""Text-to-video alignment by fine-grained question generation and answering (P35, ETVA), open vocabulary.

`t2v.questions` parses a prompt into a scene graph — entities (noun phrases with attributes, counts
and positions), relations, and actions with their direction, object and order — by spaCy
(`vltools.tools._vl_language`), or by an LLM when one is given (its graph is checked against the
prompt's words and dropped if it invents any), and turns each node, edge and event into an atomic
yes/no question with its dependencies (an attribute question depends on its entity's existence;
"before" questions on both events). `t2v.etva` answers them on the video's sampled frames with
`vqa.zero_shot` (events across frames in order; an order question from the two events' time profiles,
P(A before B), even when an event is only weakly seen — it is skipped only when its entity is absent), or
with a vision chat model (``vlm``, ETVA's multi-stage answering; ``llm`` then adds ETVA's
auxiliary-knowledge step), and scores the video by the fraction of "yes" answers — or ``null``
with a reason when the prompt yields no answerable question.
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
    kind: Literal["entity", "attribute", "count", "relation", "event", "order"] = Field(description="What it checks.")
    entity: str | None = Field(None, description="Id of the scene-graph entity it is about.")
    depends_on: list[str] = Field(default_factory=list, description="Questions that must be 'yes' for it to apply.")
    temporal: bool = Field(False, description="True when it asks about change over time (answered across frames).")


class QuestionsInput(ToolInput):
    prompt: str = Field(min_length=1, max_length=2000, description="The text-to-video prompt (or caption) to check.")
    llm: str | None = Field(
        None, description="LLM spec for the scene-graph parse (optional; the spaCy parse is the fallback)."
    )


class QuestionsOutput(BaseModel):
    graph: SceneGraph = Field(description="Scene graph: entities with attributes, relations, events.")
    questions: list[Question] = Field(description="Atomic yes/no questions, in dependency order.")
    parser: Literal["llm", "rules"] = Field(description="Which parser produced the graph ('rules': spaCy).")
    notice: str | None = Field(None, description="Why the LLM's graph was not used, or why there are no questions.")


_LLM_SYSTEM = (
    "Convert the video description into a JSON scene graph. Reply with JSON only, in this form:\n"
    '{"entities": [{"id": "e1", "noun": "dog", "attributes": ["brown"], "count": 1, "position": "left"}], '
    '"relations": [{"subject": "e1", "predicate": "on", "object": "e2"}], '
    '"events": [{"subject": "e1", "verb": "run", "type": "move", "direction": "left"}]}\n'
    "Event types: move (with direction left/right/up/down), appear, disappear, turn (with value, the new "
    "colour), grow, shrink, action (any other verb). Omit unknown fields. Use only words of the description."
)
_EVENT_TYPES = {"move", "appear", "disappear", "turn", "grow", "shrink", "action"}


def _graph_from_llm(prompt: str, spec: str, ctx: Context) -> tuple[dict[str, Any] | None, str | None]:
    """The LLM's scene graph, checked against the prompt's words, or (None, why not)."""
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
    words = set(re.findall(r"[a-z0-9'-]+", prompt.lower()))

    def grounded(text: str) -> bool:
        return all(w in words or w + "s" in words or w + "es" in words or (w.endswith("y") and w[:-1] + "ies" in
                   words) for w in re.findall(r"[a-z0-9'-]+", text.lower()))

    ents, ids = [], set()
    for i, e in enumerate(raw["entities"]):
        if not isinstance(e, dict):
            return None, f"{spec}'s graph has a malformed entity"
        noun = str(e.get("noun") or e.get("shape") or "").strip().lower()
        attrs = [str(a).strip().lower() for a in (e.get("attributes") or []) if str(a).strip()]
        attrs += [str(e[k]).strip().lower() for k in ("colour", "color", "size") if e.get(k)]
        if not noun:
            return None, f"{spec}'s graph has an entity without a noun"
        for value in (noun, *attrs):
            if not grounded(value):
                return None, f"{spec}'s graph mentions {value!r}, which the prompt does not"
        count = e.get("count") if isinstance(e.get("count"), int) and 0 <= e["count"] <= 10 else None
        pos = lang.POSITION_WORDS.get(str(e.get("position") or "").lower())
        eid = str(e.get("id") or f"e{i + 1}")
        ids.add(eid)
        ents.append({"id": eid, "noun": noun, "attributes": list(dict.fromkeys(attrs)), "count": count,
                     "position": pos})
    rels = []
    for r in raw.get("relations") or []:
        if isinstance(r, dict) and r.get("subject") in ids and r.get("object") in ids:
            pred = str(r.get("predicate", "")).lower().strip()
            pred = lang.RELATIONS.get(pred, pred)
            if pred and grounded(pred.replace("left of", "left").replace("right of", "right")):
                rels.append({"subject": r["subject"], "predicate": pred, "object": r["object"]})
    events = []
    for k, ev in enumerate(raw.get("events") or []):
        if not isinstance(ev, dict) or ev.get("subject") not in ids:
            continue
        t = str(ev.get("type", "action")).lower()
        verb = str(ev.get("verb") or t).lower()
        d = lang.DIRECTIONS.get(str(ev.get("direction") or "").lower())
        value = str(ev.get("value") or ev.get("colour") or ev.get("color") or "").lower() or None
        if t not in _EVENT_TYPES or (value and not grounded(value)):
            continue
        if t == "turn" and not value:
            continue
        events.append({"subject": ev["subject"], "type": t, "verb": verb, "direction": d, "value": value,
                       "order": k})
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
        graph = lang.scene_graph(inp.prompt)
    qs = lang.questions_from_graph(graph)
    if not qs:
        why = "no object (noun phrase) found in the prompt; no questions generated"
        notice = f"{notice}; {why}" if notice else why
    return QuestionsOutput(
        graph=SceneGraph.model_validate(graph), questions=[Question(**q) for q in qs], parser=parser, notice=notice
    )


# -- t2v.etva ------------------------------------------------------------------------------------
class EtvaInput(ToolInput):
    renamed = {"model": "clip"}

    video: str = Field(min_length=1, description="Path of the generated (or any) video.")
    prompt: str = Field(min_length=1, max_length=2000, description="The text prompt the video should show.")
    llm: str | None = Field(None, description="LLM spec for the scene-graph parse and, with vlm, ETVA's "
                            "auxiliary-knowledge step (optional).")
    clip: str | None = Field(None, description="CLIP spec used to answer the questions (default: settings.clip).")
    vlm: str | None = Field(None, description="openai:ENDPOINT#MODEL of a video-capable vision chat server that "
                            "answers the questions from the sampled frames instead of CLIP (optional).")
    frames: int = Field(8, ge=2, le=64, description="Frames sampled uniformly to answer on.")


class AnsweredQuestion(Question):
    answer: Literal["yes", "no"] = Field(description="The answer on the video.")
    score: float = Field(description="Probability of 'yes' (0 when a question it depends on was answered 'no').")
    evidence_frames: list[int] = Field(default_factory=list, description="Indices of the frames that decided it.")
    evidence_times: list[float] = Field(default_factory=list, description="Times (s) of those frames.")
    event_time: float | None = Field(None, description="For events: when the event is seen (s).")
    event_profile: list[float] = Field(default_factory=list, description="For events: per sampled frame, the "
                                       "probability that the event happens since the previous frame.")
    skipped_because: str | None = Field(None, description="Id of the 'no' question that made this one 'no'.")


class EtvaOutput(BaseModel):
    score: float | None = Field(description="ETVA score: the fraction of questions answered 'yes' (0..1); null "
                                "when the prompt yields no answerable question (see reason).")
    soft_score: float | None = Field(description="Mean probability of 'yes' over the questions (a tie-breaker).")
    reason: str | None = Field(None, description="Why score is null.")
    questions: list[AnsweredQuestion] = Field(description="Questions with answers and evidence.")
    graph: SceneGraph = Field(description="The prompt's scene graph.")
    parser: Literal["llm", "rules"] = Field(description="Which parser produced the graph.")
    frame_times: list[float] = Field(default_factory=list, description="Times (s) of the sampled frames.")
    knowledge: str | None = Field(None, description="The auxiliary knowledge the LLM gave the vision model.")
    notice: str | None = Field(None, description="Parser fallbacks and sampling notices.")


def _knowledge(ctx: Context, spec: str, prompt: str) -> str:
    """ETVA's auxiliary-knowledge step: what the prompt implies physically and visually, from an LLM."""
    llm = ctx.llm(spec)
    return llm.generate([
        {"role": "system", "content": "In two short sentences, state the common-sense physical and visual facts "
                                      "a viewer should check in a video of this description."},
        {"role": "user", "content": prompt}], max_tokens=96).strip()


def _blocks(dep: AnsweredQuestion, soft_order: bool) -> bool:
    """Whether a 'no' on ``dep`` makes a dependent question 'no' without asking it. An order question
    answered from soft timing (`_answer_order`) needs its events' entities, not a confident detection of
    each event: a weakly seen event still has a time profile. It is skipped only when an event question
    was itself skipped (its entity is absent)."""
    if dep.answer != "no":
        return False
    return not soft_order or dep.kind not in ("event", "order") or dep.skipped_because is not None


def _answer_order(q: Question, events: list[AnsweredQuestion], times: list[float]) -> AnsweredQuestion:
    """'Does A happen before B?' from the two events' time profiles: P(A before B) (`_vqa_engine.p_before`);
    'yes' above one half. Events without a profile fall back to their detected times."""
    from vltools.tools import _vqa_engine as eng

    a, b = events
    if len(a.event_profile) >= 2 and len(a.event_profile) == len(b.event_profile):
        p = eng.p_before(a.event_profile, b.event_profile)
        ta, tb = eng.expected_time(a.event_profile, times), eng.expected_time(b.event_profile, times)
    else:
        ta, tb = a.event_time, b.event_time
        p = (1.0 if ta < tb else 0.5 if ta == tb else 0.0) if ta is not None and tb is not None else 0.0
    return AnsweredQuestion(**q.model_dump(), answer="yes" if p > 0.5 else "no", score=round(p, 6),
                            evidence_times=[round(t, 3) for t in (ta, tb) if t is not None])


@tool("t2v.etva")
def etva(inp: EtvaInput, ctx: Context) -> EtvaOutput:
    """Score text-to-video alignment - atomic questions from the prompt answered on the video's frames (ETVA).

    Questions come from the prompt's scene graph (t2v.questions); each is answered on sampled frames by
    vqa.zero_shot (or a vision chat model); score = fraction answered yes, null when nothing is answerable.
    """
    from vltools.models.video import probe_video

    probe_video(inp.video, ctx.settings)  # fail on a bad file before any model loads
    gen = ctx.call("t2v.questions", {"prompt": inp.prompt, "llm": inp.llm})
    notices = [gen.notice] if gen.notice else []
    if not gen.questions:
        return EtvaOutput(score=None, soft_score=None, reason=gen.notice or "no answerable question",
                          questions=[], graph=gen.graph, parser=gen.parser, notice="; ".join(notices) or None)
    knowledge = _knowledge(ctx, inp.llm, inp.prompt) if inp.vlm and inp.llm else None
    answered: dict[str, AnsweredQuestion] = {}
    frame_times: list[float] = []
    total = len(gen.questions)
    for i, q in enumerate(gen.questions):
        ctx.progress(i, total, q.question)
        soft_order = q.kind == "order" and not inp.vlm
        failed = next((d for d in q.depends_on if d in answered and _blocks(answered[d], soft_order)), None)
        if failed:
            answered[q.id] = AnsweredQuestion(**q.model_dump(), answer="no", score=0.0, skipped_because=failed)
            continue
        if soft_order:
            answered[q.id] = _answer_order(q, [answered[d] for d in q.depends_on], frame_times)
            continue
        args: dict[str, Any] = {"video": inp.video, "question": q.question, "clip": inp.clip, "frames": inp.frames}
        if inp.vlm:
            args["vlm"] = inp.vlm
            if knowledge:
                args["question"] = f"Context: {knowledge}\n{q.question}"
        res = ctx.call("vqa.zero_shot", args)
        p_yes = next((c.score for c in res.candidates if c.answer == "yes"), 0.0)
        if res.notice and res.notice not in notices:
            notices.append(res.notice)
        times = [f.time for f in res.frames]
        frame_times = frame_times or times
        answered[q.id] = AnsweredQuestion(
            **q.model_dump(), answer="yes" if res.answer == "yes" else "no", score=round(float(p_yes), 6),
            evidence_frames=res.evidence_frames,
            evidence_times=[times[j] for j in res.evidence_frames if j < len(times)],
            event_time=res.event_time, event_profile=res.event_profile,
        )
    ctx.progress(total, total, "answered")
    rows = list(answered.values())
    score = sum(r.answer == "yes" for r in rows) / len(rows)
    soft = sum(r.score for r in rows) / len(rows)
    return EtvaOutput(score=round(score, 6), soft_score=round(soft, 6), questions=rows, graph=gen.graph,
                      parser=gen.parser, frame_times=frame_times, knowledge=knowledge,
                      notice="; ".join(notices) or None)


# -- t2v.score / t2v.stream (T2VScore P55, STREAM P56): implemented in _t2v_quality -----------------
from vltools.tools import _t2v_quality  # noqa: E402

score = _t2v_quality.score
stream = _t2v_quality.stream
