"""Numbers, years and dates as intervals, compared by the granularity and tolerance the text states.

"1990" is the year 1990 exactly; "the 2030s" is 2030-2039, "mid-century" 2040-2060; "about 8 inches"
is 7.2-8.8 inches, "more than 5%" is (5, inf). The natural-logic relation between an evidence
quantity and a claim quantity follows from the intervals: equal = equivalence, the evidence's
inside the claim's = forward entailment, the claim's inside the evidence's = reverse entailment,
disjoint = alternation (only when both describe the same thing: see ``same_thing``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

_INF = math.inf
_ORD = r"(\d{1,2})(?:st|nd|rd|th)"
_PART = {"early": (0.0, 0.3), "mid": (0.4, 0.6), "middle": (0.4, 0.6), "late": (0.7, 1.0), "end": (0.9, 1.0)}
_CENTURY = re.compile(
    rf"\b(?:(?:the\s+)?(early|mid|middle|late|end)(?:[- ]|\s+of\s+the\s+)(?:{_ORD}[- ])?"
    rf"|(?:the\s+)?{_ORD}[- ])century\b",
    re.I,
)
_DECADE = re.compile(r"\b(?:(early|mid|late)[- ])?(\d{3})0s\b", re.I)
_NUMBER = re.compile(
    r"(?<![\w.])(~)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s*(thousand|million|billion|trillion))?(\s*%|\s+per\s?cent\b)?",
    re.I,
)
_WORD_NUMBERS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(list(_WORD_NUMBERS)[2:]) + r")\b(?=\s+[a-z])", re.I)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_YEAR_BEFORE = frozenset(("in since by until till from of between before after during around about circa year "
                          "and or to through early late mid summer winter spring autumn fall the").split() + _MONTHS)
# Tolerance words (lower-cased, up to three words before the number) -> how they widen the interval.
_TOLERANCE = [
    ("no more than", "at_most"), ("not more than", "at_most"), ("no less than", "at_least"),
    ("more than", "above"), ("greater than", "above"), ("higher than", "above"), ("in excess of", "above"),
    ("less than", "below"), ("fewer than", "below"), ("lower than", "below"), ("at least", "at_least"),
    ("at most", "at_most"), ("up to", "at_most"), ("as many as", "at_most"), ("close to", "nearly"),
    ("over", "above"), ("above", "above"), ("exceeding", "above"), ("exceeds", "above"), ("under", "below"),
    ("below", "below"), ("nearly", "nearly"), ("almost", "nearly"), ("about", "about"), ("approximately", "about"),
    ("around", "about"), ("roughly", "about"), ("some", "about"), ("circa", "about"), ("c.", "about"),
    ("~", "about"), ("exactly", "exact"), ("precisely", "exact"),
]
_UNITS = {"in": "inch", "inches": "inch", "inch": "inch", "ft": "foot", "feet": "foot", "foot": "foot",
          "cm": "centimetre", "centimeters": "centimetre", "centimetres": "centimetre", "mm": "millimetre",
          "millimeters": "millimetre", "millimetres": "millimetre", "km": "kilometre", "kilometers": "kilometre",
          "kilometres": "kilometre", "m": "metre", "meters": "metre", "metres": "metre", "meter": "metre",
          "°c": "celsius", "°": "degree", "c": "celsius", "°f": "fahrenheit", "f": "fahrenheit",
          "degrees": "degree", "degree": "degree", "ppm": "ppm", "gt": "gigatonne", "gigatonnes": "gigatonne",
          "gigatons": "gigatonne", "years": "year", "yrs": "year", "percent": "percent", "%": "percent"}
_FILLER = frozenset("a an the of per more less than to and or".split())


@dataclass
class Quantity:
    """A number, year or date range in a sentence, as the interval of values the text allows."""

    text: str
    start: int  # character offsets in the sentence
    end: int
    kind: str  # year | percent | number
    lo: float
    hi: float
    unit: str = ""
    tolerance: str = "exact"  # the tolerance word's meaning (about, above, at_least, ...) or the granularity
    anchors: list[str] = field(default_factory=list)  # lemmas of the words it describes, nearest first
    predicate: str = ""  # lemma of the clause's predicate ("be free" -> "free")

    def comparable(self, other: Quantity) -> bool:
        """Two quantities of the same kind: years, percentages, or numbers of the same unit."""
        if self.kind != other.kind:
            return False
        return self.kind in ("year", "percent") or (self.unit == other.unit)


def _tolerance(before: str) -> str:
    low = " " + re.sub(r"\s+", " ", before.lower()).strip()
    for phrase, meaning in _TOLERANCE:
        if low.endswith(" " + phrase) or (phrase == "~" and low.endswith("~")):
            return meaning
    return "exact"


def _interval(value: float, tol: str, decimals: int) -> tuple[float, float]:
    """The values a stated number allows, given its tolerance word and its stated precision."""
    eps = 0.5 * 10 ** (-decimals) if decimals else 0.0  # "0.2" allows 0.15..0.25; "8" allows 8 exactly
    if tol == "about":
        d = max(0.1 * abs(value), eps)
        return value - d, value + d
    if tol == "nearly":
        return value - max(0.1 * abs(value), eps), value
    if tol in ("above", "at_least"):
        return (value + 1e-9 if tol == "above" else value), _INF
    if tol in ("below", "at_most"):
        return -_INF, (value - 1e-9 if tol == "below" else value)
    return value - eps, value + eps


def _unit_after(rest: str) -> str:
    words = re.findall(r"°[cf]?|[a-z]+", rest.lower()[:40])
    words = [w for w in words if w not in _FILLER][:1]
    if not words:
        return ""
    w = words[0]
    if w in _UNITS:
        return _UNITS[w]
    return w[:-1] if w.endswith("s") and len(w) > 3 else w


def extract(text: str) -> list[Quantity]:
    """Years, decades, centuries, percentages and counts in ``text``, left to right."""
    out: list[Quantity] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in _CENTURY.finditer(text):
        part, n1, n2 = m.group(1), m.group(2), m.group(3)
        n = int(n1 or n2 or 21)  # "mid-century" without a number: this century
        lo = 100.0 * (n - 1)
        frac = _PART.get((part or "").lower(), (0.0, 1.0))
        out.append(Quantity(m.group(0), m.start(), m.end(), "year", lo + round(frac[0] * 100), lo + round(frac[1] * 99
                            if frac[1] == 1.0 else frac[1] * 100), tolerance=f"{part or 'whole'} century"))
        taken.append((m.start(), m.end()))
    for m in _DECADE.finditer(text):
        part, base = (m.group(1) or "").lower(), 10.0 * int(m.group(2))
        lo, hi = {"early": (0, 3), "mid": (4, 6), "late": (7, 9)}.get(part, (0, 9))
        out.append(Quantity(m.group(0), m.start(), m.end(), "year", base + lo, base + hi,
                            tolerance=f"{part or 'whole'} decade"))
        taken.append((m.start(), m.end()))
    for m in _NUMBER.finditer(text):
        if not free(m.start(), m.end()):
            continue
        digits, frac, scale, pct = m.group(2), m.group(3) or "", m.group(4), m.group(5)
        value = float(digits.replace(",", "") + frac)
        before = text[max(0, m.start() - 25): m.start()]
        tol = "about" if m.group(1) else _tolerance(before)
        rest = text[m.end():]
        prev_word = (re.findall(r"[A-Za-z]+", before)[-1:] or [""])[0].lower()
        next_word = (re.findall(r"^\s*([A-Za-z°%]+)", rest) or [""])[0].lower()
        is_year = (not frac and not scale and not pct and "," not in digits and len(digits) == 4
                   and 1000 <= value <= 2100
                   and (prev_word in _YEAR_BEFORE or not next_word or next_word in _YEAR_BEFORE
                        or next_word in ("and", "to", "when", "was", "were", "is", "had", "has")))
        pm = re.match(r"\s*(?:±|\+/-)\s*(\d+(?:\.\d+)?)", rest)
        if pm:  # "2016 ± 3 years": the stated margin
            d = float(pm.group(1))
            kind = "year" if is_year else "percent" if pct else "number"
            unit = "" if is_year else "percent" if pct else _unit_after(rest[pm.end():])
            out.append(Quantity(text[m.start():m.end() + pm.end()].strip(), m.start(), m.end() + pm.end(), kind,
                                value - d, value + d, unit, "±"))
            taken.append((m.start(), m.end() + pm.end()))
            continue
        if is_year:
            lo, hi = (value, value) if tol == "exact" else _interval(value, tol, 0)
            if tol == "about":
                lo, hi = value - 2, value + 2  # "around 2050": a couple of years either side
            out.append(Quantity(m.group(0), m.start(), m.end(), "year", lo, hi, tolerance=tol))
        else:
            if scale:
                value *= _SCALE[scale.lower()]
            lo, hi = _interval(value, tol, 0 if scale else len(frac) - 1 if frac else 0)
            kind = "percent" if pct else "number"
            unit = "percent" if pct else _unit_after(rest)
            out.append(Quantity(m.group(0).strip(), m.start(), m.end(), kind, lo, hi, unit, tol))
        taken.append((m.start(), m.end()))
    for m in _WORD_NUMBER.finditer(text):
        if not free(m.start(), m.end()):
            continue
        value = _WORD_NUMBERS[m.group(1).lower()]
        tol = _tolerance(text[max(0, m.start() - 25): m.start()])
        lo, hi = _interval(value, tol, 0)
        out.append(Quantity(m.group(0), m.start(), m.end(), "number", lo, hi, _unit_after(text[m.end():]), tol))
        taken.append((m.start(), m.end()))
    return sorted(out, key=lambda q: q.start)


def relation(evidence: Quantity, claim: Quantity) -> str:
    """The natural-logic operator from an evidence quantity to a comparable claim quantity."""
    e_in_c = claim.lo <= evidence.lo and evidence.hi <= claim.hi
    c_in_e = evidence.lo <= claim.lo and claim.hi <= evidence.hi
    if e_in_c and c_in_e:
        return "equivalence"
    if e_in_c:
        return "forward_entailment"  # the evidence is more precise: "2035" entails "in the 2030s"
    if c_in_e:
        return "reverse_entailment"  # the claim is more precise than the evidence allows
    if evidence.hi < claim.lo or claim.hi < evidence.lo:
        return "alternation"
    return "independence"  # overlapping ranges: neither follows


# -- what a quantity describes, from the dependency parse ---------------------------------------------
_CONTENT_POS = frozenset(("NOUN", "PROPN", "VERB", "ADJ", "AUX"))
_LIGHT = frozenset(("be", "have", "become", "remain", "get"))


def attach_anchors(quantities: list[Quantity], doc: Any) -> None:
    """Fill each quantity's ``anchors``: the lemmas of its governing words up the dependency tree.

    The walk starts at the quantity's syntactic head, skips prepositions, the unit it counts and
    function words, and stops at a conjunction (``built in 1990 and repainted in 2005``: 2005
    describes the repainting, not the building) or at the root.
    """
    for q in quantities:
        toks = [t for t in doc if t.idx < q.end and t.idx + len(t.text) > q.start]
        if not toks:
            continue
        inside = {t.i for t in toks}
        head = next((t for t in toks if t.head.i not in inside or t.head.i == t.i), toks[-1])
        anchors: list[str] = []
        node, steps = head, 0
        while node.head.i != node.i and steps < 8:
            if node.dep_ == "conj":
                break
            node, steps = node.head, steps + 1
            if node.i in inside or node.pos_ not in _CONTENT_POS:
                continue
            lemma = node.lemma_.lower()
            if q.unit and lemma in (q.unit, q.unit + "s") and not anchors:
                continue  # "8 inches": the unit, not what the number describes
            anchors.append(lemma)
            if not q.predicate and node.pos_ in ("VERB", "AUX"):
                q.predicate = lemma
                if lemma in _LIGHT:  # "will be ice-free": the predicate is the complement
                    comp = [c for c in node.children if c.dep_ in ("acomp", "attr", "dobj", "oprd")]
                    if comp:
                        q.predicate = comp[0].lemma_.lower()
        q.anchors = anchors


def same_thing(a: Quantity, b: Quantity, equal: Any = None) -> bool:
    """Whether two quantities describe the same thing: the nearest word each describes appears among
    the other's governing words, or both sit in clauses with the same predicate ("built", "be
    free"); ``equal(x, y)`` widens lemma identity, e.g. to WordNet synonyms."""
    if not a.anchors or not b.anchors:
        return False

    def has(word: str, words: list[str]) -> bool:
        return any(word == w or (equal is not None and equal(word, w)) for w in words)

    if has(a.anchors[0], b.anchors) or has(b.anchors[0], a.anchors):
        return True
    return bool(a.predicate) and a.predicate not in _LIGHT and has(a.predicate, [b.predicate])
