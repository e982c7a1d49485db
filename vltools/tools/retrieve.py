"""First-stage retrieval over a collection (Rankify, P24): BM25, dense (FAISS) and hybrid RRF.

Needs: a collection (``collection.create`` + ``collection.add``); dense and hybrid load the
collection's text encoder (``minilm`` by default), or its CLIP model for image/video collections.
The output is a `Ranking`, so it feeds rerankers directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from vltools.core.context import Context
from vltools.core.errors import Unsupported
from vltools.core.tool import tool
from vltools.schemas import Hit, Ranking, ToolInput

Pairs = list[tuple[str, float]]


class RetrieveInput(ToolInput):
    collection: str = Field(description="Collection to search.")
    query: str = Field(min_length=1, max_length=10_000, description="Free-text query.")
    k: int = Field(10, ge=1, le=1000, description="Number of hits to return (1-1000).")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("query is empty or only whitespace")
        return v


class HybridInput(RetrieveInput):
    bm25_weight: float = Field(1.0, ge=0, le=100, description="Weight of the BM25 ranking in the fusion.")
    dense_weight: float = Field(1.0, ge=0, le=100, description="Weight of the dense ranking in the fusion.")
    rrf_k: int = Field(60, ge=1, le=10_000, description="RRF constant: score = sum_r w_r / (rrf_k + rank_r).")
    depth: int = Field(100, ge=1, le=1000, description="Candidates taken from each retriever before fusion.")

    @model_validator(mode="after")
    def _some_weight(self) -> HybridInput:
        if self.bm25_weight == 0 and self.dense_weight == 0:
            raise ValueError("bm25_weight and dense_weight cannot both be 0")
        return self


class RetrieveOutput(Ranking):
    collection: str = Field(description="The collection searched.")
    retriever: str = Field(description="Which retriever produced the ranking (bm25, dense:<model>, hybrid).")
    count: int = Field(description="Documents in the collection when searched.")


# -- ranking functions shared with eval.retrieval ---------------------------------------------
def bm25_rank(coll: Any, queries: list[str], k: int) -> list[Pairs]:
    return [coll.bm25_search(q, k) for q in queries]


def encode_queries(coll: Any, queries: list[str], ctx: Context) -> np.ndarray:
    """Query vectors in the collection's embedding space."""
    if not coll.has_vectors:
        raise Unsupported(
            f"collection {coll.name!r} has no vectors (created with model 'none')",
            hint="use retrieve.bm25, or create a collection with a text model such as 'minilm'",
        )
    if coll.kind == "text":
        return ctx.text(coll.model).encode(queries, batch_size=64)
    vecs, _ = ctx.clip(coll.model).encode_texts(queries, batch_size=64)
    return np.asarray(vecs, dtype=np.float32)


def dense_rank(coll: Any, queries: list[str], k: int, ctx: Context) -> list[Pairs]:
    return coll.search_many(encode_queries(coll, queries, ctx), k)


def rrf(rankings: list[Pairs], weights: list[float], rrf_k: int, k: int) -> Pairs:
    """Weighted reciprocal-rank fusion (Cormack et al. 2009): sum_r w_r / (rrf_k + rank_r), rank from 1."""
    fused: dict[str, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        if w == 0:
            continue
        for rank, (doc, _) in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (rrf_k + rank)
    order = sorted(fused.items(), key=lambda kv: -kv[1])  # stable: ties keep first-seen order
    return order[:k]


def hybrid_rank(
    coll: Any, queries: list[str], k: int, ctx: Context, *, bm25_weight=1.0, dense_weight=1.0, rrf_k=60, depth=100
) -> list[Pairs]:
    """RRF of BM25 and dense rankings, each taken to ``max(depth, k)``."""
    depth = max(depth, k)
    sparse = bm25_rank(coll, queries, depth) if bm25_weight else [[] for _ in queries]
    dense = dense_rank(coll, queries, depth, ctx) if dense_weight else [[] for _ in queries]
    return [rrf([s, d], [bm25_weight, dense_weight], rrf_k, k) for s, d in zip(sparse, dense, strict=True)]


def to_hits(coll: Any, pairs: Pairs) -> list[Hit]:
    """Hits with the stored text, title and metadata, in ranking order."""
    docs = {d["id"]: d for d in coll.get([doc for doc, _ in pairs])}
    hits = []
    for rank, (doc, score) in enumerate(pairs, start=1):
        d = docs.get(doc, {})
        extra = {key: d[key] for key in ("path", "hash") if key in d}
        hits.append(
            Hit(
                id=doc,
                score=score,
                rank=rank,
                text=d.get("text", ""),
                title=d.get("title", ""),
                metadata=d.get("metadata", {}),
                **extra,
            )
        )
    return hits


def _output(coll: Any, query: str, pairs: Pairs, retriever: str) -> RetrieveOutput:
    return RetrieveOutput(
        query=query, hits=to_hits(coll, pairs), collection=coll.name, retriever=retriever, count=coll.count
    )


# -- tools ---------------------------------------------------------------------------------
@tool("retrieve.bm25")
def bm25(inp: RetrieveInput, ctx: Context) -> RetrieveOutput:
    """Keyword search with BM25 (stemmed, stop words removed) over a text collection."""
    coll = ctx.collection(inp.collection)
    return _output(coll, inp.query, bm25_rank(coll, [inp.query], inp.k)[0], "bm25")


@tool("retrieve.dense")
def dense(inp: RetrieveInput, ctx: Context) -> RetrieveOutput:
    """Semantic search - embed the query with the collection's encoder and return the nearest documents (FAISS)."""
    coll = ctx.collection(inp.collection)
    return _output(coll, inp.query, dense_rank(coll, [inp.query], inp.k, ctx)[0], f"dense:{coll.model}")


@tool("retrieve.hybrid")
def hybrid(inp: HybridInput, ctx: Context) -> RetrieveOutput:
    """Hybrid search - reciprocal-rank fusion of BM25 and dense rankings with configurable weights."""
    coll = ctx.collection(inp.collection)
    pairs = hybrid_rank(
        coll,
        [inp.query],
        inp.k,
        ctx,
        bm25_weight=inp.bm25_weight,
        dense_weight=inp.dense_weight,
        rrf_k=inp.rrf_k,
        depth=inp.depth,
    )[0]
    return _output(coll, inp.query, pairs, "hybrid")
