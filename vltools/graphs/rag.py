"""`graph.rag`: retrieve → rerank → grounded answer with citations (P24, Rankify's pipeline).

A LangGraph ``StateGraph`` over registry tools: ``retrieve.hybrid`` (or another retriever),
a chosen ``rerank.*`` tool (default: MiniLM cosine through ``evidence.select``), a relevance gate,
then the LLM (``settings.llm`` or ``llm``) answers from the top passages citing their ids.
When nothing relevant is found it says so instead of calling the LLM. Progress per node.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.core.errors import InvalidInput
from vltools.graphs._common import ctx_of, report, run_graph
from vltools.schemas import ToolInput

CANNOT = "I cannot answer this from the documents: nothing relevant was found."
NODES = 4


class RagInput(ToolInput):
    question: str = Field(min_length=1, max_length=2000, description="The question to answer.")
    collection: str = Field(description="Text collection to answer from.")
    retriever: Literal["retrieve.hybrid", "retrieve.bm25", "retrieve.dense"] = Field(
        "retrieve.hybrid", description="First-stage retrieval tool."
    )
    k: int = Field(20, ge=1, le=200, description="Candidates retrieved before reranking.")
    reranker: str | None = Field(None, description="A rerank.* tool (default: MiniLM cosine similarity).")
    top_n: int = Field(3, ge=1, le=10, description="Passages given to the LLM.")
    min_score: float = Field(
        0.35, ge=-1, le=1, description="Relevance gate: MiniLM cosine some retrieved passage must reach to answer."
    )
    llm: str | None = Field(
        None, description="LLM spec for every LLM step: the answer and an LLM reranker (default: settings.llm)."
    )
    max_tokens: int = Field(200, ge=16, le=2048, description="Longest answer, tokens.")


class Source(BaseModel):
    id: str = Field(description="Document id.")
    text: str = Field(description="Passage text given to the LLM.")
    score: float = Field(description="Reranker score.")
    relevance: float = Field(description="MiniLM cosine similarity to the question.")


class RagOutput(BaseModel):
    answer: str = Field(description="The answer, citing passage ids in square brackets.")
    answerable: bool = Field(description="False when nothing relevant was found (then no LLM call is made).")
    citations: list[str] = Field(description="Ids cited in the answer (only ids of the given passages).")
    sources: list[Source] = Field(description="The passages the answer was grounded in, best first.")
    reranker: str = Field(description="What ordered the passages.")


class _State(TypedDict, total=False):
    question: str
    params: dict[str, Any]
    hits: list[dict[str, Any]]
    ranked: list[dict[str, Any]]
    relevance: dict[str, float]
    answer: str
    reranker: str


def _retrieve(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 0, NODES, "retrieve", p["retriever"])
    out = ctx.call(p["retriever"], {"collection": p["collection"], "query": state["question"], "k": p["k"]})
    return {"hits": [{"id": h.id, "text": h.text, "title": h.title} for h in out.hits if h.text]}


def _rerank(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 1, NODES, "rerank", p["reranker"] or "cosine")
    if not state["hits"]:
        return {"ranked": [], "relevance": {}, "reranker": p["reranker"] or "cosine"}
    passages = [{"id": h["id"], "text": h["text"], "title": h["title"]} for h in state["hits"]]
    cos = ctx.call("evidence.select", {"claim": state["question"], "passages": passages, "split": False,
                                       "k": len(passages)})
    relevance = {s.doc_id: s.score for s in cos.sentences}
    if p["reranker"]:
        extra = {"llm": p["llm"]} if p["llm"] else {}
        out = ctx.call(p["reranker"], {"query": state["question"], "passages": passages, **extra})
        ranked = [{"id": h.id, "text": h.text or _text(passages, h.id), "score": h.score} for h in out.hits]
        name = p["reranker"]
    else:
        ranked = [{"id": s.doc_id, "text": _text(passages, s.doc_id), "score": s.score} for s in cos.sentences]
        name = cos.scorer
    return {"ranked": ranked[: p["top_n"]], "relevance": relevance, "reranker": name}


def _text(passages: list[dict[str, Any]], pid: str) -> str:
    return next((p["text"] for p in passages if p["id"] == pid), "")


def _gate(state: _State) -> str:
    """Answer only when some retrieved passage is relevant (MiniLM cosine, whatever the reranker)."""
    best = max(state.get("relevance", {}).values(), default=-1.0)
    return "answer" if state.get("ranked") and best >= state["params"]["min_score"] else "refuse"


def _answer(state: _State, config: RunnableConfig) -> dict[str, Any]:
    ctx, p = ctx_of(config), state["params"]
    report(config, 2, NODES, "answer", "generating")
    blocks = "\n\n".join(f"[{r['id']}] {r['text']}" for r in state["ranked"])
    messages = [
        {"role": "system", "content": "Answer only from the passages. Cite the ids of the passages you use in "
         "square brackets, e.g. [doc1]. If the passages do not contain the answer, say you cannot answer."},
        {"role": "user", "content": f"Passages:\n{blocks}\n\nQuestion: {state['question']}\nAnswer:"},
    ]
    out = ctx.call("llm.generate", {"messages": messages, "max_tokens": p["max_tokens"], "llm": p["llm"]})
    text = out.text.strip()
    report(config, 3, NODES, "answer", "done")
    return {"answer": text}


def _refuse(state: _State, config: RunnableConfig) -> dict[str, Any]:
    report(config, 3, NODES, "refuse", "nothing relevant")
    return {"answer": CANNOT}


@functools.cache
def build_graph() -> Any:
    """The compiled RAG graph (input state: question, params)."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_State)
    g.add_node("retrieve", _retrieve)
    g.add_node("rerank", _rerank)
    g.add_node("answer", _answer)
    g.add_node("refuse", _refuse)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "rerank")
    g.add_conditional_edges("rerank", _gate, {"answer": "answer", "refuse": "refuse"})
    g.add_edge("answer", END)
    g.add_edge("refuse", END)
    return g.compile()


@tool("graph.rag")
def rag(inp: RagInput, ctx: Context) -> RagOutput:
    """Answer a question from a collection - hybrid retrieval, reranking, and an LLM answer grounded in cited passages.

    Says it cannot answer (without calling the LLM) when no passage reaches ``min_score``.
    """
    question = inp.question.strip()
    if not question:
        raise InvalidInput("the question is empty", hint="pass a question in 'question'")
    if inp.reranker and not inp.reranker.startswith("rerank."):
        raise InvalidInput(f"reranker {inp.reranker!r} is not a rerank.* tool", hint="see `vltools list --tag rerank`")
    ctx.collection(inp.collection)  # NotFound early, naming the collections that exist
    params = inp.model_dump(exclude={"question"})
    final = run_graph(build_graph(), {"question": question, "params": params}, ctx)
    ranked, rel = final.get("ranked", []), final.get("relevance", {})
    answerable = final["answer"] != CANNOT
    ids = [r["id"] for r in ranked]
    cited = [i for i in dict.fromkeys(re.findall(r"\[([^\[\]]+)\]", final["answer"])) if i in ids]
    return RagOutput(
        answer=final["answer"],
        answerable=answerable,
        citations=cited,
        sources=[Source(id=r["id"], text=r["text"], score=r["score"], relevance=rel.get(r["id"], 0.0))
                 for r in ranked] if answerable else [],
        reranker=final.get("reranker", ""),
    )
