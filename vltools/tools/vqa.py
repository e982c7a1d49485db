"""Zero-shot visual question answering with CLIP (P01, MacCap's VQA extension), open vocabulary.

The question is parsed by spaCy (`vltools.tools._vl_language`) into a type — yes/no (presence,
attribute, relation, event), what/which, how many, where — and the entity it is about (the head
noun with its attributes, count and position). Each possible answer becomes a declarative statement
("there is a brown dog", "there are two dogs") scored against the image with MacCap's region-level
aggregation (dense features where the model has them, crops otherwise) and noise-robust
probabilities (`vltools.tools._vqa_engine`). Vocabularies: the caller's candidates; else, for the
embedded demo CLIPs, their declared world (objects, categories, colours, sizes); else the words of
the question. Yes/no questions compare the asserted statement with its alternatives (other nouns,
other values of the same attribute class, other counts, relations, positions). What/where questions
on a position ("what is on the left?") locate each likely object from the regions that match it.
On videos, questions are answered on sampled frames; events ("does the dog move to the left?",
appear, disappear, turn red, grow) across the frames in order. An LLM, when given, rescores the
candidates by the log-likelihood of the *whole* answer; ``vlm`` sends the image (or frames) to an
OpenAI-compatible vision chat server instead.
"""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from vltools.core import Context, InvalidInput, tool
from vltools.schemas import ToolInput
from vltools.tools import _vl_language as lang
from vltools.tools import _vqa_engine as eng

# unseen_presence "calibrated", chosen on DEV scenes (scripts/tune_presence.py; benchmarks/README.md, "Presence on
# held-out concepts"): 'yes' when at most UNSEEN_RANK unseen nouns beat X on some view; ConSE as image.classify's
UNSEEN_RANK = 16
UNSEEN_SLOPE = 0.3  # p(yes) = sigmoid(slope x (UNSEEN_RANK + 0.5 - rank)): 0.5 between rank 16 and 17
CONSE_TOP, CONSE_KEEP, CONSE_TEMPERATURE = 10, 0.5, 0.05


class VqaInput(ToolInput):
    renamed = {"model": "clip"}

    image: str | None = Field(None, description="Path of the image to ask about (give image or video).")
    video: str | None = Field(None, description="Path of the video to ask about; answered on sampled frames.")
    question: str = Field(min_length=1, max_length=1000, description="The question, in English.")
    candidates: list[str] | None = Field(
        None, min_length=1, max_length=200,
        description="Answer vocabulary to choose from; those matching the question type are used. "
        "Default: the model's declared world (demo CLIPs) or the question's words.",
    )
    clip: str | None = Field(None, description="CLIP spec (default: settings.clip, e.g. 'demo').")
    llm: str | None = Field(None, description="LLM spec to rescore candidates by whole-answer log-likelihood.")
    llm_weight: float = Field(0.5, ge=0, le=5, description="Weight of the LLM's log-probabilities in the rerank.")
    vlm: str | None = Field(
        None, description="openai:ENDPOINT#MODEL of a vision chat server (vLLM, Ollama): it answers from the "
        "image (or sampled frames) instead of CLIP.",
    )
    frames: int = Field(8, ge=1, le=64, description="Frames sampled uniformly from a video.")
    times: list[float] | None = Field(
        None, min_length=1, max_length=64, description="Answer at these video times (seconds) instead of uniformly."
    )
    regions: bool = Field(True, description="Use MacCap region feature aggregation (False: whole image only).")
    noise: float = Field(0.3, ge=0, le=2, description="Norm of the Gaussian feature noise for robust scoring (0: off).")
    unseen_presence: Literal["calibrated", "ratio"] = Field(
        "calibrated", description="How 'is there a X?' is decided when X is outside the training vocabulary the "
        "model declares (the demo CLIP's held-out nouns, or a noun its world lacks): calibrated = at most "
        f"{UNSEEN_RANK} other "
        "unseen nouns may score above X on the whole image or on some object proposal, after mixing each "
        "image feature with the text of the seen nouns it is near (ConSE); ratio = the test every seen noun gets "
        "(X's probability among all nouns against chance), which a model that never saw X rarely passes.",
    )
    objects: bool = Field(
        True, description="Count and locate with class-agnostic object proposals (method: see proposals), "
        "each named by CLIP from crops of it (box crops on the image's own background, mask on the border "
        "colour). False: the earlier methods (noun shares for counting, the image half/quarter for 'what is on "
        "the left').",
    )
    proposals: Literal["auto", "learned", "superpixels"] = Field(
        "auto", description="How objects are proposed for counting and 'what is on the left': 'learned' (a small "
        "class-agnostic net trained on world v2 scenes: foreground + centre-ness, watershed), 'superpixels' "
        "(SLIC + boundary prior, any image), or 'auto': what the model's declared world says (learned for "
        "the 'demo' CLIP), else superpixels.",
    )

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
    question_type: str = Field(
        description="yesno, count, position (where), colour/shape/size (what COLOUR/SHAPE/SIZE), what, or other."
    )
    statement: str = Field("", description="The statement that decided the answer.")
    regions: list[VqaRegion] = Field(default_factory=list, description="Regions that mattered for that statement.")
    caption: str = Field("", description="Best statement about the image among the vocabulary (first frame).")
    frames: list[VqaFrame] = Field(default_factory=list, description="Per-frame answers for videos, in time order.")
    evidence_frames: list[int] = Field(default_factory=list, description="Frames that support the answer most.")
    temporal: bool = Field(False, description="True when the question was answered across frames in order.")
    event_time: float | None = Field(None, description="For event questions: when the event is seen (s).")
    llm_used: str | None = Field(None, description="The LLM that rescored the candidates, if any.")
    vlm_used: str | None = Field(None, description="The vision chat model that answered, if any.")
    notice: str | None = Field(None, description="Sampling bounds, clipping or fallbacks applied.")
    model: str = Field(description="The CLIP spec (or vision model) used.")


MAX_VARIANTS = 96  # statements per answer when a generic noun is filled in with the world's nouns
COUNTS = list(range(1, 7))
_CAPTIONS: dict[tuple, str] = {}


def statement(ent: lang.Entity, *, noun: str | None = None, position: bool = True) -> str:
    """'there is a brown dog' / 'there are two dogs' / 'there are no dogs'."""
    phrase = ent.phrase(noun=noun, position=position)
    plural = (ent.count is not None and ent.count != 1) or (ent.count is None and ent.plural)
    return ("there are " if plural else "there is ") + phrase


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


class _Answerer:
    """Scores statements against the frames of one call."""

    def __init__(self, inp: VqaInput, clip: Any, feats: list[np.ndarray], world: eng.World | None,
                 cache_dir: Any = None, images: list[Any] | None = None):
        self.inp, self.clip, self.feats, self.world = inp, clip, feats, world
        self.images = images or []
        self.cache_dir = cache_dir
        self._seen_emb: np.ndarray | None = None  # ConSE: the seen nouns' prompt embeddings (unseen_presence)
        self._views: dict[int, np.ndarray] = {}  # per frame: whole image + object views, ConSE-mixed
        self._regions: dict[int, list] = {}

    def proposals(self, image: Any) -> list:
        """Object proposals of one image (`_objects`), by the input's method ('auto': the declared
        world's, else superpixels); computed once per image and call."""
        from vltools.tools import _objects

        if id(image) not in self._regions:
            method = self.inp.proposals
            if method == "auto":
                method = self.world.proposals if self.world else "superpixels"
            self._regions[id(image)] = _objects.regions(image, method)
        return self._regions[id(image)]

    def score(self, f: np.ndarray, items: list[str] | list[list[str]]) -> eng.Scored:
        """Probabilities of statements, or of groups of statements (summed within a group)."""
        groups = [[x] if isinstance(x, str) else x for x in items]
        flat = [t for g in groups for t in g]
        scored = eng.score_statements(f, eng.text_features(self.clip, flat, self.cache_dir),
                                      logit_scale=self.clip.logit_scale, use_regions=self.inp.regions,
                                      noise=self.inp.noise)
        return scored if len(flat) == len(groups) else eng.group(scored, [len(g) for g in groups])

    # -- statement families --------------------------------------------------------------------
    def nouns(self, ent: lang.Entity) -> list[str] | None:
        """Nouns a generic entity ('the shape', 'the object') may be, when the world is small enough."""
        if ent.noun or self.world is None:
            return None
        nouns = self.world.nouns_for(None)
        return nouns if len(nouns) <= MAX_VARIANTS else None

    def variants(self, ent: lang.Entity, *, position: bool = True) -> list[str]:
        nouns = self.nouns(ent)
        if nouns is None:
            return [statement(ent, position=position)]
        return [statement(ent, noun=n, position=position) for n in nouns]

    def noun_test(self, ent: lang.Entity) -> tuple[list[list[str]], str | None]:
        """The entity's noun phrase (with attributes the world cannot contrast) against other nouns."""
        fixed = [a for a in ent.attributes if not (self.world and self.world.attribute_class(a))]
        head = " ".join([*fixed, ent.noun])
        pool = self.world.nouns if self.world else []
        alts = [n for n in pool if n != head and n != ent.noun]
        base = lang.Entity(noun=head, plural=ent.plural)
        if not alts:
            return [[statement(base, position=False)], ["there is something"]], (
                f"no vocabulary to contrast {head!r} with; compared with 'something' (give candidates or use a "
                "model with a declared world)")
        return [[statement(base, position=False)]] + [[statement(lang.Entity(noun=n), position=False)]
                                                      for n in alts], None

    def attribute_test(self, ent: lang.Entity, attr: str) -> tuple[list[list[str]], str | None]:
        cls = self.world.attribute_class(attr) if self.world else None
        others = [a for a in ent.attributes if a != attr]
        if cls is None:
            with_a = lang.Entity(noun=ent.noun, attributes=[*others, attr], count=ent.count, plural=ent.plural)
            without = lang.Entity(noun=ent.noun, attributes=others, count=ent.count, plural=ent.plural)
            return [self.variants(with_a, position=False), self.variants(without, position=False)], (
                f"no vocabulary to contrast {attr!r} with; compared with the plain noun phrase")
        values = [attr] + [v for v in self.world.attributes[cls] if v != attr]
        groups = []
        for v in values:
            e = lang.Entity(noun=ent.noun, attributes=[*[o for o in others if self.world.attribute_class(o) != cls], v],
                            count=ent.count, plural=ent.plural)
            groups.append(self.variants(e, position=False))
        return groups, None

    def count_test(self, ent: lang.Entity, n: int) -> list[list[str]]:
        values = [n] + [c for c in COUNTS if c != n]
        return [self.variants(lang.Entity(noun=ent.noun, attributes=ent.attributes, count=v), position=False)
                for v in values]

    def position_test(self, ent: lang.Entity, pos: str) -> list[list[str]]:
        values = [pos] + [p for p in lang.POSITIONS if p != pos]
        return [self.variants(lang.Entity(noun=ent.noun, attributes=ent.attributes, position=v)) for v in values]

    def presence_tests(self, ent: lang.Entity, *, asserted: list[str] | None = None,
                       position: str | None = None,
                       calibrated: bool = False) -> tuple[list[tuple[str, list]], list[str]]:
        """(mode, statement groups: asserted first) that must all hold for 'yes', and notices. ``calibrated``: a noun
        outside the declared training vocabulary gets the ("unseen", [noun]) test (`unseen_presence`)."""
        tests: list[tuple[str, list]] = []
        notes: list[str] = []
        if ent.noun and asserted is None:
            head = self.world_noun(ent)
            if calibrated and self.world is not None and self.world.is_unseen(head) and self.world.unseen():
                tests.append(("unseen", [head]))
                others = sum(n != head for n in self.world.unseen())
                notes.append(f"{head!r} is outside the model's declared training vocabulary: 'yes' when at most "
                             f"{UNSEEN_RANK} of the {others} other unseen nouns score above it (unseen_presence)")
            else:
                g, note = self.noun_test(ent)
                tests.append(("presence", g))
                notes += [note] if note else []
        attrs = ent.attributes if asserted is None else asserted
        if asserted is not None:
            ent = lang.Entity(noun=ent.noun, attributes=[*ent.attributes, *[a for a in asserted
                                                                          if a not in ent.attributes]],
                              count=ent.count, plural=ent.plural)
        for a in attrs:
            if asserted is None and self.world and not self.world.attribute_class(a) and ent.noun:
                continue  # already part of the noun test's phrase
            g, note = self.attribute_test(ent, a)
            tests.append(("presence", g))
            notes += [note] if note else []
        if ent.count is not None and ent.count > 1:
            tests.append(("exclusive", self.count_test(ent, ent.count)))
        pos = position or ent.position
        if pos:
            tests.append(("presence", self.position_test(lang.Entity(noun=ent.noun, attributes=ent.attributes), pos)))
        return tests, notes

    def world_noun(self, ent: lang.Entity) -> str:
        """The entity's head (with attributes the world cannot contrast) as the world names it, when the parse
        changed the name: its plural ('grape' -> 'grapes'), the same letters ('t rex' -> 't-rex'), or the one
        declared noun it ends or starts ('hump camel' -> 'two-hump camel', 'nest' -> 'nest with eggs')."""
        fixed = [a for a in ent.attributes if not (self.world and self.world.attribute_class(a))]
        head = " ".join([*fixed, ent.noun])
        if self.world is None or head in self.world.nouns:
            return head
        key = re.sub(r"[^a-z0-9]", "", head.lower())
        for test in (lambda n: n == lang.pluralise(head), lambda n: re.sub(r"[^a-z0-9]", "", n.lower()) == key,
                     lambda n: n.endswith((" " + head, "-" + head)) or n.startswith(head + " ")):
            found = [n for n in self.world.nouns if test(n)]
            if len(found) == 1:
                return found[0]
        return head

    def unseen_rank(self, frame: int, noun: str) -> int:
        """How many of the other unseen nouns beat ``noun`` on the frame's best view (fewest): the whole image and
        each object proposal (its averaged naming views, and its masked crop), each mixed with the seen nouns' text
        it is near (ConSE, as `image.classify`'s conse_top). A held-out object lands on seen concepts in image
        space, so ranking against seen nouns never lets it through; among the unseen nouns it can rank first."""
        from vltools.tools.image import DEFAULT_TEMPLATES, class_embeddings, conse_mix

        world = self.world
        unseen = [n for n in world.unseen() if n != noun]
        texts = [statement(lang.Entity(noun=n), position=False) for n in [noun, *unseen]]
        tf = eng.text_features(self.clip, texts, self.cache_dir)
        if self._seen_emb is None:
            self._seen_emb, _ = class_embeddings(
                self.clip, world.seen, DEFAULT_TEMPLATES, None,
                encode=lambda t: eng.text_features(self.clip, t, self.cache_dir))
        views = self._views.get(frame)
        if views is None:
            views = self.feats[frame][:1]
            if frame < len(self.images):
                from vltools.tools import _objects

                image = self.images[frame]
                regs = _objects.object_regions(image)
                if regs:
                    named = np.stack([self.clip.encode_images(_objects.naming_views(image, r)).mean(0) for r in regs])
                    named /= np.linalg.norm(named, axis=1, keepdims=True)
                    views = np.concatenate([views, named, self.clip.encode_images(_objects.crops(image, regs))])
            views = conse_mix(np.asarray(views, dtype=np.float32), self._seen_emb, CONSE_TOP, CONSE_KEEP,
                              CONSE_TEMPERATURE)
            self._views[frame] = views
        sims = views @ tf.T
        return int((sims[:, 1:] > sims[:, :1]).sum(1).min())

    def p_tests(self, f: np.ndarray, tests: list[tuple[str, list]], frame: int = 0) -> tuple[float, eng.Scored | None]:
        ratios, results = [], []
        for mode, groups in tests:
            if mode == "unseen":
                rank = self.unseen_rank(frame, groups[0])
                ratios.append(eng.sigmoid(UNSEEN_SLOPE * (UNSEEN_RANK + 0.5 - rank)))
                results.append(None)
                continue
            if mode == "presence":
                r = self.score(f, groups)
                ratios.append(eng.presence(r.probs) if len(groups) > 2 else eng.assert_ratio(r.probs))
            else:  # counts and relations are judged on the whole image (a region holds one object)
                r = self.score(f[:1], groups)
                ratios.append(eng.assert_ratio(r.probs))
            results.append(r)
        if not ratios:
            return 0.5, None
        k = int(np.argmin(ratios))
        return float(ratios[k]), results[k]


# -- the tool ------------------------------------------------------------------------------------
@tool("vqa.zero_shot")
def zero_shot(inp: VqaInput, ctx: Context) -> VqaOutput:
    """Answer a question about an image or video zero-shot - CLIP-scored declarative statements with region
    aggregation (MacCap), open vocabulary.

    Returns the answer, candidate probabilities, the regions that mattered and, for videos, the
    per-frame answers. Events (move left/right/up/down, appear, disappear, turn red, grow, shrink)
    are answered across frames in order. ``vlm`` asks a vision chat server instead of CLIP.
    """
    q = lang.parse_question(inp.question)
    if q.subtype == "event" and inp.video is None:
        raise InvalidInput(
            f"the question asks about an action over time ({q.action.verb if q.action else 'an event'}); "
            "that needs a video",
            hint="pass video instead of image, or ask about what the image shows",
        )
    images, times, keys, notice = _visuals(inp, ctx)  # bad files fail before a model loads
    notices = [notice] if notice else []
    if inp.vlm:
        return _ask_vlm(inp, ctx, q, images, times, notices)
    clip = ctx.clip(inp.clip)
    world = eng.declared_world(clip.spec)
    feats = []
    for i, (img, key) in enumerate(zip(images, keys, strict=True)):
        feats.append(eng.region_features(clip, img, key))
        ctx.progress(i + 1, len(images), "frames encoded")
    a = _Answerer(inp, clip, feats, world, ctx.settings.cache_dir, images)
    is_video = inp.video is not None
    out: dict[str, Any] = {"question_type": _qtype(q), "model": clip.spec, "temporal": False}
    out["caption"] = _caption(a, keys[0], q)
    yes_no_asked = inp.candidates is None or {"yes", "no"} <= {c.strip().lower() for c in inp.candidates}
    if q.kind == "yesno" and yes_no_asked and q.target is not None:
        if q.subtype == "event":
            p_yes, per_frame, evidence, stmt, regions, t_event = _temporal(a, q, times)
            out["temporal"] = True
            out["event_time"] = t_event
        else:
            p_yes, per_frame, evidence, stmt, regions, more = _static_yesno(a, q)
            notices += more
        p_yes = min(p_yes, 0.5 - 1e-9) if abs(p_yes - 0.5) < 1e-9 else p_yes  # a tie is not evidence: "no"
        if q.negated:
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
        if q.kind == "where" and q.target is not None and inp.candidates is None:
            answers, statements, probs, scored = _where(a, q)
        elif q.kind == "what" and q.location and inp.candidates is None or \
                q.kind == "what" and q.location and _nouns_only(a, inp.candidates):
            answers, statements, probs, scored, note = _what_at(a, q, inp.candidates)
            notices += [note] if note else []
        else:
            answers, statements, groups, note = _choice_plan(a, q, inp.candidates)
            notices += [note] if note else []
            scored = [a.score(f, groups) for f in feats]
            if q.kind == "count" and inp.regions and all(x.isdigit() for x in answers):
                scored = [_count_regions(a, q.target or lang.Entity(), f, img, s, [int(x) for x in answers])
                          for f, img, s in zip(feats, images, scored, strict=True)]
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
        probs, note = _llm_rerank(ctx, inp, out["caption"], answers, probs)
        if note:
            notices.append(note)
        else:
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
        notice="; ".join(dict.fromkeys(notices)) or None,
    )
    return VqaOutput(**out)


def _qtype(q: lang.Question) -> str:
    if q.kind == "what" and q.asked in ("colour", "shape", "size"):
        return q.asked
    return {"where": "position"}.get(q.kind, q.kind)


def _caption(a: _Answerer, key: tuple, q: lang.Question) -> str:
    """The best 'there is a NOUN' statement among the world's nouns (or the question's entity)."""
    ck = (a.clip.spec, key, a.inp.regions)
    if ck in _CAPTIONS:
        return _CAPTIONS[ck]
    nouns = a.world.nouns if a.world else []
    if not nouns:
        return statement(q.target, position=False) if q.target and q.target.noun else ""
    texts = [statement(lang.Entity(noun=n), position=False) for n in nouns]
    r = a.score(a.feats[0], texts)
    cap = texts[int(np.argmax(r.probs))]
    _CAPTIONS[ck] = cap
    if len(_CAPTIONS) > 4096:
        _CAPTIONS.pop(next(iter(_CAPTIONS)))
    return cap


def _nouns_only(a: _Answerer, candidates: list[str] | None) -> bool:
    return bool(candidates) and not any(a.world and a.world.attribute_class(c.strip().lower())
                                        for c in candidates or [])


def _candidate_class(a: _Answerer, c: str) -> str | None:
    c = c.strip().lower()
    if c in ("yes", "no"):
        return "yesno"
    if c.isdigit() or c in lang.NUMBERS and c not in ("a", "an"):
        return "count"
    if a.world:
        cls = a.world.attribute_class(c)
        if cls:
            return cls
        if c in a.world.nouns:
            return "noun"
    if c in lang.POSITION_PHRASE or c in lang.POSITION_PHRASE.values():
        return "position"
    return None


def _choice_plan(a: _Answerer, q: lang.Question, candidates: list[str] | None):
    """(answers, statements, statement groups, notice) for a question answered by choosing."""
    target = q.target or lang.Entity()
    notice = None
    asked = q.asked
    world = a.world
    attr_cls = asked if world and asked in world.attributes else None
    if q.kind == "count":
        want = "count"
    elif attr_cls:
        want = attr_cls
    elif asked in lang.ATTRIBUTE_DIMENSIONS:
        want = asked
    elif q.kind == "where":
        want = "position"
    else:
        want = "noun"
    if candidates is None:
        if want == "count":
            answers = [str(n) for n in COUNTS]
        elif want == "position":
            answers = [lang.POSITION_PHRASE[p] for p in lang.POSITIONS]
        elif attr_cls:
            answers = list(world.attributes[attr_cls])
        elif want != "noun" and world is None or want in lang.ATTRIBUTE_DIMENSIONS:
            raise InvalidInput(
                f"no answer vocabulary for {q.text!r}: this model declares no world and no candidates were given",
                hint="pass candidates (the possible answers), or use a model with a declared world such as 'demo'",
            )
        elif world:
            answers = list(world.nouns_for(asked))
        else:
            raise InvalidInput(
                f"no answer vocabulary for {q.text!r}: this model declares no world and no candidates were given",
                hint="pass candidates (the possible answers), or use a model with a declared world such as 'demo'",
            )
    else:
        answers = list(dict.fromkeys(c.strip() for c in candidates))
        classes = {c: _candidate_class(a, c) for c in answers}
        matching = [c for c in answers if classes[c] == want or (classes[c] is None and (
            want == "noun" or want in lang.ATTRIBUTE_DIMENSIONS))]
        if q.kind == "count":
            matching = [c for c in answers if classes[c] == "count"]
        if matching and len(matching) < len(answers):
            notice = f"kept the {len(matching)} of {len(answers)} candidates that answer this {want} question"
            answers = matching
        elif not matching:
            want = "free"
    statements, groups = [], []
    for ans in answers:
        if want == "count":
            n = int(ans) if ans.isdigit() else lang.NUMBERS.get(ans.lower(), 1)
            e = lang.Entity(noun=target.noun, attributes=target.attributes, count=n)
        elif want == "position":
            pos = lang._position_of(list(lang._doc(ans))) or ans
            e = lang.Entity(noun=target.noun, attributes=target.attributes, position=pos)
        elif want == "noun":
            e = lang.Entity(noun=ans.lower(), attributes=target.attributes, position=q.location)
        elif want == "free":
            statements.append(f"{q.text.rstrip('?')} {ans}")
            groups.append([statements[-1]])
            continue
        else:
            others = [x for x in target.attributes if not (world and world.attribute_class(x) == want)]
            e = lang.Entity(noun=target.noun, attributes=[*others, ans.lower()])
        vs = a.variants(e)
        statements.append(vs[0] if len(vs) == 1 else statement(e))
        groups.append(vs)
    return answers, statements, groups, notice


COUNT_SHARE = 0.5  # objects=False: a noun counts as present when its probability is >= this share of the best
COUNT_TOPK = 20  # objects=True: a region is an X when X ranks among its top-k nouns (chosen on dev scenes)
COUNT_STRENGTH = 3.0  # weight of the region count against the count statements


def _count_regions(a: _Answerer, target: lang.Entity, f: np.ndarray, image: Any, stmts: eng.Scored,
                   counts: list[int]) -> eng.Scored:
    """Counting by regions: the count statements' probabilities times exp(-STRENGTH x |n - k|), k the
    region count. objects=True: k = the object proposals (`_objects`), for 'how many Xs' those whose crop
    ranks X among its top COUNT_TOPK nouns (at least 1: the answers start at 1). objects=False (the
    earlier method): k = the distinct nouns the region-aggregated features make likely. Without a
    proposal (or, for 'how many Xs', without a noun vocabulary) the statements decide alone."""
    if a.inp.objects:
        k = _object_count(a, target, image)
        strength = COUNT_STRENGTH
    else:
        if target.noun or a.world is None:
            return stmts
        r, _ = _locate(a, a.world.nouns, target.attributes, f)
        top = np.sort(r.probs)[::-1][: max(counts)]
        k = int((top >= COUNT_SHARE * top[0]).sum())
        strength = 1.0
    if k is None:
        return stmts
    prior = np.exp(-strength * np.abs(np.asarray(counts) - k))
    p = stmts.probs * prior
    return eng.Scored(p / p.sum(), stmts.sims, stmts.weights, stmts.crop_sims, stmts.boxes)


def _object_count(a: _Answerer, target: lang.Entity, image: Any) -> int | None:
    from vltools.tools import _objects

    regs = a.proposals(image)
    if not regs:
        return None
    if not target.noun:
        return len(regs)
    fixed = [x for x in target.attributes if not (a.world and a.world.attribute_class(x))]
    head = " ".join([*fixed, target.noun])
    pool = [n for n in (a.world.nouns if a.world else []) if n != head]
    if not pool:
        return None
    texts = [statement(lang.Entity(noun=n, attributes=target.attributes), position=False) for n in [head, *pool]]
    tf = eng.text_features(a.clip, texts, a.cache_dir)
    emb = a.clip.encode_images(_objects.crops(image, regs))
    sims = emb @ tf.T
    ranks = (sims[:, 1:] > sims[:, :1]).sum(1)
    return max(1, int((ranks < COUNT_TOPK).sum()))


def _static_yesno(a: _Answerer, q: lang.Question):
    """p(yes) per frame = min over the tests; over frames, the mean of the best third."""
    calibrated = a.inp.unseen_presence == "calibrated"
    if q.subtype == "relation" and q.other is not None:
        ta, tb = q.target, q.other
        rels = [q.relation] + [r for r in ("above", "below", "left of", "right of") if r != q.relation]
        tests, notes = [], []
        for ent in (ta, tb):
            t, n = a.presence_tests(lang.Entity(noun=ent.noun, attributes=ent.attributes), calibrated=calibrated)
            tests += t
            notes += n
        pa = lang.Entity(noun=ta.noun, attributes=ta.attributes).phrase()
        pb = lang.Entity(noun=tb.noun, attributes=tb.attributes).phrase()
        tests.append(("exclusive", [f"{pa} {r} {pb}" for r in rels]))
        stmt = f"{pa} {q.relation} {pb}"
    elif q.subtype == "attribute":
        tests, notes = a.presence_tests(q.target, asserted=q.asserted, position=q.position, calibrated=calibrated)
        stmt = statement(lang.Entity(noun=q.target.noun, attributes=[*q.target.attributes, *q.asserted],
                                     position=q.position))
    else:
        tests, notes = a.presence_tests(q.target, calibrated=calibrated)
        stmt = statement(q.target)
    per_frame, scored = [], []
    for i, f in enumerate(a.feats):
        p, r = a.p_tests(f, tests, i)
        per_frame.append((p, r.location(0) if r is not None else None))
        scored.append(r)
    ps = np.array([p for p, _ in per_frame])
    top = np.argsort(-ps)[: max(1, math.ceil(len(ps) / 3))]
    best = scored[int(top[0])]
    return float(ps[top].mean()), per_frame, list(top), stmt, best.regions(0) if best else [], notes


def _locate(a: _Answerer, nouns: list[str], attrs: list[str], f: np.ndarray) -> tuple[eng.Scored, list[str]]:
    texts = [statement(lang.Entity(noun=n, attributes=attrs), position=False) for n in nouns]
    return a.score(f, texts), texts


_SIDE_BOX = {"left": (0.0, 0.0, 0.5, 1.0), "right": (0.5, 0.0, 1.0, 1.0), "top": (0.0, 0.0, 1.0, 0.5),
             "bottom": (0.0, 0.5, 1.0, 1.0), "centre": (0.25, 0.25, 0.75, 0.75), "top left": (0.0, 0.0, 0.5, 0.5),
             "top right": (0.5, 0.0, 1.0, 0.5), "bottom left": (0.0, 0.5, 0.5, 1.0),
             "bottom right": (0.5, 0.5, 1.0, 1.0)}


def _what_at(a: _Answerer, q: lang.Question, candidates: list[str] | None):
    """'What is on the left?': the object proposal a position names (the leftmost, the topmost, the
    nearest a corner...; `_objects`), named by CLIP from the average embedding of its `naming_views`
    (its box on the image's own background at three margins, and its mask on the border colour; chosen
    on dev scenes over the mask on grey), as MacCap scores a region's feature.
    objects=False, or no proposal: the candidates scored on the part of the image the position names
    (the left half, the top-right quarter, the centre...)."""
    from vltools.tools import _objects

    target = q.target or lang.Entity()
    nouns = [c.strip() for c in candidates] if candidates else (a.world.nouns_for(q.asked) if a.world else [])
    if not nouns:
        raise InvalidInput(f"no answer vocabulary for {q.text!r}", hint="pass candidates (the possible answers)")
    texts = [statement(lang.Entity(noun=n, attributes=target.attributes), position=False) for n in nouns]
    scored, fallback = [], False
    for img in a.images:
        w, h = img.size
        regs = a.proposals(img) if a.inp.objects else []
        i = _objects.at_position(regs, q.location)
        if i is not None:
            views, box = _objects.naming_views(img, regs[i]), regs[i].box
        else:
            fallback = fallback or a.inp.objects
            box = _SIDE_BOX[q.location]
            x0, y0, x1, y1 = box
            views = [img.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))]
        emb = np.asarray(a.clip.encode_images(views), dtype=np.float32).mean(0, keepdims=True)
        r = a.score(emb / np.linalg.norm(emb, axis=1, keepdims=True), texts)
        scored.append(eng.Scored(r.probs, r.sims, r.weights, r.crop_sims, [tuple(float(v) for v in box)]))
    notes = [] if candidates else [f"answered among the {len(nouns)} objects of the model's declared world"]
    if fallback:
        notes.append(f"no object found; scored the {q.location} part of the image instead")
    return nouns, texts, np.mean([s.probs for s in scored], axis=0), scored, "; ".join(notes) or None


def _where(a: _Answerer, q: lang.Question):
    """'Where is the dog?': the dog's location from the regions that match it, as a frame position."""
    ent = lang.Entity(noun=q.target.noun, attributes=q.target.attributes)
    texts = a.variants(ent, position=False)
    answers = [lang.POSITION_PHRASE[p] for p in lang.POSITIONS]
    scored, probs_all = [], []
    for f in a.feats:
        r = a.score(f, [texts])
        x, y = r.location(0)
        centres = {p: ((lang.POSITIONS.index(p) % 3 + 0.5) / 3, (lang.POSITIONS.index(p) // 3 + 0.5) / 3)
                   for p in lang.POSITIONS}
        d = np.array([math.hypot(x - cx, y - cy) for cx, cy in centres.values()])
        p = np.exp(-12.0 * (d - d.min()))
        p /= p.sum()
        probs_all.append(p)
        scored.append(eng.Scored(p, np.repeat(r.sims, len(p)), np.repeat(r.weights, len(p), 0),
                                 np.repeat(r.crop_sims, len(p), 0), r.boxes))
    statements = [statement(lang.Entity(noun=ent.noun, attributes=ent.attributes, position=p)) for p in lang.POSITIONS]
    return answers, statements, np.mean(probs_all, axis=0), scored


def _temporal(a: _Answerer, q: lang.Question, times: list[float]):
    """Answer an event question from per-frame presence, location or attribute, in time order."""
    act = q.action
    ent = lang.Entity(noun=q.target.noun, attributes=q.target.attributes if act.type != "turn" else
                      [x for x in q.target.attributes if x != act.value])
    tests, _ = a.presence_tests(lang.Entity(noun=ent.noun, attributes=ent.attributes))
    exist, locs = [], []
    for f in a.feats:
        p, r = a.p_tests(f, tests)
        exist.append(p)
        loc_r = a.score(f, [a.variants(ent, position=False)])
        locs.append(loc_r.location(0))
    n = len(a.feats)
    direction = act.direction
    if direction and a.inp.objects and len(a.images) == n:
        # the entity's object proposal (the one whose crop is closest to it) is a sharper location than
        # the dense cells' weighted centre (3 x 3 for the demo CLIP); chosen on dev videos
        locs = [_object_location(a, ent, img) or loc for img, loc in zip(a.images, locs, strict=True)]
    kind = act.type
    stmt = f"{ent.name()} {act.verb}" + (f" {lang.DIRECTION_PHRASE[direction]}" if direction else "")
    t_event = None
    if direction:
        axis = 0 if direction in ("left", "right") else 1
        sign = -1.0 if direction in ("left", "up") else 1.0
        w = np.asarray(exist) + 1e-3
        coords = [loc[axis] for loc in locs]
        disp = _weighted_trend(coords, times, w)
        p = eng.sigmoid(20.0 * sign * disp) * min(1.0, 2 * max(exist))
        steps = np.diff(np.asarray(coords)) * sign
        t_event = times[int(np.argmax(steps)) + 1] if len(steps) else times[0]
        per_frame = list(zip(exist, locs, strict=True))
    elif kind in ("appear", "disappear"):
        first, last = eng.ends(exist)
        p = min(1 - first, last) if kind == "appear" else min(first, 1 - last)
        above = [i for i, e in enumerate(exist) if (e >= 0.5) == (kind == "appear")]
        t_event = times[above[0]] if above else None
        per_frame = list(zip(exist, locs, strict=True))
    elif kind == "turn" and act.value:
        g, _ = a.attribute_test(ent, act.value)
        ratio = []
        for f in a.feats:
            r = a.score(f, g)
            ratio.append(eng.presence(r.probs) if len(g) > 2 else eng.assert_ratio(r.probs))
        first, last = eng.ends(ratio)
        p = min(1 - first, last)
        above = [i for i, v in enumerate(ratio) if v >= 0.5]
        t_event = times[above[0]] if above else None
        per_frame = list(zip(ratio, locs, strict=True))
    elif kind in ("grow", "shrink"):
        big = []
        for f in a.feats:
            r = a.score(f[:1], [a.variants(lang.Entity(noun=ent.noun, attributes=[*ent.attributes, s]))
                                for s in ("large", "small")])
            big.append(eng.assert_ratio(r.probs))
        d = eng.trend(big, times)
        p = eng.sigmoid(10.0 * (d if kind == "grow" else -d))
        t_event = times[n // 2]
        per_frame = list(zip(big, locs, strict=True))
    else:
        # A verb without a direction or a change CLIP can see on frames: the subject must be present
        # in the frames and its location must change ('runs across the beach').
        moved = max(math.hypot(locs[i][0] - locs[0][0], locs[i][1] - locs[0][1]) for i in range(n)) if n else 0.0
        p = float(np.mean(sorted(exist)[-max(1, n // 3):])) * min(1.0, 0.5 + 4.0 * moved)
        per_frame = list(zip(exist, locs, strict=True))
    evidence = [0, n - 1] if n > 1 else [0]
    if t_event is not None and t_event in times:
        evidence = [times.index(t_event)]
    r0 = a.score(a.feats[evidence[-1]], [a.variants(ent, position=False)])
    return float(p), per_frame, evidence, stmt, r0.regions(0), t_event


def _object_location(a: _Answerer, ent: lang.Entity, image: Any) -> tuple[float, float] | None:
    """Centre of the object proposal whose crop is closest to the entity's statement (None: no proposal)."""
    from vltools.tools import _objects

    regs = _objects.object_regions(image)
    if not regs:
        return None
    tf = eng.text_features(a.clip, a.variants(ent, position=False), a.cache_dir)
    sims = a.clip.encode_images(_objects.crops(image, regs)) @ tf.T
    return regs[int(np.argmax(sims.max(1)))].centre


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


# -- LLM rescoring and vision chat models --------------------------------------------------------
def _llm_rerank(ctx: Context, inp: VqaInput, caption: str, answers: list[str],
                probs: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Combine CLIP probabilities with the LLM's log-likelihood of each whole answer."""
    llm = ctx.llm(inp.llm)
    messages = [
        {"role": "system", "content": "Answer the question about the picture with one of the options."},
        {"role": "user", "content": f"Picture: {caption}.\nQuestion: {inp.question}\n"
                                    f"Options: {', '.join(answers)}\nAnswer:"},
    ]
    scorer = getattr(llm, "continuation_logprobs", None)
    if scorer is not None:
        try:
            lp = np.asarray(scorer(messages, answers), dtype=np.float64)
        except NotImplementedError:
            lp = None
    else:
        lp = None
    if lp is None:
        if all(getattr(llm, "is_single_token", lambda s: False)(x) for x in answers) and \
                "next_token_logits" in getattr(llm, "capabilities", ()):
            logits = llm.next_token_logits(messages, answers)
            lp = np.array([float(logits.get(x, -1e9)) for x in answers])
        else:
            return probs, (f"{inp.llm} cannot score whole multi-token answers (no continuation log-probabilities); "
                           "answered by CLIP alone")
    z = lp - lp.max()
    p_llm = np.exp(z) / np.exp(z).sum()
    log = np.log(np.clip(probs, 1e-9, 1)) + inp.llm_weight * np.log(np.clip(p_llm, 1e-9, 1))
    p = np.exp(log - log.max())
    return p / p.sum(), None


def image_part(img: Any, max_side: int = 512) -> dict[str, Any]:
    """An OpenAI chat content part holding ``img`` as a PNG data URL (downscaled to ``max_side``)."""
    im = img.convert("RGB")
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue())
                                               .decode()}}


def _ask_vlm(inp: VqaInput, ctx: Context, q: lang.Question, images: list[Any], times: list[float],
             notices: list[str]) -> VqaOutput:
    """Send the question with the image (or sampled frames, in order) to a vision chat server."""
    if not inp.vlm.startswith("openai:"):
        raise InvalidInput(f"vlm must be an openai:ENDPOINT#MODEL spec, got {inp.vlm!r}",
                           hint="e.g. openai:local#llava (name the endpoint in VLTOOLS_LLM_ENDPOINTS)")
    llm = ctx.llm(inp.vlm)
    frames = images[:16]
    text = inp.question
    if inp.candidates:
        text += "\nAnswer with one of: " + ", ".join(inp.candidates) + "."
    elif q.kind == "yesno":
        text += "\nAnswer yes or no."
    if len(frames) > 1:
        text = f"These are {len(frames)} frames of a video in time order, at " + ", ".join(
            f"{t:.1f} s" for t in times[:16]) + ".\n" + text
    content = [*(image_part(im) for im in frames), {"type": "text", "text": text}]
    reply = llm.generate([{"role": "user", "content": content}], max_tokens=48).strip()
    answer = reply.split("\n")[0].strip().rstrip(".").strip()
    low = answer.lower()
    first = re.split(r"\W+", low, maxsplit=1)[0] if low else ""
    if not inp.candidates and first in ("yes", "no"):
        answer = first
    if inp.candidates:
        hit = next((c for c in inp.candidates if c.strip().lower() == low), None) or next(
            (c for c in inp.candidates if c.strip().lower() in low), None)
        if hit is None:
            notices.append(f"the vision model's answer {answer!r} is none of the candidates")
        answer = hit or answer
    cands = [{"answer": answer, "score": 1.0, "statement": reply}]
    if answer in ("yes", "no"):
        cands.append({"answer": "no" if answer == "yes" else "yes", "score": 0.0, "statement": ""})
    if len(images) > 16:
        notices.append(f"sent the first 16 of {len(images)} frames")
    return VqaOutput(answer=answer, candidates=cands, question_type=_qtype(q), statement=reply, model=inp.vlm,
                     vlm_used=inp.vlm, temporal=len(frames) > 1, notice="; ".join(notices) or None)
