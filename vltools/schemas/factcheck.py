"""Fact-checking types shared by natlog.prove, evidence.select and graph.fact_check."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Verdict = Literal["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"]
Operator = Literal[
    "equivalence", "forward_entailment", "reverse_entailment", "negation", "alternation", "cover", "independence"
]


class EvidenceSentence(BaseModel):
    """One evidence sentence and where it came from (``produces: [evidence]``)."""

    doc_id: str = Field(description="Id of the passage or document it comes from ('given:<i>' for given evidence).")
    text: str = Field(description="The sentence.")
    score: float = Field(0.0, description="Relevance to the claim (cosine, or a reranker's score).")
    hop: int | None = Field(None, description="Retrieval hop that found it (graph.fact_check; 0 for given evidence).")


class ProofStep(BaseModel):
    """One edit of a natural-logic proof, from evidence to claim, and the automaton state after it."""

    kind: Literal["deletion", "substitution", "insertion", "negation"] = Field(
        description="Edit from evidence to claim: deletion (evidence-only words), substitution (aligned pair), "
        "insertion (claim-only words) or negation (polarity differs)."
    )
    claim_span: str = Field(description="Claim words of this edit ('' for deletions).")
    evidence_span: str = Field(description="Evidence words of this edit ('' for insertions).")
    operator: Operator = Field(description="Natural-logic relation from the evidence span to the claim span.")
    symbol: str = Field(description="The operator's symbol: ≡ ⊑ ⊒ ¬ | ⌣ #.")
    source: str = Field(description="Which signal chose the operator (same lemma, synonym, hypernym, antonym, ...).")
    evidence_index: int | None = Field(description="Index of the evidence sentence the span comes from.")
    origin: Literal["model", "wordnet", "rule", "embedding", "llm"] | None = Field(
        None, description="Family of the signal behind the operator: the trained operator model, WordNet, a rule "
        "(numbers, negation cues, direction words, insertions/deletions), embedding similarity or an LLM.")
    state: Verdict = Field(description="Automaton state after reading this operator.")


class SentenceJudgement(BaseModel):
    """What the operator model made of one (claim, evidence sentence) pair."""

    evidence_index: int = Field(description="Index of the evidence sentence.")
    operator: Operator = Field(description="The pair's operator from the model's most likely class.")
    probabilities: dict[str, float] = Field(description="Model probabilities of SUPPORTS, REFUTES, NOT ENOUGH INFO.")
    lexical_verdict: Verdict = Field(description="Verdict of the WordNet/rule proof on this sentence alone.")


class PartCoverage(BaseModel):
    """Which evidence sentence covered which part (content span) of the claim, across sentences."""

    claim_span: str = Field(description="Claim words.")
    evidence_index: int | None = Field(description="The sentence that covered them (None: none did).")
    evidence_span: str = Field(description="The evidence words aligned to them ('' if none).")
    operator: Operator = Field(description="Operator of the alignment.")
