"""Deterministic language side of zero-shot VQA and ETVA: a small vocabulary of the visual world,
question parsing into typed probes, noun phrases and declarative statements, and the rule-based
scene-graph parser with atomic question generation (P01 VQA extension, P35 question generation).

Pure Python: no model is loaded here, so both `vqa.zero_shot` and `t2v.*` reuse it, and it works
with the smallest LLM configured (or none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

# The synthetic world's vocabulary (vltools.world.vocab), which the demo CLIP was trained on.
COLOURS = ["red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "gray", "black"]
COLOUR_ALIASES = {"grey": "gray", "violet": "purple", "cyan": "teal", "crimson": "red", "scarlet": "red",
                  "navy": "blue", "azure": "blue", "lime": "green", "golden": "yellow"}
SHAPES = ["circle", "square", "rectangle", "triangle", "star", "cross", "hexagon", "heart"]
SHAPE_ALIASES = {"ring": "circle", "disc": "circle", "disk": "circle", "dot": "circle", "box": "square",
                 "plus": "cross"}
GENERIC_NOUNS = {"shape", "object", "thing", "figure", "item"}
SIZES = ["small", "large"]
SIZE_ALIASES = {"big": "large", "tiny": "small", "little": "small", "huge": "large"}
POSITIONS = ["top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right"]
POSITION_WORDS = {"left": "left", "right": "right", "top": "top", "upper": "top", "bottom": "bottom",
                  "lower": "bottom", "centre": "centre", "center": "centre", "middle": "centre"}
POSITION_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
                   "centre": "in the centre", "top left": "in the top left", "top right": "in the top right",
                   "bottom left": "in the bottom left", "bottom right": "in the bottom right"}
_COMPOUND_POSITION = re.compile(r"\b(top|upper|bottom|lower) (left|right)\b")
RELATIONS = {"above": "above", "over": "above", "below": "below", "under": "below", "beneath": "below",
             "left of": "left of", "to the left of": "left of", "right of": "right of", "to the right of": "right of",
             "next to": "next to", "beside": "next to"}
RELATION_OPPOSITE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
DIRECTIONS = {"left": "left", "right": "right", "up": "up", "upward": "up", "upwards": "up", "down": "down",
              "downward": "down", "downwards": "down", "top": "up", "bottom": "down"}
NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_NUM = {w: i for i, w in enumerate(NUMBER_WORDS)} | {"zero": 0, "a": 1, "an": 1, "single": 1}
QUESTION_TYPES = ("colour", "shape", "count", "position", "size", "yesno", "other")


def _canon_word(w: str) -> tuple[str, str] | None:
    """(kind, canonical value) of one word of the vocabulary, or None."""
    w = w.lower()
    if w in COLOURS or w in COLOUR_ALIASES:
        return "colour", COLOUR_ALIASES.get(w, w)
    s = w[:-2] if w.endswith(("ses", "xes")) else w[:-1] if w.endswith("s") and w[:-1] in SHAPES + list(
        SHAPE_ALIASES) + list(GENERIC_NOUNS) else w
    if s in SHAPES or s in SHAPE_ALIASES:
        return "shape", SHAPE_ALIASES.get(s, s)
    if s in GENERIC_NOUNS:
        return "noun", "shape"
    if w in SIZES or w in SIZE_ALIASES:
        return "size", SIZE_ALIASES.get(w, w)
    if w in _NUM or w.isdigit():
        return "count", str(_NUM.get(w, w))
    return None


@dataclass
class Obj:
    """An object description: any of count, size, colour, shape (None = unspecified), position."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    count: int | None = None
    position: str | None = None

    def phrase(self, *, with_position: bool = True) -> str:
        n = self.count
        noun = self.shape or "shape"
        plural = n is not None and n != 1
        if plural:
            noun = noun + ("es" if noun.endswith(("s", "x")) else "s")
        words = [NUMBER_WORDS[n] if n is not None and n < len(NUMBER_WORDS) else (str(n) if n is not None else "")]
        words += [self.size or "", self.colour or "", noun]
        text = " ".join(w for w in words if w)
        if not plural and n is None:
            text = ("an " if text[0] in "aeiou" else "a ") + text
        if with_position and self.position:
            text += " " + POSITION_PHRASE[self.position]
        return text

    def name(self) -> str:
        """Short definite name for questions: 'the red circle'."""
        noun = self.shape or "shape"
        if self.count is not None and self.count > 1:
            noun += "es" if noun.endswith(("s", "x")) else "s"
        return "the " + " ".join(w for w in (self.size, self.colour, noun) if w)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_object(text: str) -> Obj:
    """Read count/size/colour/shape/position words from a noun phrase ('two small red circles on the left')."""
    obj = Obj()
    compound = _COMPOUND_POSITION.search(text.lower())
    if compound:
        obj.position = f"{POSITION_WORDS[compound.group(1)]} {compound.group(2)}"
        text = text.lower().replace(compound.group(0), " ")
    words = re.findall(r"[a-z0-9]+", text.lower())
    for i, w in enumerate(words):
        c = _canon_word(w)
        if c is None:
            if w in POSITION_WORDS and not (i + 1 < len(words) and words[i + 1] == "of"):
                obj.position = POSITION_WORDS[w]
            continue
        kind, val = c
        if kind == "colour":
            obj.colour = val
        elif kind == "shape":
            obj.shape = val
        elif kind == "noun":
            obj.shape = obj.shape
        elif kind == "size":
            obj.size = val
        elif kind == "count" and obj.count is None and obj.shape is None and w not in ("a", "an"):
            obj.count = int(val)
    return obj


# -- questions ----------------------------------------------------------------------------------
@dataclass
class Probe:
    """What a question asks, in a form CLIP statements can test.

    kind: one of QUESTION_TYPES. target: the object asked about. For wh-questions ``attribute`` is
    what varies across candidates; for yes/no, ``tests`` lists (attribute, asserted value) pairs
    that must all hold, ``negated`` flips the answer, and ``relation``/``other`` describe a relation
    to a second object. ``event`` is a temporal predicate on videos ("move:left", "appear",
    "disappear", "turn:blue").
    """

    kind: str
    target: Obj = field(default_factory=Obj)
    attribute: str | None = None
    tests: list[tuple[str, Any]] = field(default_factory=list)
    negated: bool = False
    relation: str | None = None
    other: Obj | None = None
    event: str | None = None
    text: str = ""


_WH = [
    (r"^(?:what|which) colou?r (?:is|are|does|do) (?:the )?(?P<obj>.+)$", "colour"),
    (r"^what is the colou?r of (?:the )?(?P<obj>.+)$", "colour"),
    (r"^what colou?r (?P<obj>.+)$", "colour"),
    (r"^(?:what|which) shape (?:is|are|does)? ?(?P<obj>.*)$", "shape"),
    (r"^what (?:is|are) the (?P<obj>[a-z ]*?(?:shape|object|thing|figure)s?)(?: in the image| present)?$", "shape"),
    (r"^what (?:kind of|type of) (?:shape|object) (?:is|are) (?P<obj>.*)$", "shape"),
    (r"^how many (?P<obj>.+?)(?: are there| are in the image| are visible| are present| are| is| do you see)?$",
     "count"),
    (r"^where (?:is|are) (?:the )?(?P<obj>.+)$", "position"),
    (r"^(?:what|which) size (?:is|are) (?:the )?(?P<obj>.+)$", "size"),
    (r"^how (?:big|large) (?:is|are) (?:the )?(?P<obj>.+)$", "size"),
]
_YESNO_START = re.compile(r"^(is|are|does|do|did|was|were|can|could|has|have)\b")
_EXIST = re.compile(
    r"^(?:is|are) there (?P<neg>not |no )?(?P<obj>.+?)(?: in the (?:image|picture|video|scene|frame))?$"
    r"|^(?:does|do) (?:the|this) (?:image|picture|video|scene) (?P<neg2>not )?(?:contain|show|have|include) "
    r"(?P<obj2>.+)$"
    r"|^(?:is|are) (?P<neg3>no |not )?(?P<obj3>.+?) "
    r"(?:present|visible|shown)(?: in the (?:image|picture|video))?$"
)
_EVENT = re.compile(
    r"^(?:does|do|did) (?:the )?(?P<obj>.+?) (?P<neg>not )?(?P<verb>move|moves|go|goes|slide|slides|travel|travels|"
    r"appear|appears|disappear|disappears|vanish|vanishes|turn|turns|change|changes|become|becomes|grow|grows|"
    r"shrink|shrinks)\b(?P<rest>.*)$"
)


def _event_of(verb: str, rest: str) -> str | None:
    verb = verb.rstrip("s") if verb not in ("grows",) else "grow"
    rest_words = re.findall(r"[a-z]+", rest)
    if verb.startswith(("move", "go", "slide", "travel")) or verb in ("goe",):
        for w in rest_words:
            if w in DIRECTIONS:
                return "move:" + DIRECTIONS[w]
        return None
    if verb.startswith("appear"):
        return "appear"
    if verb.startswith(("disappear", "vanish")):
        return "disappear"
    if verb.startswith(("turn", "change", "become")):
        for w in rest_words:
            c = _canon_word(w)
            if c and c[0] == "colour":
                return "turn:" + c[1]
        return None
    if verb.startswith("grow"):
        return "grow"
    if verb.startswith("shrink"):
        return "shrink"
    return None


def parse_question(question: str) -> Probe:
    """Classify a question and extract what it asks about (always returns a Probe; kind 'other' if unsure)."""
    q = re.sub(r"\s+", " ", question.strip().lower()).rstrip("?.! ")
    for pattern, kind in _WH:
        m = re.match(pattern, q)
        if m:
            target = parse_object(m.group("obj") or "")
            if kind == "shape":
                target.shape = None
            if kind == "colour":
                target.colour = None
            if kind == "count":
                target.count = None
            if kind == "position":
                target.position = None
            return Probe(kind, target, attribute=kind, text=question)
    if _YESNO_START.match(q):
        return _parse_yesno(q, question)
    return Probe("other", text=question)


def _parse_yesno(q: str, original: str) -> Probe:
    m = _EVENT.match(q)
    if m:
        ev = _event_of(m.group("verb"), m.group("rest"))
        if ev:
            return Probe("yesno", parse_object(m.group("obj")), negated=bool(m.group("neg")), event=ev, text=original)
    m = _EXIST.match(q)
    if m:
        neg = next((g for g in (m.group("neg"), m.group("neg2"), m.group("neg3")) if g), None)
        obj_text = next(g for g in (m.group("obj"), m.group("obj2"), m.group("obj3")) if g)
        if obj_text.startswith(("not ", "no ")):
            neg, obj_text = obj_text.split(" ", 1)[0], obj_text.split(" ", 1)[1]
        probe = _relational_or_plain(obj_text, bool(neg), original, existence=True)
        if probe.target.count == 0:  # "is no circle present?" = not (is a circle present?)
            probe.negated, probe.target.count = not probe.negated, None
            probe.tests = [t for t in probe.tests if t[0] != "count"]
        return probe
    # "is the circle red?" / "is the circle on the left?" / "is the red circle above the square?"
    m = re.match(r"^(?:is|are|was|were) (?P<neg>not )?(?:the |a |an )?(?P<rest>.+)$", q)
    if m:
        rest = m.group("rest")
        neg = bool(m.group("neg")) or " not " in f" {rest} "
        rest = re.sub(r"\bnot\b ?", "", rest).strip()
        return _relational_or_plain(rest, neg, original, existence=False)
    return Probe("other", text=original)


def _split_relation(text: str) -> tuple[str, str, str] | None:
    for phrase in sorted(RELATIONS, key=len, reverse=True):
        m = re.search(rf"\b(?:is |are )?{phrase}\b", text)
        if m and m.start() > 0:
            left, right = text[: m.start()].strip(), text[m.end():].strip()
            if right and not right.startswith("the image"):
                return left, RELATIONS[phrase], right
    return None


def _relational_or_plain(text: str, negated: bool, original: str, *, existence: bool) -> Probe:
    rel = _split_relation(text)
    if rel:
        left, relation, right = rel
        return Probe("yesno", parse_object(left), negated=negated, relation=relation, other=parse_object(right),
                     text=original)
    words = re.findall(r"[a-z0-9]+", text)
    # The head noun phrase is what precedes a trailing attribute: "circle red", "circle on the left".
    target = parse_object(text)
    tests: list[tuple[str, Any]] = []
    if existence:
        for attr in ("shape", "colour", "size", "position"):
            if getattr(target, attr) is not None:
                tests.append((attr, getattr(target, attr)))
        if target.count is not None and (target.count != 1 or "one" in words):
            tests.append(("count", target.count))
    else:
        # Predicate = the attribute words after the subject's noun.
        noun_idx = next((i for i, w in enumerate(words) if (_canon_word(w) or ("",))[0] in ("shape", "noun")), None)
        pred_words = words[noun_idx + 1:] if noun_idx is not None else words
        subject = parse_object(" ".join(words[: (noun_idx + 1) if noun_idx is not None else 0]))
        pred = parse_object(" ".join(pred_words))
        for attr in ("colour", "size", "position", "shape"):
            val = getattr(pred, attr)
            if val is not None:
                tests.append((attr, val))
                setattr(subject, attr, getattr(subject, attr) or val)
        if not tests:  # "is the red circle?" — treat as existence of the whole phrase
            for attr in ("shape", "colour", "size"):
                if getattr(target, attr) is not None:
                    tests.append((attr, getattr(target, attr)))
        else:
            target = subject
    if not tests:
        return Probe("other", target, negated=negated, text=original)
    return Probe("yesno", target, tests=tests, negated=negated, text=original)


# -- candidates and statements --------------------------------------------------------------------
def default_candidates(probe: Probe) -> list[str]:
    """Answer vocabulary proposed from the question type (yes/no questions answer yes or no)."""
    if probe.kind == "colour":
        return list(COLOURS)
    if probe.kind == "shape":
        return list(SHAPES)
    if probe.kind == "count":
        return [str(i) for i in range(0, 7)]
    if probe.kind == "position":
        return list(POSITIONS)
    if probe.kind == "size":
        return list(SIZES)
    return ["yes", "no"]


def candidate_kind(answer: str) -> str | None:
    """Which attribute a free-text candidate answer fills ('red' -> colour), or None."""
    a = answer.strip().lower()
    if a in POSITION_WORDS or a in POSITION_PHRASE or a in POSITION_PHRASE.values() or _COMPOUND_POSITION.search(a):
        return "position"
    c = _canon_word(a) if " " not in a else None
    if c is None:
        return None
    return {"noun": "shape"}.get(c[0], c[0])


def with_value(obj: Obj, attribute: str, value: Any) -> Obj:
    """A copy of ``obj`` with one attribute set from a candidate answer string or value."""
    if attribute == "count":
        v = value if isinstance(value, int) else _NUM.get(str(value).strip().lower(), None)
        if v is None and str(value).strip().isdigit():
            v = int(str(value).strip())
        return replace(obj, count=v if v is not None else obj.count)
    if attribute in ("colour", "shape", "size"):
        c = _canon_word(str(value).split()[-1]) if str(value).strip() else None
        return replace(obj, **{attribute: c[1] if c else str(value).strip().lower()})
    if attribute == "position":
        v = parse_object(str(value)).position or str(value).strip().lower()
        return replace(obj, position=v)
    return obj


def statement(obj: Obj, attribute: str | None = None) -> str:
    """A declarative statement about ``obj`` (the form MacCap scores): 'there is a red circle'.

    Counts read 'there are two circles'; zero reads 'there are no circles'.
    """
    phrase = obj.phrase()
    if obj.count is not None and obj.count != 1:
        return "there are " + phrase
    return "there is " + phrase


def alternatives(obj: Obj, attribute: str, value: Any) -> list[Obj]:
    """Variants of ``obj`` that differ only in ``attribute`` (the asserted one first)."""
    vocab: list[Any] = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "position": POSITIONS,
                        "count": list(range(1, 7))}[attribute]
    values = [value] + [v for v in vocab if v != value]
    return [with_value(obj, attribute, v) for v in values]


# -- scene graphs (ETVA question generation) ------------------------------------------------------
_CLAUSE_SPLIT = re.compile(r"\s*(?:,|;|\bwhile\b|\bthen\b|\band then\b|\bafter that\b|\bwhereas\b|\.)\s*|\s+and\s+")
_MOTION = re.compile(
    r"\b(?P<verb>moves?|moving|goes|going|slides?|sliding|travels?|travell?ing|drifts?|drifting|rises?|rising|"
    r"falls?|falling|appears?|appearing|disappears?|disappearing|vanish(?:es)?|vanishing|turns?|turning|changes?|"
    r"changing|becomes?|becoming|grows?|growing|shrinks?|shrinking)\b(?P<rest>.*)$"
)


def _motion_event(verb: str, rest: str) -> dict[str, Any] | None:
    v = verb.lower()
    words = re.findall(r"[a-z]+", rest.lower())
    if v.startswith(("mov", "go", "slid", "travel", "drift")):
        for w in words:
            if w in DIRECTIONS:
                return {"type": "move", "direction": DIRECTIONS[w]}
        return {"type": "move", "direction": None}
    if v.startswith(("rise", "rising", "ris")):
        return {"type": "move", "direction": "up"}
    if v.startswith("fall"):
        return {"type": "move", "direction": "down"}
    if v.startswith("appear"):
        return {"type": "appear"}
    if v.startswith(("disappear", "vanish")):
        return {"type": "disappear"}
    if v.startswith(("turn", "chang", "becom")):
        for w in words:
            c = _canon_word(w)
            if c and c[0] == "colour":
                return {"type": "turn", "colour": c[1]}
        return None
    if v.startswith("grow"):
        return {"type": "grow"}
    if v.startswith("shrink"):
        return {"type": "shrink"}
    return None


def parse_scene_graph(prompt: str) -> dict[str, Any]:
    """Rule-based scene graph of a prompt: entities (shape, colour, size, count, position),
    spatial relations between them, and motion/events, as plain JSON-able dicts."""
    entities: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    def add_entity(text: str) -> str | None:
        if entities and re.fullmatch(r"\s*(?:it|them|this|that|those|these)\s*", text):
            return entities[-1]["id"]
        obj = parse_object(text)
        if obj.shape is None and obj.colour is None:
            if not re.search(r"\b(shape|object|thing|figure)s?\b", text):
                return None
        # Refer back to an entity already named ("the circle" after "a red circle").
        for e in entities:
            o = e["object"]
            if (obj.shape in (None, o.shape) and obj.colour in (None, o.colour)
                    and re.search(r"\b(the|it|its)\b", text) and not re.search(r"\b(a|an|another)\b", text)):
                return e["id"]
        ent_id = f"e{len(entities) + 1}"
        entities.append({"id": ent_id, "object": obj})
        return ent_id

    text = prompt.lower()
    for clause in filter(None, (c.strip() for c in _CLAUSE_SPLIT.split(text))):
        motion = _MOTION.search(clause)
        head = clause[: motion.start()] if motion else clause
        rel = _split_relation(head)
        if rel:
            left, relation, right = rel
            if re.fullmatch(r"\s*(?:it|them|this|that|those|these)\s*", right):
                b, a = add_entity(right), add_entity(left)  # the pronoun names an earlier entity
            else:
                a, b = add_entity(left), add_entity(right)
            if a and b:
                relations.append({"subject": a, "predicate": relation, "object": b})
            subject = a
        else:
            subject = add_entity(head)
        if motion and subject is None and entities:
            subject = entities[-1]["id"]  # "... and it moves left"
        if motion and subject:
            ev = _motion_event(motion.group("verb"), motion.group("rest"))
            if ev:
                events.append({"subject": subject, **ev})
    return {
        "entities": [{"id": e["id"], **e["object"].to_dict()} for e in entities],
        "relations": relations,
        "events": events,
    }


def graph_objects(graph: dict[str, Any]) -> dict[str, Obj]:
    out = {}
    for e in graph.get("entities", []):
        out[e["id"]] = Obj(shape=e.get("shape"), colour=e.get("colour"), size=e.get("size"), count=e.get("count"),
                           position=e.get("position"))
    return out


def questions_from_graph(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Atomic yes/no questions, one per node attribute, relation and event, with dependencies.

    Each question: {"id", "question", "kind": entity|attribute|count|relation|event, "entity",
    "depends_on": [ids], "temporal": bool}. Attribute, relation and event questions depend on the
    existence question of their entities (a "no" there makes them "no", as in ETVA/DSG).
    """
    objs = graph_objects(graph)
    qs: list[dict[str, Any]] = []
    exist_id: dict[str, str] = {}

    def add(question: str, kind: str, entity: str | None, depends: list[str], temporal: bool = False) -> str:
        qid = f"q{len(qs) + 1}"
        qs.append({"id": qid, "question": question, "kind": kind, "entity": entity, "depends_on": depends,
                   "temporal": temporal})
        return qid

    for eid, obj in objs.items():
        base = Obj(shape=obj.shape)
        noun = obj.shape or "shape"
        if obj.shape is None and obj.colour is not None:
            base = Obj(colour=obj.colour)
            exist_id[eid] = add(f"Is there {Obj(colour=obj.colour).phrase()}?", "entity", eid, [])
        else:
            exist_id[eid] = add(f"Is there {base.phrase()}?", "entity", eid, [])
        dep = [exist_id[eid]]
        if obj.colour and obj.shape:
            add(f"Is the {noun} {obj.colour}?", "attribute", eid, dep)
        if obj.size:
            add(f"Is the {obj.colour + ' ' if obj.colour else ''}{noun} {obj.size}?", "attribute", eid, dep)
        if obj.count is not None and obj.count != 1:
            counted = Obj(shape=obj.shape, colour=obj.colour, count=obj.count)
            add(f"Are there {counted.phrase()}?", "count", eid, dep)
        if obj.position:
            add(f"Is {Obj(shape=obj.shape, colour=obj.colour).name()} {POSITION_PHRASE[obj.position]}?",
                "attribute", eid, dep)
    for r in graph.get("relations", []):
        a, b = objs.get(r["subject"]), objs.get(r["object"])
        if a is None or b is None:
            continue
        add(f"Is {a.name()} {r['predicate']} {b.name()}?", "relation", r["subject"],
            [exist_id[r["subject"]], exist_id[r["object"]]])
    for ev in graph.get("events", []):
        obj = objs.get(ev["subject"])
        if obj is None:
            continue
        name = Obj(shape=obj.shape, colour=obj.colour if ev["type"] != "turn" else None, count=obj.count).name()
        verb = "Do" if obj.count is not None and obj.count > 1 else "Does"
        if ev["type"] == "move" and ev.get("direction"):
            d = ev["direction"]
            where = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}[d]
            text = f"{verb} {name} move {where}?"
        elif ev["type"] == "turn":
            text = f"{verb} {name} turn {ev['colour']}?"
        elif ev["type"] in ("appear", "disappear", "grow", "shrink"):
            text = f"{verb} {name} {ev['type']}?"
        else:
            continue
        add(text, "event", ev["subject"], [exist_id[ev["subject"]]] if ev["type"] != "appear" else [], temporal=True)
    return qs
