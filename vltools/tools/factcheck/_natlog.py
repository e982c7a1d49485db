"""Natural logic (MacCartney & Manning; ProoFVer/QA-NatVer as used by P39): operators, the
automaton, and a lexical aligner that turns (claim, evidence) into a sequence of edits.

An edit mutates the evidence towards the claim; its operator is the relation between the
evidence span and the claim span. The automaton starts in SUPPORTS (evidence entails itself)
and reads the operators in MacCartney's order (deletions, substitutions, insertions).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SUPPORTS, REFUTES, NEI = "SUPPORTS", "REFUTES", "NOT ENOUGH INFO"

# operator name -> symbol
OPERATORS = {
    "equivalence": "≡",
    "forward_entailment": "⊑",
    "reverse_entailment": "⊒",
    "negation": "¬",
    "alternation": "|",
    "cover": "⌣",
    "independence": "#",
}

# The NatLog automaton (ProoFVer, Fig. 2): state x operator -> state. NEI is absorbing.
TRANSITIONS: dict[str, dict[str, str]] = {
    SUPPORTS: {
        "equivalence": SUPPORTS,
        "forward_entailment": SUPPORTS,
        "negation": REFUTES,
        "alternation": REFUTES,
        "reverse_entailment": NEI,
        "cover": NEI,
        "independence": NEI,
    },
    REFUTES: {
        "equivalence": REFUTES,
        "reverse_entailment": REFUTES,
        "negation": SUPPORTS,
        "cover": SUPPORTS,
        "forward_entailment": NEI,
        "alternation": NEI,
        "independence": NEI,
    },
    NEI: dict.fromkeys(OPERATORS, NEI),
}

# Projection through a downward-monotone context (inside a negation).
_DOWNWARD = {
    "forward_entailment": "reverse_entailment",
    "reverse_entailment": "forward_entailment",
    "alternation": "cover",
    "cover": "alternation",
}


def run_automaton(operators: list[str], start: str = SUPPORTS) -> list[str]:
    """States after each operator (``len(operators)`` entries); the last is the verdict."""
    states, state = [], start
    for op in operators:
        state = TRANSITIONS[state][op]
        states.append(state)
    return states


# -- text ------------------------------------------------------------------------------------
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for from with as into onto over under about than
    then that this these those there here is are was were be been being am do does did done doing
    have has had having it its it's they them their theirs he him his she her hers we us our you
    your i me my mine which who whom whose what when where why how all any both each few more most
    other some such only own same so too very can will just should would could may might must shall
    also up down out off again further once s t also per via between during while because until
    against among through before after above below since within upon across around along whether
    one ones like even yet still already ever much many nearly approximately roughly almost circa exceeding
    exactly precisely least""".split()
)
NEGATION_CUES = frozenset(
    """not no never n't cannot without none nobody nothing neither nor nowhere hardly barely scarcely
    lack lacks lacked lacking fail fails failed deny denies denied""".split()
)
_TOKEN = re.compile(r"\d+(?:st|nd|rd|th|s)\b|\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|\d+(?:\.\d+)?%?|[A-Za-z][A-Za-z'\-]*")
_MONTHS = "january february march april may june july august september october november december".split()
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_NUM_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_NUM_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "dozen": 12})


@dataclass
class Token:
    text: str
    lower: str
    index: int
    start: int = 0  # character offset in the sentence
    number: tuple[float, str] | None = None  # (value, kind: year|percent|number)
    unit: str = ""  # the word after a number, normalised (inches -> inch)
    approx: bool = False  # "about 8", "nearly 20"
    negation: bool = False
    stop: bool = False
    quantity: bool = False  # part of a number, year or date range (compared by _quantity)

    @property
    def content(self) -> bool:
        return not (self.stop or self.negation)


def tokenize(text: str) -> list[Token]:
    matches = list(_TOKEN.finditer(text))
    raw = [m.group(0) for m in matches]
    toks: list[Token] = []
    for i, w in enumerate(raw):
        low, at = w.lower(), matches[i].start()
        if low.endswith("n't"):
            toks.append(Token(w[:-3] or w, low[:-3] or low, len(toks), at, stop=True))
            toks.append(Token("n't", "n't", len(toks), at + len(w) - 3, negation=True))
            continue
        tok = Token(w, low, len(toks), at)
        tok.negation = low in NEGATION_CUES
        tok.stop = low in STOPWORDS
        num = _parse_number(low, raw[i + 1].lower() if i + 1 < len(raw) else "")
        if num is not None:
            tok.number, tok.stop = num, False
            tok.unit = _unit(raw[i + 1].lower()) if i + 1 < len(raw) else ""
            tok.approx = i > 0 and raw[i - 1].lower() in _APPROX
        toks.append(tok)
    return toks


_APPROX = frozenset("about approximately around nearly roughly almost some circa over under ~".split())
_UNITS = {"in": "inch", "inches": "inch", "ft": "foot", "feet": "foot", "cm": "centimetre", "centimeters": "centimetre",
          "mm": "millimetre", "km": "kilometre", "m": "metre", "meters": "metre", "metres": "metre", "c": "celsius",
          "f": "fahrenheit", "degrees": "degree", "years": "year", "percent": "percent", "%": "percent"}


def _unit(word: str) -> str:
    if word in _UNITS:
        return _UNITS[word]
    if word in STOPWORDS or not word.isalpha():
        return ""
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _parse_number(low: str, nxt: str) -> tuple[float, str] | None:
    if low in _MONTHS:
        return None
    if low in _NUM_WORDS:
        return float(_NUM_WORDS[low]), "percent" if nxt in ("percent", "%") else "number"
    if not low[0].isdigit():
        return None
    pct = low.endswith("%") or nxt in ("percent", "per")
    try:
        val = float(low.rstrip("%").replace(",", ""))
    except ValueError:
        return None
    if nxt in _SCALE:
        val *= _SCALE[nxt]
    if not pct and val.is_integer() and 1000 <= val <= 2100 and "," not in low:
        return val, "year"
    return val, "percent" if pct else "number"


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])", text.strip())
    return [p.strip() for p in parts if p.strip()]


# -- lexical relations from WordNet -------------------------------------------------------------
_POS = ("n", "v", "a", "r")


class Lexicon:
    """WordNet lexical relations between two words, with per-process caches."""

    def __init__(self, wn: Any):
        self.wn = wn
        self._lemmas: dict[str, frozenset[str]] = {}
        self._synsets: dict[str, list[Any]] = {}
        self._hyper: dict[str, frozenset[Any]] = {}
        self._antonyms: dict[str, frozenset[str]] = {}
        self._up2: dict[Any, frozenset[Any]] = {}
        self._rel: dict[tuple[str, str], tuple[str, str] | None] = {}

    def lemmas(self, word: str) -> frozenset[str]:
        """Base forms of ``word`` (itself included)."""
        if word not in self._lemmas:
            forms = {word}
            for pos in _POS:
                base = self.wn.morphy(word, pos)
                if base:
                    forms.add(base)
            if word.endswith("ing") and len(word) > 5:
                forms.add(word[:-3])
            self._lemmas[word] = frozenset(forms)
        return self._lemmas[word]

    def synsets(self, word: str, top: int = 3) -> list[Any]:
        """The first ``top`` senses per part of speech (WordNet orders senses by frequency)."""
        if word not in self._synsets:
            out: list[Any] = []
            for pos in _POS:
                for lemma in self.lemmas(word):
                    ss = self.wn.synsets(lemma, pos)
                    if ss:
                        out.extend(s for s in ss[:top] if s not in out)
                        break
            self._synsets[word] = out
        return self._synsets[word]

    def hypernym_closure(self, word: str) -> frozenset[Any]:
        if word not in self._hyper:
            acc: set[Any] = set()
            for s in self.synsets(word, top=2):
                acc.update(s.closure(lambda x: x.hypernyms() + x.instance_hypernyms(), depth=6))
            self._hyper[word] = frozenset(acc)
        return self._hyper[word]

    def antonyms(self, word: str) -> frozenset[str]:
        """Direct antonyms plus indirect ones through adjective clusters (warm -> hot <-> cold)."""
        if word not in self._antonyms:
            acc: set[str] = set()
            for s in self.synsets(word, top=4):
                own = [lem for lem in s.lemmas() if lem.name().lower() in self.lemmas(word)]
                heads = [lem for h in s.also_sees() + (s.similar_tos() if s.pos() == "s" else []) for lem in h.lemmas()]
                derived = [d for lem in own for d in lem.derivationally_related_forms()]
                for lem in own + heads + derived:
                    for ant in lem.antonyms():
                        syn = ant.synset()
                        acc.add(ant.name().lower())
                        if syn.pos() in ("a", "s"):
                            for rel in syn.similar_tos() + syn.also_sees():
                                acc.update(x.name().lower() for x in rel.lemmas())
            acc -= self.lemmas(word)
            self._antonyms[word] = frozenset(acc)
        return self._antonyms[word]

    def relation(self, e: str, c: str) -> tuple[str, str] | None:
        """The operator from evidence word ``e`` to claim word ``c`` and the WordNet relation behind it."""
        key = (e, c)
        if key not in self._rel:
            if len(self._rel) > 500_000:
                self._rel.clear()
            self._rel[key] = self._relation(e, c)
        return self._rel[key]

    def _relation(self, e: str, c: str) -> tuple[str, str] | None:
        le, lc = self.lemmas(e), self.lemmas(c)
        if le & lc:
            return "equivalence", "same lemma"
        se, sc = self.synsets(e), self.synsets(c)
        if not se or not sc:
            return None
        if set(se) & set(sc):
            return "equivalence", "synonym"
        if lc & self.antonyms(e) or le & self.antonyms(c):
            return "alternation", "antonym"
        if set(sc) & self.hypernym_closure(e):
            return "forward_entailment", "hypernym"  # e is a kind of c
        if set(se) & self.hypernym_closure(c):
            return "reverse_entailment", "hyponym"  # c is a kind of e
        return None

    def _parents(self, syn: Any) -> frozenset[Any]:
        if syn not in self._up2:
            self._up2[syn] = frozenset(syn.closure(lambda x: x.hypernyms() + x.instance_hypernyms(), depth=2))
        return self._up2[syn]

    def co_hyponyms(self, e: str, c: str) -> bool:
        """Distinct nouns under a shared, specific class within two levels (cat/dog under carnivore)."""
        ne = [s for s in self.synsets(e, top=1) if s.pos() == "n"]
        nc = [s for s in self.synsets(c, top=1) if s.pos() == "n"]
        for a in ne:
            for b in nc:
                if a == b or b in self.hypernym_closure(e) or a in self.hypernym_closure(c):
                    continue
                if any(h.min_depth() >= 5 for h in self._parents(a) & self._parents(b)):
                    return True
        return False


# -- alignment and proof --------------------------------------------------------------------------
@dataclass
class Edit:
    kind: str  # deletion | substitution | insertion | negation
    claim_span: str
    evidence_span: str
    operator: str
    source: str  # which signal chose the operator
    position: int = 0
    evidence_index: int | None = None
    score: float = 1.0

    @property
    def origin(self) -> str:
        """Where the operator came from: model, wordnet, rule, embedding or llm."""
        return origin_of(self.source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "kind": self.kind,
            "claim_span": self.claim_span,
            "evidence_span": self.evidence_span,
            "operator": self.operator,
            "symbol": OPERATORS[self.operator],
            "source": self.source,
            "evidence_index": self.evidence_index,
        }


@dataclass
class Proof:
    verdict: str
    edits: list[Edit]
    states: list[str]
    uncovered: list[str] = field(default_factory=list)
    evidence_used: list[int] = field(default_factory=list)
    coverage: float = 0.0


_WORDNET_SOURCES = ("same lemma", "synonym", "hypernym", "hyponym", "antonym", "co-hyponym")


def origin_of(source: str) -> str:
    """The family of a proof step's ``source``: model, wordnet, rule, embedding or llm."""
    for fam in ("model", "embedding", "llm"):
        if source.startswith(fam):
            return fam
    return "wordnet" if source.startswith(_WORDNET_SOURCES) else "rule"


# Direction words: a rise in the evidence and a fall in the claim (or back) is an alternation.
_UP = frozenset("rise increase grow climb go_up gain expand accelerate warm heat strengthen lengthen thicken "
                "advance surge soar raise higher".split())
_DOWN = frozenset("fall decrease decline drop shrink sink diminish reduce lessen slow cool weaken shorten thin "
                  "retreat plunge plummet dwindle lower".split())


_IRREGULAR = {"fell": "fall", "rose": "rise", "risen": "rise", "grew": "grow", "grown": "grow", "sank": "sink",
              "sunk": "sink", "shrank": "shrink", "shrunk": "shrink", "fallen": "fall"}


def direction(word: str, lemmas: frozenset[str]) -> int:
    """+1 for a word of rising, -1 for falling, 0 otherwise."""
    forms = lemmas | {_IRREGULAR.get(word, word)}
    return 1 if forms & _UP else -1 if forms & _DOWN else 0


_ORDER = {
    "deletion": 0,
    "equivalence": 1,
    "forward_entailment": 1,
    "negation": 2,
    "alternation": 2,
    "cover": 2,
    "reverse_entailment": 3,
    "independence": 4,
}

Similarity = Callable[[list[str], list[str]], list[list[float]]]
OperatorChooser = Callable[[str, str, str, str], str | None]


def _runs(tokens: list[Token]) -> list[list[Token]]:
    """Group adjacent tokens into spans."""
    runs: list[list[Token]] = []
    for t in tokens:
        if runs and t.index == runs[-1][-1].index + 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def prove(
    claim: str,
    evidence: list[str],
    lexicon: Lexicon,
    *,
    similarity: Similarity | None = None,
    word_threshold: float = 0.62,
    sentence_threshold: float = 0.45,
    span_threshold: float | None = None,
    co_hyponyms: bool = True,
    anchor: int = 2,
    chooser: OperatorChooser | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Proof:
    """Align ``claim`` with the pooled ``evidence`` sentences and run the automaton.

    Args:
        similarity: ``(a_texts, b_texts) -> cosine matrix``; aligns words WordNet cannot relate
            and gates alternations (co-hyponyms, numbers) to evidence on the claim's topic.
        anchor: alternations (antonyms, co-hyponyms, other numbers) are read only from evidence sentences
            with at least this many words already matched to the claim (picked on the first 200
            CLIMATE-FEVER claims: 2 beat 0 and 3).
        chooser: optional ``(claim, evidence_text, claim_span, evidence_span) -> operator`` (an LLM
            asked QA-style); consulted for spans the lexical signals leave undecided.
        parse: ``text -> spaCy Doc``; tells what each number describes, so that a number mismatch
            is an alternation only between numbers of the same thing. Without it, mismatches are
            never read as alternations.
    """
    ctoks = tokenize(claim)
    etoks = [tokenize(s) for s in evidence]
    cqs = _quantities(claim, ctoks, parse)
    eqs = [_quantities(s, toks, parse) for s, toks in zip(evidence, etoks, strict=True)]
    sent_sims = similarity([claim], evidence)[0] if (similarity and evidence) else [1.0] * len(evidence)
    topical = [i for i, s in enumerate(sent_sims) if s >= sentence_threshold]
    edits: list[Edit] = []
    used_tokens: dict[int, set[int]] = {i: set() for i in range(len(evidence))}

    # Two passes: matches and entailments first; alternations (antonyms, co-hyponyms, other numbers)
    # only between claim and evidence words that nothing else aligned, so that a word the evidence
    # shares with the claim is never also read as a contradiction of another claim word.
    pending = [t for t in ctoks if t.content and not t.quantity]
    for strong in (True, False):
        rest = []
        for ct in pending:
            best, best_tok = None, None
            for si, toks in enumerate(etoks):
                for et in toks:
                    if not et.content or et.quantity or (not strong and (et.index in used_tokens[si]
                                                          or len(used_tokens[si]) < anchor)):
                        continue  # a contradiction must come from a sentence anchored to the claim
                    cand = _token_edit(ct, et, si, lexicon, si in topical, co_hyponyms)
                    if cand is None or (cand.operator == "alternation") == strong:
                        continue
                    if best is None or _rank(cand) < _rank(best):
                        best, best_tok = cand, et
            if best is None or best_tok is None:
                rest.append(ct)
                continue
            edits.append(best)
            used_tokens[best.evidence_index or 0].add(best_tok.index)
        pending = rest
        if strong:  # numbers and dates, once the words around them are aligned
            edits += _quantity_edits(cqs, eqs, etoks, used_tokens, lexicon, anchor)
    unaligned = sorted(pending, key=lambda t: t.index)
    open_q = {i for q, _ in cqs if not q.aligned for i in q.token_indices}  # numbers nothing matched: insertions
    unaligned = sorted(unaligned + [t for t in ctoks if t.index in open_q and t.content], key=lambda t: t.index)

    # Words WordNet cannot relate: embedding similarity between the claim word and evidence words.
    if unaligned and similarity is not None and evidence:
        cands = sorted({et.lower for toks in etoks for et in toks if et.content and not et.number})
        if cands:
            sims = similarity([t.lower for t in unaligned], cands)
            still = []
            for t, row in zip(unaligned, sims, strict=True):
                j = max(range(len(cands)), key=row.__getitem__)
                if row[j] >= word_threshold and not t.number:
                    si = next(i for i, toks in enumerate(etoks) if any(x.lower == cands[j] for x in toks))
                    edits.append(Edit("substitution", t.text, cands[j], "equivalence", f"embedding {row[j]:.2f}",
                                      t.index, si, float(row[j])))
                else:
                    still.append(t)
            unaligned = still

    # What the claim adds: insertions (claim more specific: reverse entailment) unless a chooser decides.
    uncovered = []
    runs = _runs(unaligned)
    span_sims = []
    if span_threshold is not None and similarity is not None and evidence and runs:
        span_sims = [max(row) for row in similarity([" ".join(t.text for t in r) for r in runs], evidence)]
    for ri, run in enumerate(runs):
        span = " ".join(t.text for t in run)
        op, source = "reverse_entailment", "insertion (not in evidence)"
        if span_sims and span_sims[ri] >= span_threshold:  # the evidence paraphrases the span
            op, source = "equivalence", f"embedding (span) {span_sims[ri]:.2f}"
        if chooser is not None and evidence:
            main = max(range(len(evidence)), key=lambda i: sent_sims[i])
            picked = chooser(claim, evidence[main], span, evidence[main])
            if picked in OPERATORS:
                op, source = picked, "llm"
        if op == "reverse_entailment":
            uncovered.append(span)
        edits.append(Edit("insertion", span, "", op, source, run[0].index))

    # Evidence content left over in the sentences used: deletions (generalisation), one edit.
    used = sorted({e.evidence_index for e in edits if e.evidence_index is not None})
    dropped = [t.text for i in used for t in etoks[i] if t.content and t.index not in used_tokens[i]]
    if dropped:
        edits.append(Edit("deletion", "", " ".join(dropped[:12]), "forward_entailment", "deletion", -1))

    # Negation: the claim and the evidence it leans on disagree in polarity.
    cneg = [t for t in ctoks if t.negation]
    main_idx = max(used, key=lambda i: sum(1 for e in edits if e.evidence_index == i)) if used else None
    eneg = [t for t in etoks[main_idx] if t.negation] if main_idx is not None else []
    if main_idx is not None and len(cneg) % 2 != len(eneg) % 2:
        edits.append(Edit("negation", " ".join(t.text for t in cneg) or "∅", " ".join(t.text for t in eneg) or "∅",
                          "negation", "negation cue", cneg[0].index if cneg else 0, main_idx))
    elif cneg:  # both negated: relations of words in the negation's scope are projected downward
        scope = cneg[0].index
        for e in edits:
            if e.kind == "substitution" and e.position > scope and e.operator in _DOWNWARD:
                e.operator = _DOWNWARD[e.operator]
                e.source += " (under negation)"

    edits.sort(key=lambda e: (_ORDER["deletion"] if e.kind == "deletion" else _ORDER[e.operator], e.position))
    states = run_automaton([e.operator for e in edits])
    verdict = states[-1] if states and edits and any(e.kind != "deletion" for e in edits) else NEI
    n_content = sum(1 for t in ctoks if t.content) or 1
    coverage = 1.0 - sum(len(s.split()) for s in uncovered) / n_content
    return Proof(verdict, edits, states, uncovered, used, max(0.0, coverage))


@dataclass
class _Q:
    """A quantity with the tokens it spans and whether the proof aligned it."""

    q: Any
    token_indices: list[int]
    aligned: bool = False


def _quantities(text: str, toks: list[Token], parse: Callable[[str], Any] | None) -> list[tuple[_Q, str]]:
    from vltools.tools.factcheck._quantity import attach_anchors, extract

    qs = extract(text)
    if qs and parse is not None:
        attach_anchors(qs, parse(text))
    out = []
    for q in qs:
        idx = [t.index for t in toks if q.start <= t.start < q.end]
        for t in toks:
            if t.index in idx:
                t.quantity = True
        out.append((_Q(q, idx), text))
    return out


_Q_RANK = {"equivalence": 0, "forward_entailment": 1}


def _quantity_edits(cqs: list[tuple[_Q, str]], eqs: list[list[tuple[_Q, str]]], etoks: list[list[Token]],
                    used: dict[int, set[int]], lex: Lexicon, anchor: int) -> list[Edit]:
    """Edits for the claim's numbers and dates: the best comparable evidence quantity for each.

    Preference: a same-thing match that entails the claim's value, then a same-thing mismatch
    (alternation, only from sentences anchored to the claim), then a same-thing overlap the claim
    is more precise than (reverse entailment), then an equal value describing another thing.
    """
    from vltools.tools.factcheck._quantity import relation, same_thing

    def equal(a: str, b: str) -> bool:
        rel = lex.relation(a, b)
        return rel is not None and rel[0] == "equivalence"

    edits = []
    for cq, _ in cqs:
        best: tuple[int, int, _Q, str, bool] | None = None
        for si, sent in enumerate(eqs):
            for eq, _ in sent:
                if not cq.q.comparable(eq.q):
                    continue
                op = relation(eq.q, cq.q)
                same = same_thing(cq.q, eq.q, equal)
                if same and op in _Q_RANK:
                    rank = _Q_RANK[op]
                elif same and op == "alternation" and len(used[si]) >= anchor:
                    rank = 2
                elif same and op in ("reverse_entailment", "independence"):
                    rank = 3
                elif op in _Q_RANK:
                    rank = 4 + _Q_RANK[op]
                else:
                    continue
                if best is None or rank < best[0]:
                    best = (rank, si, eq, op, same)
        if best is None:
            continue
        rank, si, eq, op, same = best
        why = {0: "number", 1: "number (evidence more precise)", 2: "number mismatch",
               3: "number (claim more precise)"}.get(rank, "number (other head)")
        edits.append(Edit("substitution", cq.q.text, eq.q.text, op, why,
                          cq.token_indices[0] if cq.token_indices else 0, si, 0.5 if rank == 2 else 1.0))
        cq.aligned = True
        used[si].update(eq.token_indices)
    return edits


def _rank(e: Edit) -> tuple[int, float]:
    pref = {"same lemma": 0, "synonym": 0, "number": 0, "hypernym": 1, "hyponym": 2, "antonym": 3,
            "rule: direction": 3}
    return pref.get(e.source, 4), -e.score


def _token_edit(ct: Token, et: Token, si: int, lex: Lexicon, topical: bool, co_hyp: bool = True) -> Edit | None:
    if ct.number or et.number:  # numbers outside any parsed quantity: the same digits or nothing
        if ct.lower == et.lower:
            return Edit("substitution", ct.text, et.text, "equivalence", "number", ct.index, si)
        return None
    rel = lex.relation(et.lower, ct.lower)
    if topical and rel is None:
        de, dc = direction(et.lower, lex.lemmas(et.lower)), direction(ct.lower, lex.lemmas(ct.lower))
        if de and dc and de != dc:
            return Edit("substitution", ct.text, et.text, "alternation", "rule: direction", ct.index, si)
    if rel is not None:
        op, why = rel
        if why == "antonym" and not topical:
            return None
        return Edit("substitution", ct.text, et.text, op, why, ct.index, si)
    if co_hyp and topical and lex.co_hyponyms(et.lower, ct.lower):
        return Edit("substitution", ct.text, et.text, "alternation", "co-hyponym", ct.index, si, 0.3)
    return None
