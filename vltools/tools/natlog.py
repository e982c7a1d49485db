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
from vltools.schemas import Operator, ProofStep, ToolInput, Verdict

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


class ProveOutput(BaseModel):
    verdict: Verdict = Field(description="Final automaton state.")
    proof: list[ProofStep] = Field(description="Edits in the order the automaton read them.")
    states: list[Verdict] = Field(description="Automaton states, starting state first.")
    uncovered: list[str] = Field(description="Claim spans no evidence covers (what a further hop should look for).")
    evidence_used: list[int] = Field(description="Indices of the evidence sentences the proof aligned to.")
    coverage: float = Field(description="Fraction of the claim's content words aligned to evidence.")


# (encoder spec, word) -> vector; words recur across claims. Capped: ~30 MB of 384-d vectors.
_WORD_VECS: LRUCache[tuple[str, str], Any] = LRUCache(maxsize=20_000)


def _similarity(ctx: Context, spec: str | None):
    import numpy as np

    enc = ctx.text(spec)

    def vectors(texts: list[str]) -> Any:
        found = {t: _WORD_VECS.get((enc.spec, t)) for t in dict.fromkeys(texts)}
        missing = [t for t, v in found.items() if v is None]
        if missing:
            for t, v in zip(missing, enc.encode(missing), strict=True):
                found[t] = v
                if len(t) <= 40:  # words and short phrases recur; long spans rarely do
                    _WORD_VECS.put((enc.spec, t), v)
        return np.stack([found[t] for t in texts])

    def sim(a: list[str], b: list[str]) -> list[list[float]]:
        return (vectors(a) @ vectors(b).T).tolist()

    return sim


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
    lex = _lexicon(get_wordnet(), Lexicon)
    sim = _similarity(ctx, inp.text_model) if inp.use_embeddings else None
    chooser = _llm_chooser(ctx, inp.llm) if inp.llm else None
    p = _prove(claim, evidence, lex, similarity=sim, chooser=chooser)
    ctx.progress(2, 2, p.verdict)
    steps = [ProofStep(**e.as_dict(), state=s) for e, s in zip(p.edits, p.states, strict=True)]
    return ProveOutput(
        verdict=p.verdict,  # type: ignore[arg-type]
        proof=steps,
        states=["SUPPORTS", *p.states],  # type: ignore[list-item]
        uncovered=p.uncovered,
        evidence_used=p.evidence_used,
        coverage=round(p.coverage, 4),
    )


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
