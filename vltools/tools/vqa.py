"""Zero-shot visual question answering with CLIP (P01, MacCap's VQA extension); needs a CLIP backend.

The question is parsed into a type (colour, shape, count, position, size, yes/no, other); candidate
answers come from the caller (filtered to the question's type) or from the type's vocabulary and a
CLIP-retrieved caption; each candidate becomes a declarative statement ("there is a red circle")
scored against the image with subregion feature aggregation and noise-robust probabilities
(see `vltools.tools._vqa_engine`). Yes/no questions compare the asserted statement with its
alternatives (other colours, shapes, counts...). On videos the question is answered on sampled frames;
temporal questions ("does the red circle move to the left?", appear, disappear, turn blue) are
answered across the frames in order from where and whether the object is found in each. An LLM,
when given, reranks the candidates with the caption as context.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from vltools.core import Context, InvalidInput, tool
from vltools.schemas import ToolInput
from vltools.tools import _vl_language as lang
from vltools.tools import _vqa_engine as eng


class VqaInput(ToolInput):
    renamed = {"model": "clip"}

    image: str | None = Field(None, description="Path of the image to ask about (give image or video).")
    video: str | None = Field(None, description="Path of the video to ask about; answered on sampled frames.")
    question: str = Field(min_length=1, max_length=1000, description="The question, in English.")
    candidates: list[str] | None = Field(
        None, min_length=1, max_length=200,
        description="Answer vocabulary to choose from; those matching the question type are used. "
        "Default: proposed from the question type and the caption.",
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip, e.g. 'demo').")
    llm: str | None = Field(None, description="LLM spec to rerank candidates with the caption as context (optional).")
    llm_weight: float = Field(0.5, ge=0, le=5, description="Weight of the LLM's log-probabilities in the rerank.")
    frames: int = Field(8, ge=1, le=64, description="Frames sampled uniformly from a video.")
    times: list[float] | None = Field(
        None, min_length=1, max_length=64, description="Answer at these video times (seconds) instead of uniformly."
    )
    regions: bool = Field(True, description="Use MacCap subregion feature aggregation (False: whole image only).")
    noise: float = Field(0.3, ge=0, le=2, description="Norm of the Gaussian feature noise for robust scoring (0: off).")

    @model_validator(mode="after")
    def _one_source(self) -> VqaInput:
        if (self.image is None) == (self.video is None):
            raise ValueError("give exactly one of image and video")
        if self.candidates is not None:
            if any(not c.strip() or len(c) > 200 for c in self.candidates):
                raise ValueError("candidates must be non-empty strings of at most 200 characters")
        return self


class VqaCandidate(BaseModel):
    answer: str = Field(description="A candidate answer.")
    score: float = Field(description="Its probability (candidates sum to 1).")
    statement: str = Field("", description="The declarative statement CLIP scored for it.")


class VqaRegion(BaseModel):
    box: list[float] = Field(description="Region [x0, y0, x1, y1] as fractions of the width/height.")
    weight: float = Field(description="Weight of the region in the aggregated feature (whole image included).")


class VqaFrame(BaseModel):
    index: int = Field(description="Index of the sampled frame (0-based, in time order).")
    time: float = Field(description="Time of the frame in seconds.")
    answer: str = Field(description="Answer on this frame alone.")
    score: float = Field(description="Probability of that answer on this frame.")
    location: list[float] | None = Field(None, description="[x, y] centre of the regions that mattered (fractions).")


class VqaOutput(BaseModel):
    answer: str = Field(description="The chosen answer.")
    candidates: list[VqaCandidate] = Field(description="Candidates with probabilities, best first.")
    question_type: str = Field(description="colour, shape, count, position, size, yesno or other.")
    statement: str = Field("", description="The statement that decided the answer.")
    regions: list[VqaRegion] = Field(default_factory=list, description="Regions that mattered for that statement.")
    caption: str = Field("", description="CLIP-retrieved caption of the image (first frame for videos).")
    frames: list[VqaFrame] = Field(default_factory=list, description="Per-frame answers for videos, in time order.")
    evidence_frames: list[int] = Field(default_factory=list, description="Frames that support the answer most.")
    temporal: bool = Field(False, description="True when the question was answered across frames in order.")
    llm_used: str | None = Field(None, description="The LLM that reranked the candidates, if any.")
    notice: str | None = Field(None, description="Sampling bounds, clipping or fallbacks applied.")
    model: str = Field(description="The CLIP spec used.")


MAX_VARIANTS = 96  # statements per answer when unnamed attributes are filled in
_CAPTIONS: dict[tuple, np.ndarray] = {}  # (model, image key, regions, noise) -> best caption phrase indices


# -- visual input --------------------------------------------------------------------------------
def _visuals(inp: VqaInput, ctx: Context) -> tuple[list[Any], list[float], list[tuple], str | None]:
    if inp.image is not None:
        from vltools.models.media import check_path, load_image

        p = check_path(inp.image, ctx.settings)
        st = p.stat()
        return [load_image(inp.image, ctx.settings)], [0.0], [(str(p), st.st_mtime_ns, st.st_size)], None
    from vltools.models.video import sample_frames

    frames, times, notice = sample_frames(
        inp.video, ctx.settings, n=None if inp.times else inp.frames, timestamps=inp.times, max_frames=64
    )
    p = Path(inp.video).expanduser().resolve()
    st = p.stat()
    keys = [(str(p), st.st_mtime_ns, st.st_size, t) for t in times]
    return frames, times, keys, notice


# -- planning: which statements answer the question ----------------------------------------------
def _choice_plan(
    probe: lang.Probe, candidates: list[str] | None, caption_phrases: list[str]
) -> tuple[list[str], list[str], list[list[str]], str | None]:
    """(answers, statements, notice) for a question answered by choosing among candidates."""
    kind = probe.kind
    notice = None
    if candidates is None:
        answers = lang.default_candidates(probe) if kind != "other" else caption_phrases
    else:
        answers = [c.strip() for c in candidates]
        if kind in ("colour", "shape", "count", "position", "size"):
            matching = [a for a in answers if lang.candidate_kind(a) == kind or (kind == "count" and a.isdigit())]
            if matching:
                if len(matching) < len(answers):
                    notice = f"kept the {len(matching)} of {len(answers)} candidates that answer a {kind} question"
                answers = matching
            else:
                kind = "other"
    statements, groups = [], []
    for a in answers:
        if kind in ("colour", "shape", "count", "position", "size"):
            obj = lang.with_value(probe.target, kind, a)
            statements.append(lang.statement(obj))
            groups.append(_variants(obj, kind))
        else:
            obj = lang.parse_object(a)
            statements.append(lang.statement(obj) if obj.shape or obj.colour else f"{probe.text.rstrip('?')} {a}")
            groups.append([statements[-1]])
    return answers, statements, groups, notice


def _variants(obj: lang.Obj, fixed: str | None) -> list[str]:
    """Statements for ``obj`` with an unnamed shape and/or colour filled in every way (the answer's
    probability is then summed over them), unless that would exceed MAX_VARIANTS."""
    options = [obj]
    for attr, vocab in (("shape", lang.SHAPES), ("colour", lang.COLOURS)):
        if getattr(obj, attr) is None and attr != fixed and len(options) * len(vocab) <= MAX_VARIANTS:
            options = [lang.with_value(o, attr, v) for o in options for v in vocab]
    return [lang.statement(o) for o in options]


def _yesno_tests(probe: lang.Probe) -> list[tuple[str, list]]:
    """(mode, statement groups: asserted first, then alternatives) that must all hold for 'yes'.

    Modes: "presence" (the attribute may hold for one object among several), "exclusive" (one value
    only — counts, judged on the whole image; relations)."""
    tests: list[tuple[str, list]] = []
    for attr, value in probe.tests:
        mode = "exclusive" if attr == "count" else "presence"
        tests.append((mode, [_variants(o, attr) for o in lang.alternatives(probe.target, attr, value)]))
    if probe.relation and probe.other is not None:
        a, b = probe.target.phrase(), probe.other.phrase()
        rels = [probe.relation] + [r for r in ("above", "below", "left of", "right of") if r != probe.relation]
        tests.append(("exclusive", [f"{a} {r} {b}" for r in rels]))
    return tests


def _existence_tests(obj: lang.Obj) -> list[list[list[str]]]:
    base = lang.Obj(shape=obj.shape, colour=obj.colour)
    return [[_variants(o, a) for o in lang.alternatives(base, a, getattr(obj, a))]
            for a in ("shape", "colour") if getattr(obj, a)]


# -- the tool ------------------------------------------------------------------------------------
@tool("vqa.zero_shot")
def zero_shot(inp: VqaInput, ctx: Context) -> VqaOutput:
    """Answer a question about an image or video zero-shot - CLIP-scored declarative statements with subregion
    aggregation (MacCap).

    Returns the answer, candidate probabilities, the regions that mattered and, for videos, the
    per-frame answers. Temporal questions (move left/right/up/down, appear, disappear, turn COLOUR)
    are answered across frames in order.
    """
    probe = lang.parse_question(inp.question)
    if probe.event and inp.video is None:
        raise InvalidInput(
            f"the question asks about change over time ({probe.event}); that needs a video",
            hint="pass video instead of image, or ask about what the image shows",
        )
    images, times, keys, notice = _visuals(inp, ctx)  # bad files fail before a model loads
    clip = ctx.clip(inp.clip)
    notices = [notice] if notice else []
    feats = []
    for i, (img, key) in enumerate(zip(images, keys, strict=True)):
        feats.append(eng.region_features(clip, img, key))
        ctx.progress(i + 1, len(images), "frames encoded")

    def score(f: np.ndarray, items: list[str] | list[list[str]]) -> eng.Scored:
        """Probabilities of statements, or of groups of statements (summed within a group)."""
        groups = [[x] if isinstance(x, str) else x for x in items]
        flat = [t for g in groups for t in g]
        scored = eng.score_statements(f, eng.text_features(clip, flat), logit_scale=clip.logit_scale,
                                      use_regions=inp.regions, noise=inp.noise)
        return scored if len(flat) == len(groups) else eng.group(scored, [len(g) for g in groups])

    phrases = [lang.Obj(shape=s, colour=c).phrase() for c in lang.COLOURS for s in lang.SHAPES]
    cap_key = (clip.spec, keys[0], inp.regions, inp.noise)
    top = _CAPTIONS.get(cap_key)
    if top is None:
        top = np.argsort(-score(feats[0], [lang.statement(lang.parse_object(p)) for p in phrases]).probs)[:8]
        _CAPTIONS[cap_key] = top
        if len(_CAPTIONS) > 4096:
            _CAPTIONS.pop(next(iter(_CAPTIONS)))
    caption = phrases[top[0]]
    is_video = inp.video is not None
    out: dict[str, Any] = {"question_type": probe.kind, "caption": caption, "model": clip.spec, "temporal": False}

    yesno_tests = _yesno_tests(probe) if probe.kind == "yesno" and not probe.event else []
    yes_no_asked = inp.candidates is None or {"yes", "no"} <= {c.strip().lower() for c in inp.candidates}
    if probe.kind == "yesno" and (probe.event or yesno_tests) and yes_no_asked:
        if probe.event:
            p_yes, per_frame, evidence, stmt, regions = _temporal(probe, feats, times, score)
            out["temporal"] = True
        else:
            p_yes, per_frame, evidence, stmt, regions = _static_yesno(yesno_tests, feats, score)
            stmt = stmt or lang.statement(probe.target)
        p_yes = min(p_yes, 0.5 - 1e-9) if abs(p_yes - 0.5) < 1e-9 else p_yes  # a tie is not evidence: "no"
        if probe.negated:
            p_yes = 1.0 - p_yes
            per_frame = [(1.0 - p, loc) for p, loc in per_frame]
        answers, probs = ["yes", "no"], np.array([p_yes, 1.0 - p_yes])
        statements = [stmt, "not: " + stmt]
        frame_rows = [
            {"index": i, "time": times[i], "answer": "yes" if p >= 0.5 else "no", "score": max(p, 1 - p),
             "location": list(loc) if loc else None}
            for i, (p, loc) in enumerate(per_frame)
        ]
    else:
        if probe.kind == "yesno":
            probe = lang.Probe("other", text=probe.text)
        answers, statements, groups, note = _choice_plan(probe, inp.candidates, [phrases[j] for j in top[:8]])
        if note:
            notices.append(note)
        scored = [score(f, groups) for f in feats]
        probs = np.mean([s.probs for s in scored], axis=0)
        best = int(np.argmax(probs))
        evidence = list(np.argsort(-np.array([s.probs[best] for s in scored]))[: max(1, len(scored) // 3)])
        regions = scored[evidence[0]].regions(best)
        stmt = statements[best]
        frame_rows = []
        for i, s in enumerate(scored):
            j = int(np.argmax(s.probs))
            frame_rows.append({"index": i, "time": times[i], "answer": answers[j], "score": float(s.probs[j]),
                               "location": list(s.location(j))})
    if inp.llm:
        probs = _llm_rerank(ctx, inp, caption, answers, probs)
        out["llm_used"] = inp.llm
    order = np.argsort(-probs)
    out.update(
        answer=answers[int(order[0])],
        candidates=[{"answer": answers[j], "score": round(float(probs[j]), 6), "statement": statements[j]}
                    for j in order],
        statement=stmt,
        regions=regions,
        frames=frame_rows if is_video else [],
        evidence_frames=[int(i) for i in evidence] if is_video else [],
        notice="; ".join(notices) or None,
    )
    return VqaOutput(**out)


def _static_yesno(tests: list[tuple[str, list]], feats: list[np.ndarray], score: Any):
    """p(yes) per frame = min over the tests (presence, or the asserted statement against its best
    alternative); over frames, the mean of the best third (the object need only be visible in some)."""
    per_frame, scored_first = [], []
    for f in feats:
        results, ratios = [], []
        for mode, groups in tests:
            if mode == "presence":
                r = score(f, groups)
                ratios.append(eng.presence(r.probs))
            else:  # counts and relations are judged on the whole image (crops hold one object each)
                r = score(f[:1], groups)
                ratios.append(eng.assert_ratio(r.probs))
            results.append(r)
        k = int(np.argmin(ratios))
        per_frame.append((min(ratios), results[k].location(0)))
        scored_first.append(results[k])
    ps = np.array([p for p, _ in per_frame])
    top = np.argsort(-ps)[: max(1, math.ceil(len(ps) / 3))]
    best = int(top[0])
    first = tests[-1][1][0]
    return float(ps[top].mean()), per_frame, list(top), first if isinstance(first, str) else "", \
        scored_first[best].regions(0)


def _temporal(probe: lang.Probe, feats: list[np.ndarray], times: list[float], score: Any):
    """Answer a temporal question from per-frame existence, location, colour or size, in time order."""
    obj = probe.target
    kind, _, arg = probe.event.partition(":")
    if kind == "turn":
        obj = lang.Obj(shape=obj.shape, size=obj.size)  # its colour is what changes
    tests = _existence_tests(obj) or [[lang.statement(obj)]]
    exist, locs, first_scored = [], [], []
    for f in feats:
        results = [score(f, t) for t in tests]
        ratios = [eng.presence(r.probs) for r in results]
        exist.append(min(ratios))
        loc_src = results[0]
        locs.append(loc_src.location(0))
        first_scored.append(loc_src)
    n = len(feats)
    evidence = [0, n - 1] if n > 1 else [0]
    verb = {"move": f"moves {arg}", "appear": "appears", "disappear": "disappears", "turn": f"turns {arg}",
            "grow": "grows", "shrink": "shrinks"}[kind]
    stmt = f"{obj.name()} {verb}"
    if kind == "move":
        axis = 0 if arg in ("left", "right") else 1
        sign = -1.0 if arg in ("left", "up") else 1.0
        w = np.asarray(exist) + 1e-3
        coords = [loc[axis] for loc in locs]
        # Frames where the object is unlikely to be present count less in the fitted trend.
        disp = _weighted_trend(coords, times, w)
        p = eng.sigmoid(20.0 * sign * disp) * min(1.0, 2 * max(exist))
        per_frame = [(e, loc) for e, loc in zip(exist, locs, strict=True)]
    elif kind in ("appear", "disappear"):
        first, last = eng.ends(exist)
        p = min(1 - first, last) if kind == "appear" else min(first, 1 - last)
        per_frame = [(e, loc) for e, loc in zip(exist, locs, strict=True)]
    elif kind == "turn":
        colour_ratio = []
        for f in feats:
            r = score(f, [lang.statement(o) for o in lang.alternatives(obj, "colour", arg)])
            colour_ratio.append(eng.presence(r.probs))
        first, last = eng.ends(colour_ratio)
        p = min(1 - first, last)
        per_frame = [(c, loc) for c, loc in zip(colour_ratio, locs, strict=True)]
    else:  # grow / shrink
        big = []
        for f in feats:
            r = score(f, [lang.statement(o) for o in lang.alternatives(obj, "size", "large")])
            big.append(eng.assert_ratio(r.probs))
        d = eng.trend(big, times)
        p = eng.sigmoid(10.0 * (d if kind == "grow" else -d))
        per_frame = [(b, loc) for b, loc in zip(big, locs, strict=True)]
    return float(p), per_frame, evidence, stmt, first_scored[evidence[-1]].regions(0)


def _weighted_trend(values: list[float], times: list[float], w: np.ndarray) -> float:
    t = np.asarray(times, dtype=np.float64)
    if np.ptp(t) <= 0:
        t = np.arange(len(values), dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return 0.0
    tm, vm = np.average(t, weights=w), np.average(v, weights=w)
    var = np.average((t - tm) ** 2, weights=w)
    if var <= 0:
        return 0.0
    slope = np.average((t - tm) * (v - vm), weights=w) / var
    return float(slope * np.ptp(t))


def _llm_rerank(ctx: Context, inp: VqaInput, caption: str, answers: list[str], probs: np.ndarray) -> np.ndarray:
    """Combine CLIP probabilities with the LLM's next-token preference among the answers."""
    llm = ctx.llm(inp.llm)
    messages = [
        {"role": "system", "content": "Answer the question about the picture with one of the options, one word."},
        {"role": "user", "content": f"Picture: {caption}.\nQuestion: {inp.question}\n"
                                    f"Options: {', '.join(answers)}\nAnswer:"},
    ]
    logits = llm.next_token_logits(messages, answers)
    z = np.array([float(logits.get(a, -1e9)) for a in answers])
    z = z - z.max()
    p_llm = np.exp(z) / np.exp(z).sum()
    log = np.log(np.clip(probs, 1e-9, 1)) + inp.llm_weight * np.log(np.clip(p_llm, 1e-9, 1))
    p = np.exp(log - log.max())
    return p / p.sum()
