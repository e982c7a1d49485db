"""Natural-logic tools for fact verification (P39): `natlog.prove` and `natlog.relate`.

Needs WordNet 3.0 laid out by ``scripts/setup_data.py`` (Debian ``wordnet-base``) and the text
encoder (``minilm``) for embedding similarity; an LLM only when ``llm`` is given.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.core.cache import LRUCache
from vltools.core.errors import InvalidInput, TooLarge, Unsupported
from vltools.schemas import Operator, PartCoverage, ProofStep, SentenceJudgement, ToolInput, Verdict

MAX_CLAIM_CHARS = 2000


def check_claim(claim: str) -> str:
    """Strip and bound a claim (shared by the tools and graph.fact_check through their inputs)."""
    text = claim.strip()
    if not text:
        raise InvalidInput("the claim is empty", hint="pass a sentence to verify in 'claim'")
    if len(text) > MAX_CLAIM_CHARS:
        raise TooLarge(
            f"the claim is {len(text):,} characters; at most {MAX_CLAIM_CHARS:,} are accepted",
            hint="verify one sentence-sized claim at a time",
        )
    return text


class ProveInput(ToolInput):
    claim: str = Field(description=f"The claim to verify (one sentence, at most {MAX_CLAIM_CHARS} characters).")
    evidence: list[str] = Field(min_length=1, max_length=50, description="Evidence sentences, pooled for the proof.")
    use_embeddings: bool = Field(True, description="Align words WordNet cannot relate by text-encoder similarity.")
    text_model: str | None = Field(None, description="Text-encoder spec for similarity (default: settings).")
    llm: str | None = Field(
        None, description="LLM spec asked QA-style to choose the operator of spans the lexical signals leave open."
    )
    operator_model: bool = Field(
        True, description="Use the trained operator model for each (claim, sentence) pair (False: WordNet and rules "
        "only). It needs embeddings and thresholds calibrated for the text encoder.",
    )


class ProveOutput(BaseModel):
    verdict: Verdict = Field(description="Final automaton state.")
    proof: list[ProofStep] = Field(description="Edits in the order the automaton read them.")
    states: list[Verdict] = Field(description="Automaton states, starting state first.")
    uncovered: list[str] = Field(description="Claim spans no evidence covers (what a further hop should look for).")
    evidence_used: list[int] = Field(description="Indices of the evidence sentences the proof aligned to.")
    coverage: float = Field(description="Fraction of the claim's content words aligned to evidence.")
    decided_by: str | None = Field(None, description="'model' (operator model + calibrated thresholds) or 'rules' "
                                   "(WordNet, numbers, negation and direction rules through the automaton).")
    sentences: list[SentenceJudgement] | None = Field(None, description="The operator model's judgement per sentence.")
    parts: list[PartCoverage] | None = Field(None, description="Which sentence covered which claim part, across "
                                             "the pooled sentences.")
    notices: list[str] | None = Field(None, description="Why the operator model was not used, if it was not.")


# (encoder spec, word) -> vector; words recur across claims. Capped: ~30 MB of 384-d vectors.
_WORD_VECS: LRUCache[tuple[str, str], Any] = LRUCache(maxsize=20_000)


class _Similarity:
    """Cosine similarity of texts under one text encoder, with a word-vector cache; ``vectors`` gives the
    unit-norm embeddings themselves (the operator model reads the claim/sentence pair's)."""

    def __init__(self, ctx: Context, spec: str | None):
        self.enc = ctx.text(spec)

    def vectors(self, texts: list[str]) -> Any:
        import numpy as np

        enc = self.enc
        found = {t: _WORD_VECS.get((enc.spec, t)) for t in dict.fromkeys(texts)}
        missing = [t for t, v in found.items() if v is None]
        if missing:
            for t, v in zip(missing, enc.encode(missing), strict=True):
                found[t] = v
                if len(t) <= 40:  # words and short phrases recur; long spans rarely do
                    _WORD_VECS.put((enc.spec, t), v)
        return np.stack([found[t] for t in texts])

    def __call__(self, a: list[str], b: list[str]) -> list[list[float]]:
        return (self.vectors(a) @ self.vectors(b).T).tolist()


def _similarity(ctx: Context, spec: str | None) -> _Similarity:
    return _Similarity(ctx, spec)


_CHOICES = {
    "A": "equivalence",
    "B": "forward_entailment",
    "C": "reverse_entailment",
    "D": "alternation",
    "E": "independence",
}


def _llm_chooser(ctx: Context, spec: str):
    llm = ctx.llm(spec)

    def choose(claim: str, evidence: str, claim_span: str, evidence_span: str) -> str | None:
        question = (
            f"Evidence: {evidence}\nClaim: {claim}\n"
            f"Question: the claim says \"{claim_span}\". Given the evidence, which is true?\n"
            "A) the evidence says the same thing\nB) the evidence says something more specific\n"
            "C) the evidence says something more general\nD) the evidence contradicts it\n"
            "E) the evidence does not mention it\nAnswer with one letter."
        )
        messages = [{"role": "user", "content": question}]
        try:
            scores = llm.next_token_logits(messages, list(_CHOICES))
            letter = max(scores, key=scores.get)
        except Unsupported:
            text = llm.generate(messages, max_tokens=4)
            m = re.search(r"\b([A-E])\b", text.upper())
            letter = m.group(1) if m else ""
        return _CHOICES.get(letter)

    return choose


@tool("natlog.prove")
def prove(inp: ProveInput, ctx: Context) -> ProveOutput:
    """Prove or refute a claim from given evidence sentences with natural logic (WordNet operators and the NatLog
    automaton).

    Aligns claim words with evidence words, assigns each pair a natural-logic operator
    (synonym = equivalence, hypernym/hyponym = forward/reverse entailment, antonym and
    co-hyponym = alternation, negation cues = negation, number/date mismatch = alternation,
    unmatched claim words = reverse entailment) and runs the automaton to SUPPORTS, REFUTES
    or NOT ENOUGH INFO.
    """
    from vltools.tools.factcheck._natlog import Lexicon
    from vltools.tools.factcheck._natlog import prove as _prove
    from vltools.tools.factcheck._wordnet import get_wordnet

    claim = check_claim(inp.claim)
    evidence = [e.strip() for e in inp.evidence if e.strip()]
    if not evidence:
        raise InvalidInput("all evidence sentences are empty", hint="pass at least one non-empty sentence")
    if sum(len(e) for e in evidence) > 200_000:
        raise TooLarge("the evidence is over 200,000 characters", hint="select sentences first (evidence.select)")
    ctx.progress(0, 2, "aligning")
    from vltools.tools.factcheck._parse import parse

    lex = _lexicon(get_wordnet(), Lexicon)
    sim = _similarity(ctx, inp.text_model) if inp.use_embeddings else None
    chooser = _llm_chooser(ctx, inp.llm) if inp.llm else None
    p = _prove(claim, evidence, lex, similarity=sim, chooser=chooser, parse=parse)
    edits, verdict, decided_by, judged, notices = p.edits, p.verdict, "rules", None, []
    if inp.operator_model:
        model_edits, model_verdict, judged = _model_verdict(ctx, inp, claim, evidence, p, lex, sim, parse, notices)
        if model_edits is not None:
            edits, verdict, decided_by = model_edits, model_verdict, "model"
    states = _run_automaton([e.operator for e in edits]) if edits else []
    if states and states[-1] != verdict:  # the automaton has the last word: a proof with no content edit is NEI
        verdict = states[-1]
    if not any(e.kind != "deletion" for e in edits):
        verdict = "NOT ENOUGH INFO"
    ctx.progress(2, 2, verdict)
    steps = [ProofStep(**e.as_dict(), state=s) for e, s in zip(edits, states, strict=True)]
    return ProveOutput(
        verdict=verdict,  # type: ignore[arg-type]
        proof=steps,
        states=["SUPPORTS", *states],  # type: ignore[list-item]
        uncovered=p.uncovered,
        evidence_used=p.evidence_used,
        coverage=round(p.coverage, 4),
        decided_by=decided_by,
        sentences=judged,
        parts=_parts(p.edits),
        notices=notices or None,
    )


def _run_automaton(ops: list[str]) -> list[str]:
    from vltools.tools.factcheck._natlog import run_automaton

    return run_automaton(ops)


def _parts(edits: list[Any]) -> list[PartCoverage]:
    """Claim spans and the sentence that covered each (the pooled proof aligns every span to its best sentence)."""
    return [PartCoverage(claim_span=e.claim_span, evidence_index=e.evidence_index, evidence_span=e.evidence_span,
                         operator=e.operator)
            for e in sorted(edits, key=lambda e: e.position) if e.kind in ("substitution", "insertion")]


# A pooled proof that REFUTES by these exact comparisons, with every other claim part aligned, keeps its verdict:
# the learnt model saw few such pairs.
_RULE_DECISIVE = ("number mismatch", "number (claim more precise)", "rule: direction")


def _model_verdict(ctx: Context, inp: ProveInput, claim: str, evidence: list[str], pooled: Any, lex: Any,
                   sim: Any, parse: Any, notices: list[str]) -> tuple[list[Any] | None, str, Any]:
    """The proof, verdict and per-sentence judgements from the operator model; the proof is None when the
    rules decide (an exact number/direction refutation, the pooled proof's support across sentences where the
    model abstains, or no model for this encoder: see ``notices``)."""
    from vltools.tools.factcheck import _operator_model as om
    from vltools.tools.factcheck._natlog import Edit
    from vltools.tools.factcheck._natlog import prove as _prove
    from vltools.tools.factcheck._quantity import extract

    model = om.load()
    spec = inp.text_model or ctx.settings.text_model
    em = om.encoder_model(model, spec) if model else None
    if model is None or sim is None or em is None:
        why = ("embeddings are off" if sim is None else "no operator model is installed" if model is None
               else f"no operator model is calibrated for text encoder {spec!r} "
               f"(calibrated: {sorted(model.get('encoders', {}))}; run scripts/train_natlog_operator.py "
               f"--text-model {spec})")
        notices.append(f"operator model not used: {why}; WordNet and the rules decided")
        return None, pooled.verdict, None
    vecs = sim.vectors([claim, *evidence])
    cos = [float(vecs[0] @ v) for v in vecs[1:]]
    singles = [_prove(claim, [s], lex, parse=parse) for s in evidence]
    rows = [om.pair_features(claim, s, q, c, max(cos)) + om.pair_vector(vecs[0], v)
            for s, q, c, v in zip(evidence, singles, cos, vecs[1:], strict=True)]
    probs = om.predict(em, rows)
    judged = []
    for i, (pr, q) in enumerate(zip(probs, singles, strict=True)):
        top = max(pr, key=pr.get)
        op = "negation" if top == "REFUTES" and any(e.kind == "negation" for e in q.edits) else om.CLASS_OPERATOR[top]
        judged.append(SentenceJudgement(evidence_index=i, operator=op, probabilities={k: round(v, 4) for k, v in
                                        pr.items()}, lexical_verdict=q.verdict))
    verdict, at, claim_probs = om.decide(em, probs, rows)

    def aligned(proof: Any) -> bool:
        """Every claim part but numbers is aligned: the two texts state the same thing, so an exact
        number/direction/antonym contradiction between them is about the same thing. On the dev claims, the
        rules overriding the model without this condition lost more verdicts than they won."""
        return all(extract(span) for span in proof.uncovered)

    if (pooled.verdict == "REFUTES" and verdict != "REFUTES" and aligned(pooled)
            and any(e.source in _RULE_DECISIVE for e in pooled.edits)):
        notices.append(f"the rules' exact comparison refutes the claim (the model said {verdict})")
        return None, pooled.verdict, judged
    if at is None and pooled.verdict == "SUPPORTS":
        # Aggregation across sentences: the pooled proof covers every claim part from one or more sentences
        # (see ``parts``), which no single-sentence judgement sees; the rules' proof stands.
        notices.append("the model abstains; the pooled proof covers every claim part across sentences")
        return None, pooled.verdict, judged
    if at is None:  # abstain: the pooled alignment, then the model's independence
        step = Edit("insertion", claim, "", "independence",
                    f"model (abstains: claim P(NOT ENOUGH INFO) {claim_probs['NOT ENOUGH INFO']:.2f}, "
                    f"P(SUPPORTS) {claim_probs['SUPPORTS']:.2f}, P(REFUTES) {claim_probs['REFUTES']:.2f})", 10_000)
        return [*pooled.edits, step], verdict, judged
    q = singles[at]
    if q.verdict == verdict:  # the deciding sentence's own natural-logic proof reaches the verdict: it stands
        for e in q.edits:
            e.evidence_index = at
        return q.edits, verdict, judged
    kept = [e for e in q.edits if e.kind == "deletion" or e.operator in ("equivalence", "forward_entailment")]
    for e in kept:
        e.evidence_index = at
    open_spans = [e.claim_span for e in q.edits if e not in kept and e.claim_span]
    if verdict == "SUPPORTS" and aligned(q) and any(e.operator in ("alternation", "negation") for e in q.edits):
        # A word-level contradiction in the very sentence (antonym, other number, flipped direction or polarity)
        # is not an open span the model may judge: the rules' proof stands.
        notices.append("the deciding sentence contradicts a claim word (WordNet or an exact rule); the rules' "
                       "proof stands")
        return None, pooled.verdict, judged
    if verdict == "SUPPORTS" and extract(" ".join(open_spans)):
        # Numbers and dates are exact: a claim number the sentence does not match cannot be supported.
        step = Edit("insertion", " ".join(open_spans), "", "reverse_entailment", "rule: claim number not in evidence",
                    10_000)
        notices.append("a claim number the deciding sentence does not state: not supported")
        return [*pooled.edits, step], "NOT ENOUGH INFO", judged
    p_top = claim_probs[verdict]
    if verdict == "SUPPORTS":
        steps = [Edit("substitution", span or claim, evidence[at], "forward_entailment",
                      f"model P(SUPPORTS)={p_top:.2f}", 9_000 + k, at) for k, span in enumerate(open_spans)]
        if not steps:
            steps = [Edit("substitution", claim, evidence[at], "forward_entailment", f"model P(SUPPORTS)={p_top:.2f}",
                          9_000, at)]
    else:
        op = judged[at].operator if judged[at].operator in ("negation", "alternation") else "alternation"
        steps = [Edit("substitution", " ".join(open_spans) or claim, evidence[at], op,
                      f"model P(REFUTES)={p_top:.2f}", 9_000, at)]
    edits = sorted([*kept, *steps], key=lambda e: (0 if e.kind == "deletion" else _order(e.operator), e.position))
    return edits, verdict, judged


def _order(op: str) -> int:
    from vltools.tools.factcheck._natlog import _ORDER

    return _ORDER[op]


_LEXICON: Any = None


def _lexicon(wn: Any, cls: Any) -> Any:
    global _LEXICON
    if _LEXICON is None:
        _LEXICON = cls(wn)
    return _LEXICON


class RelateInput(ToolInput):
    evidence_word: str = Field(min_length=1, max_length=100, description="Word from the evidence (e.g. 'poodle').")
    claim_word: str = Field(min_length=1, max_length=100, description="Word from the claim (e.g. 'dog').")


class RelateOutput(BaseModel):
    operator: Operator = Field(description="Natural-logic relation from the evidence word to the claim word.")
    symbol: str = Field(description="The operator's symbol.")
    relation: str = Field(description="The WordNet relation behind it ('none' = independence).")


@tool("natlog.relate")
def relate(inp: RelateInput, ctx: Context) -> RelateOutput:
    """The natural-logic relation between two words from WordNet (synonym, hypernym, hyponym, antonym, co-hyponym)."""
    from vltools.tools.factcheck._natlog import OPERATORS, Lexicon
    from vltools.tools.factcheck._wordnet import get_wordnet

    lex = _lexicon(get_wordnet(), Lexicon)
    e, c = inp.evidence_word.strip().lower(), inp.claim_word.strip().lower()
    rel = lex.relation(e, c)
    if rel is None and lex.co_hyponyms(e, c):
        rel = ("alternation", "co-hyponym")
    op, why = rel or ("independence", "none")
    return RelateOutput(operator=op, symbol=OPERATORS[op], relation=why)  # type: ignore[arg-type]
