"""`graph.fact_check`: natural-logic-guided multi-hop retrieval for fact verification (P39).

A LangGraph ``StateGraph``: retrieve (``retrieve.*``) → select evidence sentences
(``evidence.select``, optionally a ``rerank.*`` tool) → natural-logic proof (``natlog.prove``)
→ stop when the proof is decisive, otherwise retrieve again conditioned on the claim, the
claim spans still uncovered and the evidence found so far, until the hop budget is spent.
All tools are reached through the registry. Needs WordNet (scripts/setup_data.py) and MiniLM.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field, model_validator

from vltools.core import Context, tool
from vltools.core.errors import InvalidInput, TooLarge
from vltools.graphs._common import ctx_of, report, run_graph
from vltools.schemas import EvidenceSentence, PartCoverage, ProofStep, SentenceJudgement, ToolInput, Verdict

MAX_HOPS = 5
MAX_CLAIM_CHARS = 2000


class FactCheckInput(ToolInput):
    claim: str = Field(description=f"The claim to verify (one sentence; at most {MAX_CLAIM_CHARS} characters).")
    collection: str | None = Field(None, description="Text collection to retrieve evidence from.")
    evidence: list[str] | None = Field(
        None, description="Evidence sentences to judge instead of retrieving (then no collection is needed)."
    )
    max_hops: int = Field(
        3, description=f"Retrieval hops allowed; values outside 1..{MAX_HOPS} are clamped (with a notice)."
    )
    retriever: Literal["retrieve.bm25", "retrieve.hybrid", "retrieve.dense"] = Field(
        "retrieve.bm25", description="Retrieval tool used at each hop."
    )
    k: int = Field(5, ge=1, le=100, description="Documents retrieved per hop.")
    per_hop: int = Field(3, ge=1, le=20, description="Evidence sentences kept per hop.")
    reranker: str | None = Field(None, description="A rerank.* tool to select evidence with (default: MiniLM cosine).")
    min_score: float = Field(0.3, ge=-1, le=1e6, description="Minimum evidence score (cosine when no reranker).")
    llm: str | None = Field(
        None, description="LLM spec for every LLM step: an LLM reranker, and the QA operator choice of natlog.prove."
    )
    operator_model: bool = Field(True, description="Let natlog.prove's trained operator model judge each (claim, "
                                 "sentence) pair (False: WordNet and the rules only).")

    @model_validator(mode="after")
    def _one_source(self) -> FactCheckInput:
        if (self.collection is None) == (self.evidence is None):
            raise ValueError(
                "give exactly one of 'collection' (retrieve evidence) or 'evidence' (judge given sentences)"
            )
        return self


class HopRecord(BaseModel):
    """One retrieval hop: what was asked, what came back, what the proof got from it."""

    hop: int = Field(description="Hop number (1-based).")
    query: str = Field(description="The query: the claim at hop 1, then the claim parts the proof left uncovered "
                       "plus the evidence words it could not align (the bridge to the next document).")
    retrieved: list[str] = Field(description="Ids of the documents retrieved (new ones only).")
    used: list[str] = Field(description="Ids of the documents whose sentences were kept as evidence.")
    expanded: str | None = Field(None, description="The document (title) this hop expanded: the one whose evidence "
                                 "sentence scored highest so far; its title joined the query.")


class FactCheckOutput(BaseModel):
    verdict: Verdict = Field(description="SUPPORTS, REFUTES or NOT ENOUGH INFO.")
    proof: list[ProofStep] = Field(description="Proof steps (natlog.prove's): aligned spans, operators, states.")
    states: list[Verdict] = Field(description="Automaton states of the final proof, starting state first.")
    evidence: list[EvidenceSentence] = Field(description="Evidence sentences with their document ids and hops.")
    hops: int = Field(description="Retrieval hops used (0 when evidence was given).")
    queries: list[str] = Field(description="The query issued at each hop.")
    uncovered: list[str] = Field(description="Claim spans the evidence left uncovered.")
    notices: list[str] = Field(description="Adjustments made to the input (e.g. a clamped hop budget).")
    decided_by: str | None = Field(None, description="'model' (trained operator model) or 'rules' (WordNet/rules).")
    sentences: list[SentenceJudgement] | None = Field(None, description="The operator model's judgement per "
                                                      "evidence sentence (indices into 'evidence').")
    parts: list[PartCoverage] | None = Field(None, description="Which evidence sentence covered which claim part.")
    hop_log: list[HopRecord] | None = Field(None, description="Per retrieval hop: the query, the retrieved ids and "
                                            "the sentences kept.")


class _State(TypedDict, total=False):
    claim: str
    params: dict[str, Any]
    hop: int
    max_hops: int
    evidence: Annotated[list[dict[str, Any]], operator.add]
    queries: Annotated[list[str], operator.add]
    seen: Annotated[list[str], operator.add]
    hop_log: Annotated[list[dict[str, Any]], operator.add]
    titles: Annotated[list[list[str]], operator.add]  # [doc id, title] of every retrieved document
    expanded: Annotated[list[str], operator.add]  # titles already expanded
    passages: list[dict[str, Any]]
    proof: dict[str, Any]
    exhausted: bool


def _query(state: _State) -> tuple[str, str | None]:
    """P39's autoregressive step: the next query from the claim parts the proof has not covered and the
    evidence words it could not align to the claim (what links the evidence so far to the missing part).
    Documents and sentences are retrieved jointly: the document whose kept sentence scored highest (and
    that was not expanded yet) is expanded, its title joining the query, so that its neighbours (other
    passages of the same article, or articles about that entity) come next. Returns (query, expanded title)."""
    claim = state["claim"]
    proof = state.get("proof")
    if not proof:
        return claim, None
    uncovered = " ".join(proof.get("uncovered", [])) or claim
    bridge = " ".join(s["evidence_span"] for s in proof.get("proof", []) if s["kind"] == "deletion")
    titles = dict((d, t) for d, t in state.get("titles", []))
    done = set(state.get("expanded", []))
    ranked = sorted(state.get("evidence", []), key=lambda e: -float(e.get("score") or 0.0))
    expand = next((titles[e["doc_id"]] for e in ranked if titles.get(e["doc_id"]) and titles[e["doc_id"]] not in done),
                  None)
    return " ".join(x for x in (uncovered, uncovered, bridge, expand) if x)[:9000], expand


def _retrieve(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    hop = state.get("hop", 0) + 1
    report(config, 3 * (hop - 1), 3 * state["max_hops"], "retrieve", f"hop {hop}")
    query, expand = _query(state)
    seen = set(state.get("seen", []))
    out = ctx.call(p["retriever"], {"collection": p["collection"], "query": query, "k": p["k"] + len(seen)})
    fresh = [{"id": h.id, "text": h.text, "title": h.title} for h in out.hits if h.id not in seen][: p["k"]]
    return {"hop": hop, "queries": [query], "passages": fresh, "seen": [h["id"] for h in fresh],
            "titles": [[h["id"], h["title"] or ""] for h in fresh], "expanded": [expand] if expand else [],
            "exhausted": not fresh, "hop_log": [{"hop": hop, "query": query, "retrieved": [h["id"] for h in fresh],
                                                 "used": [], "expanded": expand}]}


def _select(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 3 * state["hop"] - 2, 3 * state["max_hops"], "select", f"{len(state['passages'])} passages")
    if not state["passages"]:
        return {"evidence": []}
    out = ctx.call("evidence.select", {
        "claim": state["claim"], "passages": state["passages"], "k": p["per_hop"], "reranker": p["reranker"],
        "min_score": p["min_score"] if not p["reranker"] else None, "llm": p["llm"],
        "exclude": [e["text"] for e in state.get("evidence", [])],
    })
    return {"evidence": [{"doc_id": s.doc_id, "text": s.text, "hop": state["hop"], "score": s.score}
                         for s in out.sentences]}


def _hop_log(final: dict[str, Any]) -> list[dict[str, Any]]:
    """Fill each hop's ``used`` from the evidence the selection kept at that hop."""
    log = [dict(h) for h in final.get("hop_log", [])]
    for h in log:
        h["used"] = list(dict.fromkeys(e["doc_id"] for e in final.get("evidence", []) if e.get("hop") == h["hop"]))
    return log


def _prove(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    n = len(state.get("evidence", []))
    hop = state.get("hop", 0)
    report(config, max(3 * hop - 1, 0), 3 * state["max_hops"] if hop else 1, "prove", f"{n} sentences")
    texts = [e["text"] for e in state.get("evidence", [])]
    if not texts:
        return {"proof": {"verdict": "NOT ENOUGH INFO", "proof": [], "states": ["SUPPORTS"],
                          "uncovered": [state["claim"]]}}
    out = ctx.call("natlog.prove", {"claim": state["claim"], "evidence": texts, "llm": p["llm"],
                                    "operator_model": p.get("operator_model", True)})
    return {"proof": out.model_dump(mode="json")}


def _next(state: _State) -> str:
    """Dynamic termination: stop on a decisive proof, a spent budget or an exhausted collection."""
    if state["proof"]["verdict"] != "NOT ENOUGH INFO":
        return "end"
    if "collection" not in state["params"] or state.get("exhausted"):
        return "end"
    return "retrieve" if state.get("hop", 0) < state["max_hops"] else "end"


@functools.cache
def build_graph() -> Any:
    """The compiled fact-checking graph (input state: claim, params, max_hops[, evidence])."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_State)
    g.add_node("retrieve", _retrieve)
    g.add_node("select", _select)
    g.add_node("prove", _prove)
    g.add_conditional_edges(START, lambda s: "retrieve" if "collection" in s["params"] else "prove",
                            {"retrieve": "retrieve", "prove": "prove"})
    g.add_edge("retrieve", "select")
    g.add_edge("select", "prove")
    g.add_conditional_edges("prove", _next, {"retrieve": "retrieve", "end": END})
    return g.compile()


@tool("graph.fact_check")
def fact_check(inp: FactCheckInput, ctx: Context) -> FactCheckOutput:
    """Verify a claim against a collection - multi-hop retrieval guided by a natural-logic proof (SUPPORTS / REFUTES /
    NOT ENOUGH INFO).

    Retrieval stops as soon as the proof is decisive (dynamic termination).

    Give ``collection`` to retrieve evidence (BM25 by default) or ``evidence`` to judge given
    sentences. Returns the verdict, the proof (aligned spans, operators, automaton states) and the
    evidence with the hop that found it. A hop budget outside 1..5 is clamped, with a notice.
    """
    claim = inp.claim.strip()
    if not claim:
        raise InvalidInput("the claim is empty", hint="pass a sentence to verify in 'claim'")
    if len(claim) > MAX_CLAIM_CHARS:
        raise TooLarge(f"the claim is {len(claim):,} characters; at most {MAX_CLAIM_CHARS:,} are accepted",
                       hint="verify one sentence-sized claim at a time")
    notices = []
    hops = min(max(inp.max_hops, 1), MAX_HOPS)
    if hops != inp.max_hops:
        notices.append(f"max_hops {inp.max_hops} is outside 1..{MAX_HOPS}; clamped to {hops}")
    params: dict[str, Any] = {"retriever": inp.retriever, "k": inp.k, "per_hop": inp.per_hop,
                              "reranker": inp.reranker, "min_score": inp.min_score, "llm": inp.llm,
                              "operator_model": inp.operator_model}
    state: dict[str, Any] = {"claim": claim, "max_hops": hops, "params": params}
    if inp.collection is not None:
        ctx.collection(inp.collection)  # NotFound (listing the collections) before any work
        params["collection"] = inp.collection
    else:
        given = [e.strip() for e in inp.evidence or [] if e.strip()]
        if not given:
            raise InvalidInput("'evidence' has no non-empty sentence", hint="pass sentences, or a collection")
        state["evidence"] = [{"doc_id": f"given:{i}", "text": t, "hop": 0, "score": 0.0} for i, t in enumerate(given)]
    final = run_graph(build_graph(), state, ctx)
    proof = final["proof"]
    return FactCheckOutput(
        verdict=proof["verdict"],
        proof=proof["proof"],
        states=proof["states"],
        evidence=final.get("evidence", []),
        hops=final.get("hop", 0),
        queries=final.get("queries", []),
        uncovered=proof.get("uncovered", []),
        notices=notices + (proof.get("notices") or []),
        decided_by=proof.get("decided_by"),
        sentences=proof.get("sentences"),
        parts=proof.get("parts"),
        hop_log=_hop_log(final) if inp.collection is not None else None,
    )
