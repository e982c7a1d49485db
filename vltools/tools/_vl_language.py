"""The language side of zero-shot VQA and ETVA: spaCy parses of questions, prompts and captions.

A question, prompt or caption is parsed by spaCy's English pipeline (`vltools.models.nlp`) into
entities (noun phrases: the head noun with its compounds, adjectives as attributes, a count, a
position), relations (prepositions between two entities), actions (verbs with their subject, the
entity they go across/over/to, a direction, a new attribute for change verbs, their order) and, for
questions, the question type. There is no list of objects, shapes or colours here: attribute words
are whatever adjectives the text holds, nouns are whatever nouns it holds, and answer vocabularies
come from the caller or from the model's declared world (`vqa.zero_shot`). The only words known
here are closed-class English: numbers, wh-words, spatial prepositions, directions, positions in a
frame, and a few verbs of appearance and change.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

# Closed-class words (grammar, not a world vocabulary).
NUMBERS = {"no": 0, "zero": 0, "one": 1, "a": 1, "an": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5,
           "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "both": 2, "pair": 2}
NUMBER_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
GENERIC = {"object", "thing", "item", "something", "one", "figure", "shape", "picture", "image", "photo", "scene",
           "video", "frame", "anything", "stuff"}
MEDIA = {"image", "picture", "photo", "video", "scene", "frame", "clip"}
POSITION_WORDS = {"left": "left", "right": "right", "top": "top", "upper": "top", "bottom": "bottom",
                  "lower": "bottom", "centre": "centre", "center": "centre", "middle": "centre"}
POSITIONS = ["top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right"]
POSITION_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
                   "centre": "in the centre", "top left": "in the top left", "top right": "in the top right",
                   "bottom left": "in the bottom left", "bottom right": "in the bottom right"}
RELATIONS = {"above": "above", "over": "above", "on top of": "above", "below": "below", "under": "below",
             "underneath": "below", "beneath": "below", "left of": "left of", "to the left of": "left of",
             "right of": "right of", "to the right of": "right of", "next to": "next to", "beside": "next to",
             "near": "next to", "behind": "behind", "in front of": "in front of", "inside": "inside",
             "in": "in", "on": "on", "across": "across", "along": "along", "through": "through"}
RELATION_OPPOSITE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
DIRECTIONS = {"left": "left", "leftward": "left", "leftwards": "left", "right": "right", "rightward": "right",
              "rightwards": "right", "up": "up", "upward": "up", "upwards": "up", "down": "down",
              "downward": "down", "downwards": "down", "top": "up", "bottom": "down"}
DIRECTION_PHRASE = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}
APPEAR = {"appear", "emerge", "arrive", "enter", "show"}
DISAPPEAR = {"disappear", "vanish", "leave", "exit"}
CHANGE = {"turn", "become", "change", "go", "get"}
GROW = {"grow", "expand", "enlarge"}
SHRINK = {"shrink", "contract"}
ORDER_WORDS = {"then", "after", "afterwards", "next", "later", "finally", "before", "first"}
QUESTION_TYPES = ("yesno", "what", "count", "where", "other")
# Nouns that ask for an attribute's value rather than an object ("what colour/size/material is it?").
ATTRIBUTE_DIMENSIONS = {"colour", "color", "size", "material", "pattern", "texture", "shade", "tint"}


@dataclass
class Entity:
    """A noun phrase: head noun (with compounds; '' when generic), attributes, count, position."""

    noun: str = ""
    attributes: list[str] = field(default_factory=list)
    count: int | None = None
    position: str | None = None
    text: str = ""
    plural: bool = False
    id: str = ""

    def phrase(self, *, position: bool = True, attributes: bool = True, noun: str | None = None) -> str:
        """'a brown dog', 'two dogs on the left', 'no dogs'."""
        head = noun if noun is not None else (self.noun or "object")
        n = self.count
        plural = (n is not None and n != 1) or (n is None and self.plural)
        if plural:
            head = pluralise(head)
        words = [*(self.attributes if attributes else []), head]
        body = " ".join(words)
        if n is None:
            text = body if plural else article(body) + " " + body
        else:
            text = f"{NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else n} {body}"
        if position and self.position:
            text += " " + POSITION_PHRASE[self.position]
        return text

    def name(self) -> str:
        """Definite name for questions: 'the brown dog'."""
        head = self.noun or "object"
        if (self.count is not None and self.count > 1) or self.plural:
            head = pluralise(head)
        return "the " + " ".join([*self.attributes, head])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "noun": self.noun or None, "attributes": list(self.attributes), "count": self.count,
                "position": self.position, "text": self.text}


@dataclass
class Action:
    """A verb with its subject entity, its direction/destination, the entity it is about, its order."""

    verb: str
    subject: str
    type: str = "action"  # move | appear | disappear | turn | grow | shrink | action
    direction: str | None = None
    value: str | None = None  # the new attribute of a change ("turns red")
    object: str | None = None
    preposition: str | None = None
    order: int = 0
    text: str = ""
    sequenced: bool = False  # an order word ('then', 'after that', 'next') puts it after the previous action
    index: int = 0


@dataclass
class Parse:
    entities: list[Entity] = field(default_factory=list)
    relations: list[dict[str, str]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def entity(self, eid: str) -> Entity | None:
        return next((e for e in self.entities if e.id == eid), None)


@dataclass
class Question:
    """What a question asks.

    kind: yesno | what | count | where | other. ``target`` is the entity asked about. For yes/no,
    ``subtype`` is presence, attribute, relation or event; ``asserted`` holds the predicate
    attributes ("is the dog brown?" -> ["brown"]) and ``position`` a predicate position. For
    what/which, ``asked`` is the wh-noun ("colour", "animal"; None for "what is ...") and
    ``location`` a position the answer must be at ("what is on the left?").
    """

    kind: str
    text: str
    target: Entity | None = None
    subtype: str | None = None
    asserted: list[str] = field(default_factory=list)
    position: str | None = None
    negated: bool = False
    relation: str | None = None
    other: Entity | None = None
    action: Action | None = None
    asked: str | None = None
    location: str | None = None


def article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def pluralise(noun: str) -> str:
    words = noun.split()
    w = words[-1]
    if w.endswith(("s", "x", "z", "ch", "sh")):
        w += "es"
    elif w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        w = w[:-1] + "ies"
    else:
        w += "s"
    return " ".join([*words[:-1], w])


_CLAUSE_BREAK_POS = ("PUNCT", "CCONJ", "SCONJ")
_SUBJECT_DEPS = ("nsubj", "nsubjpass", "expl")
_PREFIX_POS = ("DET", "NUM", "ADJ", "NOUN", "PROPN", "VERB", "X")
_MAX_REPAIRS = 4
_EXISTENTIAL = ("present", "visible", "shown")  # predicates that ask whether a thing is there, not what it is like
_COMPLEMENT_DEPS = ("acomp", "oprd", "prt", "prep", "advmod", "attr", "xcomp")


def _verb_lemma(word: str, lookups: Any) -> tuple[str, bool] | None:
    """(lemma, third-person singular?) when ``word`` can be a present-tense verb by spaCy's rule
    lemmatizer tables (WordNet's verb lexicon): 'moves' -> ('move', True), 'move' -> ('move', False)."""
    index = lookups.get_table("lemma_index")["verb"]
    w = word.lower()
    if w.endswith("s"):
        for old, new in lookups.get_table("lemma_rules")["verb"]:
            if old.endswith("s") and w.endswith(old) and (lemma := w[:len(w) - len(old)] + new) in index:
                return lemma, True
    return (w, False) if w in index else None


def _segments(doc: Any) -> list[list[Any]]:
    """Clause-sized runs of tokens, split at punctuation, conjunctions and order words ('then')."""
    out: list[list[Any]] = [[]]
    for t in doc:
        if t.pos_ in _CLAUSE_BREAK_POS or t.lower_ in ORDER_WORDS:
            out.append([])
        else:
            out[-1].append(t)
    return [s for s in out if s]


def _plural_subject(s: Any) -> bool:
    """A plural noun phrase: a number above one, or a plural tag with no singular determiner ('a broccoli/NNS')."""
    return (s.tag_ in ("NNS", "NNPS") and not _singular_det(s)) or any(
        c.dep_ == "nummod" and NUMBERS.get(c.lower_, 2 if c.text.isdigit() and c.text != "1" else 1) > 1
        for c in s.children)


def _singular_det(s: Any) -> bool:
    return any(c.dep_ == "det" and (c.lower_ in ("a", "an") or "Sing" in c.morph.get("Number")) for c in s.children)


def _agrees(verb: Any, subj: Any) -> bool:
    """Subject-verb agreement of a present-tense verb with a nominal subject: no VBP with a singular
    noun, no VBZ with a plural one (a verb-tagged subject is no subject)."""
    if subj.dep_ != "expl" and subj.pos_ not in ("NOUN", "PROPN", "PRON", "NUM", "DET"):
        return False
    if verb.tag_ == "VBP" and subj.tag_ in ("NN", "NNP") and not _plural_subject(subj):
        return False
    return not (verb.tag_ == "VBZ" and _plural_subject(subj))


def _has_clause(seg: list[Any]) -> bool:
    """Whether a segment has a finite verb (or auxiliary) with a subject it agrees with, in the segment."""
    idx = {t.i for t in seg}
    if any(t.pos_ == "VERB" and t.tag_ in ("VBZ", "VBP") and t.dep_ in ("nsubj", "nsubjpass") for t in seg):
        return False  # a finite verb as a subject ('the cat faces/VBZ turn red') is a tagging slip
    return any(t.pos_ in ("VERB", "AUX") and any(c.dep_ in _SUBJECT_DEPS and c.i in idx and _agrees(t, c)
                                                   for c in t.children) for t in seg)


def _noun_subject_of_noun(t: Any) -> bool:
    """A noun labelled the subject of the noun right after it, itself a subject ('a cow/nsubj face/nsubj
    moves'): a slip for a compound, since a noun takes no subject."""
    h = t.head
    return t.dep_ == "nsubj" and t.pos_ in ("NOUN", "PROPN", "ADJ") and h.pos_ in ("NOUN", "PROPN") and \
        h.dep_ in ("nsubj", "nsubjpass") and t.i + 1 == h.i


def _doc(text: str) -> Any:
    """The parse of ``text``, with its verbless clauses re-read.

    The small English model often tags a present-tense verb as a noun after a noun phrase ("a teapot
    moves to the left" -> the compound noun "teapot moves"; "a cat face moves" -> the verb "face" with
    the object "moves"), and the clause then has no action. Rule (grammar, no word list): a clause
    (the tokens between punctuation, conjunctions and order words) with no verb that has an agreeing
    subject is re-read with its predicate made explicit. Candidates are the tokens that spaCy's verb
    lexicon (the rule lemmatizer's WordNet verb index) reads as a present-tense form, preceded within
    the clause only by noun-phrase words; from the rightmost, the text is parsed again with the
    auxiliary 'does' (3rd person singular, '-s' form) or 'do' (base form) before the candidate's
    lemma ("a teapot does move to the left"), and the reading is kept when that verb gets a noun
    subject that agrees with the auxiliary. The repaired parse keeps the original words: tags,
    lemmas and dependencies come from the re-read, with the inserted auxiliary removed.
    """
    return _repaired(text)


@functools.lru_cache(maxsize=4096)
def _repaired(text: str) -> Any:
    from spacy.tokens import Doc

    from vltools.models.nlp import get_nlp, parse

    doc = parse(text)
    asked = _do_question_reread(doc)
    if asked is not None:
        return asked
    if all(_has_clause(seg) for seg in _segments(doc)) and not any(_noun_subject_of_noun(t) for t in doc):
        return doc
    nlp = get_nlp()
    lookups = nlp.get_pipe("lemmatizer").lookups
    words, spaces = [t.text for t in doc], [t.whitespace_ for t in doc]
    inserted: list[int] = []  # positions (in the rewritten words) of the inserted auxiliaries
    verbs: dict[int, tuple[str, bool]] = {}  # rewritten position -> (lemma, 3rd person singular)
    subjects: set[int] = set()  # rewritten positions of the re-read verbs' subjects
    cur, tried = doc, set()
    for _ in range(_MAX_REPAIRS):
        seg = next((s for s in _segments(cur) if not _has_clause(s) and (s[0].i, s[-1].i) not in tried), None)
        if seg is None:
            break
        tried.add((seg[0].i, seg[-1].i))
        cands = []
        for k, t in enumerate(seg):
            if t.pos_ not in _PREFIX_POS:
                break
            if k and seg[0].pos_ != "VERB" and (v := _verb_lemma(t.text, lookups)) and \
                    any(p.pos_ in ("NOUN", "PROPN", "ADJ", "VERB", "X") for p in seg[:k]):
                cands.append((t.i, v))
        for i, (lemma, third) in reversed(cands):
            w2 = [*words[:i], "does" if third else "do", lemma, *words[i + 1:]]
            s2 = [*spaces[:i], " ", *spaces[i:]]
            again = nlp(Doc(nlp.vocab, words=w2, spaces=s2))
            verb, aux = again[i + 1], again[i]
            subj = next((c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass")), None)
            if verb.pos_ == "VERB" and aux.head.i == verb.i and subj is not None and \
                    subj.pos_ in ("NOUN", "PROPN", "ADJ") and (
                    not _plural_subject(subj) if third else not _singular_det(subj)):
                inserted = [j + (j >= i) for j in inserted] + [i]
                verbs = {j + (j >= i): v for j, v in verbs.items()} | {i + 1: (lemma, third)}
                subjects = {j + (j >= i) for j in subjects} | {subj.i}
                words, spaces, cur = w2, s2, again
                break
    if not inserted and not any(_noun_subject_of_noun(t) for t in doc):
        return doc
    keep = [j for j in range(len(cur)) if j not in inserted]
    new_of = {j: n for n, j in enumerate(keep)}

    def head(j: int) -> int:
        while j in inserted:
            j = cur[j].head.i
        return new_of[j]

    tags, pos, lemmas, morphs, deps = [], [], [], [], []
    for j in keep:
        t = cur[j]
        deps.append("compound" if _noun_subject_of_noun(t) or (t.dep_ == "nsubj" and t.i < t.head.i and
                                                                t.head.i in subjects) else t.dep_)
        if j in subjects and t.pos_ == "ADJ":  # a subject head is nominal ('a croissant/JJ does move')
            tags.append("NN")
            pos.append("NOUN")
            lemmas.append(t.lower_)
            morphs.append("Number=Sing")
        elif j in verbs:
            lemma, third = verbs[j]
            tags.append("VBZ" if third else "VBP")
            pos.append("VERB")
            lemmas.append(lemma)
            morphs.append("Number=Sing|Person=3|Tense=Pres|VerbForm=Fin" if third else "Tense=Pres|VerbForm=Fin")
        else:
            tags.append(t.tag_)
            pos.append(t.pos_)
            lemmas.append(t.lemma_)
            morphs.append(str(t.morph))
    return Doc(nlp.vocab, words=[t.text for t in doc], spaces=[t.whitespace_ for t in doc], tags=tags, pos=pos,
               lemmas=lemmas, morphs=morphs, heads=[head(cur[j].head.i) for j in keep],
               deps=deps)


def _do_question_reread(doc: Any) -> Any:
    """A do-question whose main verb was read as part of the subject ("Does the poodle move to the left?"
    -> the compound noun "poodle move" as the subject of "Does"; "Does the teapot turn yellow?" -> the
    subject "teapot turn" of the verb "yellow"), re-read as the declarative with the
    auxiliary moved before the verb ("the poodle does move to the left"); None when there is nothing to
    repair. Same grammar as `_doc`: candidates are the base-form verbs of spaCy's verb lexicon right after
    noun-phrase words of the subject; the reading is kept when the candidate becomes a verb with the moved
    auxiliary and a nominal subject. The returned parse keeps the question's words in their order."""
    from spacy.tokens import Doc

    from vltools.models.nlp import get_nlp

    if len(doc) < 3 or doc[0].lemma_.lower() != "do":
        return None
    nlp = get_nlp()
    lookups = nlp.get_pipe("lemmatizer").lookups
    verb0 = doc[0].head
    v0 = _verb_lemma(verb0.text, lookups) if verb0.i != 0 and verb0.dep_ == "ROOT" and \
        verb0.pos_ in ("NOUN", "PROPN") else None
    if v0 is not None and not v0[1] and any(c.dep_ == "nsubj" and c.pos_ in ("NOUN", "PROPN") and c.i < verb0.i
                                            for c in verb0.children):
        # the structure is right, only the tag is not: the auxiliary's head, with a noun subject, is a
        # base-form verb tagged as a noun ("Does the red circle move/NN to the left?")
        return Doc(doc.vocab, words=[t.text for t in doc], spaces=[t.whitespace_ for t in doc],
                   tags=["VB" if t.i == verb0.i else t.tag_ for t in doc],
                   pos=["VERB" if t.i == verb0.i else t.pos_ for t in doc],
                   lemmas=[v0[0] if t.i == verb0.i else t.lemma_ for t in doc],
                   morphs=["VerbForm=Inf" if t.i == verb0.i else str(t.morph) for t in doc],
                   heads=[t.head.i for t in doc], deps=[t.dep_ for t in doc])
    if verb0.pos_ == "VERB" and verb0.i != 0 and not (
            verb0.lower_ in lookups.get_table("lemma_index")["adj"] and
            any(c.dep_ in ("nsubj", "nsubjpass") and c.pos_ in ("NOUN", "PROPN") and
                _verb_lemma(c.text, lookups) for c in verb0.children)):
        # a verb with its auxiliary; re-read only when the verb can be an adjective and its subject's
        # head can be a verb ("Does the teapot turn/nsubj yellow/VERB?": "turn" the verb, "yellow" its complement)
        return _mend_question_subject(doc)
    seg = next(iter(_segments(doc[1:].as_doc())), [])
    cands = []
    for k, t in enumerate(seg):
        if t.pos_ not in _PREFIX_POS:
            break
        v = _verb_lemma(t.text, lookups)
        if k and v is not None and not v[1] and any(p.pos_ in ("NOUN", "PROPN", "ADJ", "X") for p in seg[:k]):
            cands.append(t.i + 1)  # index in doc
    words, spaces = [t.text for t in doc], [t.whitespace_ or " " for t in doc]
    readings = []
    for i in reversed(cands):
        order = [*range(1, i), 0, *range(i, len(doc))]  # the re-read's token n is the question's order[n]
        again = nlp(Doc(nlp.vocab, words=[words[j].lower() if j == 0 else words[j] for j in order],
                        spaces=[spaces[j] for j in order]))
        verb, aux = again[i], again[i - 1]
        subj = next((c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass")), None)
        if verb.pos_ != "VERB" or aux.head.i != verb.i or subj is None or subj.pos_ not in ("NOUN", "PROPN", "ADJ"):
            continue
        # a reading whose verb takes a complement after it ("turn yellow", "move to the left", "move up")
        # outranks one that leaves the verb last ("the teapot turn does yellow")
        readings.append((any(c.i > verb.i and (c.dep_ in _COMPLEMENT_DEPS or c.dep_ in ("dobj", "amod") and
                                               c.pos_ in ("ADJ", "NOUN")) for c in verb.children), i, order, again))
    for _, _i, order, again in sorted(readings, key=lambda r: (not r[0], -r[1]))[:1]:
        at = {j: n for n, j in enumerate(order)}  # question index -> re-read index
        toks = [again[at[j]] for j in range(len(doc))]
        out = Doc(nlp.vocab, words=words, spaces=[t.whitespace_ for t in doc], tags=[t.tag_ for t in toks],
                  pos=[t.pos_ for t in toks], lemmas=[t.lemma_ for t in toks], morphs=[str(t.morph) for t in toks],
                  heads=[order[t.head.i] for t in toks], deps=[t.dep_ for t in toks])
        return _mend_question_subject(out) or out
    return None


def _mend_question_subject(doc: Any) -> Any:
    """A do-question's verb with no nominal subject ("Does the gorilla/compound move", "Does the
    otter/ADJ turn red"): the rightmost noun-phrase word before the verb among its dependents becomes its
    noun subject. None when the parse needs no mending."""
    from spacy.tokens import Doc

    verb = doc[0].head
    if verb.pos_ != "VERB" or verb.i == 0:
        return None
    subj = next((c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass")), None)
    if subj is None:
        subj = next((c for c in reversed(list(verb.lefts)) if c.i > 0 and c.pos_ in ("NOUN", "PROPN", "ADJ")
                     and c.dep_ in ("compound", "amod", "npadvmod", "dobj", "dep")), None)
    elif subj.pos_ != "ADJ":
        return None
    if subj is None:
        return None
    nominal = subj.pos_ == "ADJ"
    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[t.whitespace_ for t in doc],
               tags=["NN" if t.i == subj.i and nominal else t.tag_ for t in doc],
               pos=["NOUN" if t.i == subj.i and nominal else t.pos_ for t in doc],
               lemmas=[t.lower_ if t.i == subj.i and nominal else t.lemma_ for t in doc],
               morphs=["Number=Sing" if t.i == subj.i and nominal else str(t.morph) for t in doc],
               heads=[t.head.i for t in doc], deps=["nsubj" if t.i == subj.i else t.dep_ for t in doc])


def _position_of(tokens: list[Any]) -> str | None:
    """A frame position named by a prepositional phrase's words ('in the top left', 'on the left')."""
    words = [POSITION_WORDS.get(t.lower_) for t in tokens]
    words = [w for w in words if w]
    if not words:
        return None
    if len(words) >= 2 and words[0] in ("top", "bottom") and words[1] in ("left", "right"):
        return f"{words[0]} {words[1]}"
    return words[0]


def _is_position_noun(tok: Any) -> bool:
    return tok.lower_ in POSITION_WORDS


def _chunk_entity(span: Any) -> Entity:
    """An Entity from a noun chunk: compounds + head as the noun, adjectives as attributes."""
    root = span.root
    count: int | None = None
    attrs: list[str] = []
    noun_words: list[str] = []
    for t in span:
        if t.dep_ == "nummod" or (t.pos_ == "NUM" and t.i < root.i):
            count = NUMBERS.get(t.lower_, int(t.text) if t.text.isdigit() else None)
        elif t.dep_ == "det" and t.lower_ == "no":
            count = 0
        elif t.lower_ in ("how", "many", "what", "which", "whose") or t.lower_ in ORDER_WORDS:
            continue
        elif t.i < root.i and t.dep_ in ("amod", "advmod", "acomp") or (t.i < root.i and t.pos_ == "ADJ"):
            if t.lower_ not in NUMBERS:
                attrs.append(t.lower_)
        elif t.i < root.i and t.dep_ in ("compound",) or (t.i < root.i and t.pos_ in ("NOUN", "PROPN")):
            noun_words.append(t.lower_)
        elif t.i < root.i and t.pos_ == "VERB" and t.dep_ in ("amod", "compound"):
            attrs.append(t.lower_)
    plural = root.tag_ in ("NNS", "NNPS") or (count is not None and count > 1)
    head = root.lemma_.lower() if plural and root.tag_ in ("NNS", "NNPS") else root.lower_
    if head in GENERIC and not noun_words:
        noun = ""
    else:
        noun = " ".join([*noun_words, head])
    return Entity(noun=noun, attributes=attrs, count=count, text=span.text, plural=plural)


def _chunks(doc: Any) -> list[Any]:
    """Noun chunks that name things (not frame positions, media or pronouns), plus nouns the chunker
    missed ('is a rectangle present?' parses 'rectangle' as an adverbial noun)."""
    out = []
    covered = {t.i for ch in doc.noun_chunks for t in ch}
    extra = []
    for t in doc:
        if (t.pos_ in ("NOUN", "PROPN") or _determined_argument(t)) and t.i not in covered and t.dep_ != "compound":
            mods = [c.i for c in t.children if c.dep_ in ("det", "amod", "compound", "nummod") and c.i < t.i]
            extra.append(doc[min([*mods, t.i]):t.i + 1])
    for ch in sorted([*doc.noun_chunks, *extra], key=lambda c: c.start):
        root = ch.root
        if root.pos_ == "PRON" or root.lower_ in ("what", "which", "who"):
            continue
        if _is_position_noun(root) or root.lower_ in MEDIA:
            continue
        out.append(ch)
    return out


def _determined_argument(tok: Any) -> bool:
    """An argument the tagger read as an adjective or a participle but that an article or an adjectival or
    numeral modifier determines: a nominal ('is there a croissant/JJ?', 'is there a sled/VBN?', 'is there a
    red rose/VB?', 'are there two stew/JJ?'); only a noun phrase takes 'a'/'an', an adjectival modifier or a
    numeral there."""
    if tok.pos_ not in ("ADJ", "VERB"):
        return False
    before = [c for c in tok.children if c.i < tok.i]
    if any(c.dep_ == "nummod" for c in before):  # 'are there two stew/JJ?': a numeral counts things
        return True
    return tok.dep_ in ("attr", "nsubj", "dobj", "pobj") and any(
        c.dep_ == "det" and c.lower_ in ("a", "an") or c.dep_ == "amod" for c in before)


def parse_text(text: str) -> Parse:
    """Entities, relations and actions of a prompt or caption (see the module docstring)."""
    doc = _doc(text)
    p = Parse()
    by_root: dict[int, str] = {}

    def add(ch: Any) -> str:
        e = _chunk_entity(ch)
        # A definite repeat ('the dog' after 'a brown dog') refers to the earlier entity.
        det = next((t.lower_ for t in ch if t.dep_ == "det"), "")
        for old in p.entities:
            if det in ("the", "this", "that", "its") and e.noun and e.noun == old.noun and \
                    all(a in old.attributes for a in e.attributes):
                by_root[ch.root.i] = old.id
                return old.id
        e.id = f"e{len(p.entities) + 1}"
        p.entities.append(e)
        by_root[ch.root.i] = e.id
        return e.id

    for ch in _chunks(doc):
        add(ch)
    # Positions and relations: a preposition attached to an entity (or to its verb).
    for tok in doc:
        if tok.dep_ != "prep" and tok.pos_ != "ADP":
            continue
        pobj = next((c for c in tok.children if c.dep_ == "pobj"), None)
        head = tok.head
        subj = by_root.get(head.i)
        if subj is None and head.pos_ in ("VERB", "AUX") or head.dep_ == "ROOT" and subj is None:
            s = next((c for c in head.children if c.dep_ in ("nsubj", "nsubjpass", "expl", "attr")
                      and c.i in by_root), None)
            subj = by_root.get(s.i) if s is not None else None
        if pobj is None:
            continue
        phrase = _relation_phrase(tok, pobj)
        if _is_position_noun(pobj):
            of = next((c for c in pobj.children if c.dep_ == "prep" and c.lower_ == "of"), None)
            of_obj = next((c for c in of.children if c.dep_ == "pobj"), None) if of is not None else None
            if of_obj is not None and of_obj.i in by_root and subj and pobj.lower_ in ("left", "right"):
                p.relations.append({"subject": subj, "predicate": f"{pobj.lower_} of", "object": by_root[of_obj.i]})
                continue
            if tok.lower_ in ("to", "towards", "toward"):
                continue  # a direction of motion, not a position
            pos = _position_of([*pobj.subtree])
            if subj and pos and not (head.pos_ == "VERB" and head.lemma_ not in ("be", "sit", "stand", "lie")):
                ent = p.entity(subj)
                if ent and ent.position is None and phrase not in ("left of", "right of"):
                    ent.position = pos
            continue
        obj = by_root.get(pobj.i)
        if subj and obj and subj != obj and phrase:
            p.relations.append({"subject": subj, "predicate": phrase, "object": obj})
    _actions(doc, p, by_root)
    return p


def _relation_phrase(prep: Any, pobj: Any) -> str | None:
    """Canonical relation of a preposition: 'to the left of' -> 'left of'."""
    w = prep.lower_
    if w == "of" and prep.head.lower_ in ("left", "right", "top", "front"):
        base = prep.head
        words = [t.lower_ for t in base.subtree if t.i <= prep.i and t.i >= base.i]
        grand = base.head
        if grand.dep_ == "pobj" and grand.head.lower_ in ("to", "on", "in"):
            pass
        key = " ".join(words)
        return RELATIONS.get(key, RELATIONS.get(base.lower_ + " of"))
    nxt = prep.nbor(1) if prep.i + 1 < len(prep.doc) else None
    if w == "next" and nxt is not None and nxt.lower_ == "to":
        return "next to"
    return RELATIONS.get(w, w if prep.pos_ == "ADP" else None)


def _actions(doc: Any, p: Parse, by_root: dict[int, str]) -> None:
    order = 0
    for tok in doc:
        is_verb = tok.pos_ == "VERB" or (tok.dep_ in ("ROOT", "ccomp", "conj") and tok.pos_ == "NOUN" and
                                         any(c.dep_ == "nsubj" for c in tok.children))
        if not is_verb or tok.dep_ in ("amod", "aux", "auxpass"):
            continue
        subj_tok = next((c for c in tok.children if c.dep_ in ("nsubj", "nsubjpass")), None)
        if subj_tok is None and tok.dep_ == "conj":
            subj_tok = next((c for c in tok.head.children if c.dep_ in ("nsubj", "nsubjpass")), None)
        if subj_tok is None or subj_tok.i not in by_root:
            if subj_tok is not None and subj_tok.pos_ == "PRON" and p.entities:
                subject = p.entities[-1].id
            else:
                continue
        else:
            subject = by_root[subj_tok.i]
        lemma = tok.lemma_.lower()
        act = Action(verb=lemma, subject=subject, order=order, text=" ".join(t.text for t in tok.subtree),
                     index=tok.i)
        if p.actions:
            prev = p.actions[-1].index
            act.sequenced = any(t.lower_ in ORDER_WORDS - {"before", "first"} for t in doc[prev + 1:tok.i + 1])
        order += 1
        words = [c for c in tok.subtree if c.i > tok.i]
        # direction: particle/adverb ('moves up', 'moves left') or 'to/towards the left'
        for c in tok.children:
            if c.dep_ in ("prt", "advmod", "npadvmod", "dobj", "advcl", "acomp", "attr") and c.lower_ in DIRECTIONS:
                act.direction = DIRECTIONS[c.lower_]
            if c.dep_ == "prep":
                pobj = next((g for g in c.children if g.dep_ == "pobj"), None)
                if pobj is None:
                    continue
                if c.lower_ in ("to", "towards", "toward") and pobj.lower_ in DIRECTIONS:
                    act.direction = DIRECTIONS[pobj.lower_]
                elif pobj.i in by_root and act.object is None:
                    act.object, act.preposition = by_root[pobj.i], c.lower_
            if c.dep_ in ("dobj",) and c.i in by_root and act.object is None:
                act.object = by_root[c.i]
        nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
        if act.direction is None and nxt is not None and nxt.lower_ in DIRECTIONS and \
                nxt.pos_ in ("ADV", "ADP", "PART", "ADJ") and not any(c.dep_ == "pobj" for c in nxt.children):
            # 'the car drives right then ...': the parser may hang the adverb on the next clause's word.
            act.direction = DIRECTIONS[nxt.lower_]
        if lemma in APPEAR:
            act.type = "appear"
        elif lemma in DISAPPEAR:
            act.type = "disappear"
        elif lemma in GROW:
            act.type = "grow"
        elif lemma in SHRINK:
            act.type = "shrink"
        elif lemma in CHANGE and (val := next(
                (c for c in tok.children if c.i > tok.i and (c.dep_ in ("acomp", "oprd", "attr", "dobj", "xcomp")
                 and c.pos_ in ("ADJ", "NOUN", "VERB") or c.dep_ in ("advmod", "amod") and c.pos_ == "ADJ")
                 and c.lower_ not in DIRECTIONS), None)) is not None:
            act.type, act.value = "turn", val.lower_
        elif act.direction is not None or lemma in ("move", "go", "slide", "travel", "drift", "roll", "fly"):
            act.type = "move"
        if act.type in ("appear", "disappear"):
            act.direction = None
            pos = _position_of([w for w in words if w.lower_ in POSITION_WORDS])
            ent = p.entity(subject)
            if pos and ent is not None and ent.position is None:
                ent.position = pos
        p.actions.append(act)


# -- questions ----------------------------------------------------------------------------------
_WH = {"what", "which"}


def parse_question(question: str) -> Question:
    """Classify a question and extract what it asks about (kind 'other' when unsure)."""
    text = re.sub(r"\s+", " ", question.strip())
    q = text.rstrip("?.! ")
    doc = _doc(q)
    words = [t.lower_ for t in doc]
    if not words:
        return Question("other", text)
    first = words[0]
    parse = parse_text(q)
    ents = parse.entities
    negated = any(t.dep_ == "neg" for t in doc)
    if first == "how" and len(words) > 1 and words[1] in ("many", "much"):
        target = ents[0] if ents else Entity()
        target.count = None
        return Question("count", text, target=target)
    if first == "where":
        return Question("where", text, target=ents[0] if ents else None)
    if first in _WH:
        asked = None
        if len(doc) > 1 and doc[1].pos_ in ("NOUN", "PROPN") and doc[1].dep_ != "ROOT" or \
                len(doc) > 1 and doc[0].dep_ == "det":
            asked = doc[1].lemma_.lower()
        rest = [e for e in ents if not (asked and e.noun == asked and e.text.lower().startswith(first))]
        if asked is None:  # 'what is the colour of the circle?'
            dim = next((e for e in rest if e.noun in ATTRIBUTE_DIMENSIONS), None)
            if dim is not None:
                asked = dim.noun
                rest = [e for e in rest if e is not dim]
        location = None
        loc_tokens = [t for t in doc if _is_position_noun(t) and t.dep_ == "pobj"]
        if loc_tokens:
            location = _position_of([*loc_tokens[0].head.subtree])
        if asked in ("colour", "color"):
            asked = "colour"
        return Question("what", text, target=rest[0] if rest else None, asked=asked, location=location)
    aux = doc[0].lemma_.lower() in ("be", "do", "have", "can") or doc[0].pos_ == "AUX"
    if not aux:
        return Question("other", text)
    if doc[0].lemma_ == "be" and words[1:2] != ["there"]:
        read = _copula_reread(doc)
        if read is not None:
            return Question("yesno", text, target=read[0], subtype="attribute", asserted=[read[1]], negated=negated)
    # Yes/no. Events first: a verb other than be/have/contain with an entity subject.
    media_subject = any(t.dep_ in ("nsubj",) and t.lower_ in MEDIA for t in doc)
    for act in parse.actions:
        if act.verb in ("contain", "show", "have", "include", "be", "depict") or media_subject:
            continue
        ent = parse.entity(act.subject)
        return Question("yesno", text, target=ent, subtype="event", action=act, negated=negated)
    if not ents:
        return Question("other", text, negated=negated)
    target = ents[0]
    if target.count == 0:
        target.count = None
        negated = not negated
    if parse.relations:
        r = parse.relations[0]
        return Question("yesno", text, target=parse.entity(r["subject"]), subtype="relation",
                        relation=r["predicate"], other=parse.entity(r["object"]), negated=negated)
    existential = (len(words) > 1 and words[1] == "there") or media_subject or any(
        t.lower_ in _EXISTENTIAL for t in doc)
    # predicate attributes: 'is the dog brown?', 'is the dog on the left?'
    preds = [t.lower_ for t in doc if t.dep_ in ("acomp", "oprd") or (t.dep_ == "attr" and t.pos_ == "ADJ")]
    preds = [w for w in preds if w not in _EXISTENTIAL]
    if not existential and (preds or target.position):
        pos = target.position
        target.position = None if not preds else target.position
        return Question("yesno", text, target=target, subtype="attribute", asserted=preds,
                        position=pos if not preds else None, negated=negated)
    return Question("yesno", text, target=target, subtype="presence", negated=negated)


def _copula_reread(doc: Any) -> tuple[Entity, str] | None:
    """'Is the dog brown?' as (the dog, 'brown'), or None. The tagger often reads a copular question's
    predicate adjective as a noun or a verb ('the dog brown' as one noun phrase, 'purple' as the main verb),
    so the question is also read as the statement 'the dog is brown' (declaratives parse more reliably):
    when its last word is then a predicate adjective and everything between the copula and that word is
    exactly one noun phrase, that phrase is the subject and the adjective the asserted attribute."""
    rest = [t.text for t in doc[1:] if not t.is_punct]
    if len(rest) < 2 or rest[-1].lower() in _EXISTENTIAL:
        return None
    statement = _doc(f"{' '.join(rest[:-1])} {doc[0].text.lower()} {rest[-1]}")
    last = statement[-1]
    if not (last.dep_ == "acomp" or last.dep_ == "attr" and last.pos_ == "ADJ"):
        return None
    subject = parse_text(" ".join(rest[:-1]))
    if len(subject.entities) != 1 or subject.relations or subject.actions or not subject.entities[0].noun or \
            (subject.entities[0].text or "").lower() != " ".join(rest[:-1]).lower():
        return None
    return subject.entities[0], last.lower_


# -- scene graphs and atomic questions (ETVA) ------------------------------------------------------
def scene_graph(prompt: str) -> dict[str, Any]:
    """A JSON-able scene graph of a prompt: entities, relations, events (see `vltools.schemas.SceneGraph`)."""
    p = parse_text(prompt)
    events = []
    for a in p.actions:
        events.append({"subject": a.subject, "type": a.type, "verb": a.verb, "direction": a.direction,
                       "value": a.value, "object": a.object, "preposition": a.preposition, "order": a.order,
                       "after_previous": a.sequenced})
    return {"entities": [e.to_dict() for e in p.entities], "relations": p.relations, "events": events}


def graph_entities(graph: dict[str, Any]) -> dict[str, Entity]:
    out = {}
    for e in graph.get("entities", []):
        out[e["id"]] = Entity(noun=e.get("noun") or "", attributes=list(e.get("attributes") or []),
                              count=e.get("count"), position=e.get("position"), id=e["id"])
    return out


def _third(ent: Entity) -> tuple[str, str]:
    plural = (ent.count is not None and ent.count > 1) or ent.plural
    return ("Do", "Are") if plural else ("Does", "Is")


def questions_from_graph(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Atomic yes/no questions, one per entity, attribute, count, position, relation, event and
    order of events, with dependencies (an attribute question depends on its entity's existence)."""
    ents = graph_entities(graph)
    qs: list[dict[str, Any]] = []
    exist: dict[str, str] = {}

    def add(text: str, kind: str, entity: str | None, depends: list[str], temporal: bool = False) -> str:
        qid = f"q{len(qs) + 1}"
        qs.append({"id": qid, "question": text, "kind": kind, "entity": entity, "depends_on": depends,
                   "temporal": temporal})
        return qid

    appearing = {ev["subject"] for ev in graph.get("events", []) if ev.get("type") == "appear"}
    for eid, e in ents.items():
        if not e.noun:
            continue
        base = Entity(noun=e.noun, plural=e.plural and e.count is None)
        _, be = _third(base)
        exist[eid] = add(f"{be} there {base.phrase()}?", "entity", eid, [], temporal=eid in appearing)
        dep = [exist[eid]]
        for a in e.attributes:
            add(f"{_third(e)[1]} {Entity(noun=e.noun, plural=e.plural or bool(e.count and e.count > 1)).name()} "
                f"{a}?", "attribute", eid, dep)
        if e.count is not None and e.count != 1:
            add(f"Are there {Entity(noun=e.noun, attributes=e.attributes, count=e.count).phrase()}?", "count", eid,
                dep)
        if e.position:
            add(f"{_third(e)[1]} {Entity(noun=e.noun, attributes=e.attributes).name()} "
                f"{POSITION_PHRASE[e.position]}?", "attribute", eid, dep)
    for r in graph.get("relations", []):
        a, b = ents.get(r["subject"]), ents.get(r["object"])
        if a is None or b is None or r["subject"] not in exist or r["object"] not in exist:
            continue
        add(f"{_third(a)[1]} {a.name()} {r['predicate']} {b.name()}?", "relation", r["subject"],
            [exist[r["subject"]], exist[r["object"]]])
    event_q: list[tuple[dict, str]] = []
    for ev in graph.get("events", []):
        e = ents.get(ev["subject"])
        if e is None or ev["subject"] not in exist:
            continue
        do, _ = _third(e)
        name = Entity(noun=e.noun, attributes=[] if ev.get("type") == "turn" else e.attributes,
                      count=e.count).name()
        deps = [exist[ev["subject"]]] if ev.get("type") != "appear" else []
        verb = ev.get("verb") or ev.get("type")
        t = ev.get("type")
        if t == "turn" and ev.get("value"):
            text = f"{do} {name} turn {ev['value']}?"
        elif t in ("appear", "disappear", "grow", "shrink"):
            text = f"{do} {name} {verb}?"
        else:
            tail = ""
            if ev.get("object") and ev["object"] in ents and ev["object"] in exist:
                tail = f" {ev.get('preposition') or ''} {ents[ev['object']].name()}".replace("  ", " ")
                deps = deps + [exist[ev["object"]]]
            text = f"{do} {name} {verb}{tail}?"
        plain_motion = t == "move" and verb in ("move", "go") and ev.get("direction") and not ev.get("object")
        qid = deps[0] if plain_motion and deps else None
        if not plain_motion:
            qid = add(text, "event", ev["subject"], deps, temporal=True)
        if ev.get("direction"):
            qid = add(f"{do} {name} {'move' if verb in ('move', 'go') else verb} "
                      f"{DIRECTION_PHRASE[ev['direction']]}?", "event", ev["subject"], [qid] if qid else [],
                      temporal=True)
        event_q.append((ev, qid))
    for (a, qa), (b, qb) in zip(event_q, event_q[1:], strict=False):
        if not b.get("after_previous") or qa is None or qb is None:
            continue
        ea, eb = ents[a["subject"]], ents[b["subject"]]
        add(f"Does {_event_clause(a, ea)} before {_event_clause(b, eb)}?", "order", a["subject"], [qa, qb],
            temporal=True)
    return qs


def _event_clause(ev: dict[str, Any], e: Entity) -> str:
    name = Entity(noun=e.noun).name()
    verb = ev.get("verb") or ev.get("type")
    if ev.get("type") == "turn" and ev.get("value"):
        return f"{name} turn {ev['value']}"
    if ev.get("direction"):
        return f"{name} {verb} {DIRECTION_PHRASE[ev['direction']]}"
    return f"{name} {verb}"
