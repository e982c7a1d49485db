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
    state: Verdict = Field(description="Automaton state after reading this operator.")
