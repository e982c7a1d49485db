"""Retrieval evaluation (Rankify, P24): nDCG@k, Recall@k, MRR@k, P@k and MAP of a retriever
over a collection, for queries with relevance judgments, computed with pytrec_eval (trec_eval).

Needs: a text collection; queries and qrels inline or as files in the layout of
``shared/data/*``: ``queries.jsonl`` ({"id", "text"} per line) and ``qrels.tsv``
(``query-id doc-id relevance``, optional header; TREC 4-column qrels also read).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vltools.core.context import Context
from vltools.core.errors import BackendUnavailable, InvalidInput
from vltools.core.paths import check_path
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.store._io import read_jsonl, read_lines
from vltools.tools.retrieve import bm25_rank, encode_queries, rrf

MAX_RELEVANCE = 10_000  # trec_eval keeps grades in C ints; real qrels use 0..4 or so
NO_HIT = "__vltools_no_hit__"  # placeholder so queries with an empty ranking still count (as 0)


class QueryItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Query id (as in the qrels).")
    text: str = Field(min_length=1, description="Query text.")

    @field_validator("id", mode="before")
    @classmethod
    def _id_str(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class EvalRetrievalInput(ToolInput):
    collection: str = Field(description="Collection to search (it must hold the judged documents).")
    queries: list[QueryItem] | None = Field(None, description='Judged queries inline: a list of {"id", "text"}.')
    queries_path: str | None = Field(
        None, description='Or a queries.jsonl file ({"id", "text"} per line; "_id" is read too).'
    )
    qrels: dict[str, dict[str, int]] | None = Field(
        None, description="Relevance judgments inline: {query_id: {doc_id: relevance}}."
    )
    qrels_path: str | None = Field(
        None, description="Or a qrels.tsv file (query-id doc-id relevance; optional header; TREC 4 columns read too)."
    )
    retriever: Literal["bm25", "dense", "hybrid"] = Field("bm25", description="Which retriever to evaluate.")
    k: int = Field(10, ge=1, le=1000, description="Cut-off of nDCG@k, Recall@k, MRR@k and P@k.")
    depth: int = Field(
        100, ge=1, le=1000, description="Ranking depth retrieved per query; MAP and recall@depth use it."
    )
    bm25_weight: float = Field(1.0, ge=0, le=100, description="Hybrid: weight of BM25 in the fusion.")
    dense_weight: float = Field(1.0, ge=0, le=100, description="Hybrid: weight of dense retrieval in the fusion.")
    rrf_k: int = Field(60, ge=1, le=10_000, description="Hybrid: RRF constant.")
    per_query: bool = Field(True, description="Include per-query metrics in the output.")

    @model_validator(mode="before")
    @classmethod
    def _paths_given_inline(cls, data: Any) -> Any:
        """Deprecated (until 0.2): a path string in ``queries`` / ``qrels`` means ``*_path``."""
        if isinstance(data, dict):
            for name in ("queries", "qrels"):
                if isinstance(data.get(name), str) and data.get(f"{name}_path") is None:
                    warnings.warn(
                        f"eval.retrieval: a path in {name!r} is deprecated, use {name + '_path'!r}",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    data = {**data, f"{name}_path": data[name]}
                    del data[name]
        return data

    @model_validator(mode="after")
    def _one_source_each(self) -> EvalRetrievalInput:
        for name in ("queries", "qrels"):
            if (getattr(self, name) is None) == (getattr(self, f"{name}_path") is None):
                raise ValueError(f"give exactly one of {name!r} (inline) or {name + '_path'!r} (a file)")
        return self


class EvalRetrievalOutput(BaseModel):
    collection: str = Field(description="Collection searched.")
    retriever: str = Field(description="Retriever evaluated.")
    k: int = Field(description="Metric cut-off.")
    depth: int = Field(description="Ranking depth per query.")
    mean: dict[str, float] = Field(description="Mean over judged queries: ndcg@k, recall@k, mrr@k, p@k, map, ...")
    per_query: dict[str, dict[str, float]] = Field(description="The same metrics per query id.")
    num_queries: int = Field(description="Queries evaluated (those with judgments).")
    skipped_queries: list[str] = Field(description="Query ids without any judgment (not evaluated).")
    seconds: float = Field(description="Wall-clock time.")


def load_queries(queries: list[QueryItem] | None, queries_path: str | None, ctx: Context) -> dict[str, str]:
    out: dict[str, str] = {}
    if queries is None:
        path = check_path(queries_path or "", ctx.settings, what="queries file")
        for n, obj in read_jsonl(path):
            qid, text = obj.get("id", obj.get("_id")), obj.get("text")
            if qid is None or not isinstance(text, str) or not text.strip():
                raise InvalidInput(f"{path.name} line {n}: need a non-empty 'id' and 'text'")
            out[str(qid)] = text
    else:
        out = {q.id: q.text for q in queries}
    if not out:
        raise InvalidInput("no queries given")
    blank = [q for q, t in out.items() if not t.strip()]
    if blank:
        raise InvalidInput(f"query {blank[0]} is empty or only whitespace")
    return out


def load_qrels(
    qrels: dict[str, dict[str, int]] | None, qrels_path: str | None, ctx: Context
) -> dict[str, dict[str, int]]:
    if qrels is not None:
        out_d = {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items()}
        if any(abs(r) > MAX_RELEVANCE for docs in out_d.values() for r in docs.values()):
            raise InvalidInput(
                f"a relevance grade is beyond ±{MAX_RELEVANCE:,}", hint="use small integer grades (0, 1, 2...)"
            )
        return out_d
    path = check_path(qrels_path or "", ctx.settings, what="qrels file")
    out: dict[str, dict[str, int]] = {}
    for n, line in read_lines(path):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) not in (3, 4):
            raise InvalidInput(f"{path.name} line {n}: expected 'query-id doc-id relevance' (or TREC 4 columns)")
        qid, doc, rel = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], parts[2], parts[3])
        try:
            value = int(float(rel))
        except (ValueError, OverflowError):  # never quote the file: it may not be a qrels file at all
            if n == 1:  # a header line such as "query-id doc-id relevance"
                continue
            raise InvalidInput(
                f"{path.name} line {n}: the relevance column is not a finite number",
                hint="a qrels line is 'query-id doc-id relevance' (or TREC 'query-id 0 doc-id relevance')",
            ) from None
        if abs(value) > MAX_RELEVANCE:
            raise InvalidInput(
                f"{path.name} line {n}: the relevance grade is beyond ±{MAX_RELEVANCE:,}",
                hint="use small integer grades (0, 1, 2...)",
            )
        out.setdefault(qid, {})[doc] = value
    if not out:
        raise InvalidInput(f"{path.name} holds no judgments")
    return out


def measures_for(k: int, depth: int) -> tuple[set[str], dict[str, str]]:
    """pytrec_eval measures and the output key for each of their result names."""
    cuts = sorted({k, depth})
    measures = {f"ndcg_cut.{k}", f"P.{k}", "map", f"recall.{','.join(map(str, cuts))}"}
    names = {f"ndcg_cut_{k}": f"ndcg@{k}", f"P_{k}": f"p@{k}", "map": "map"}
    names.update({f"recall_{c}": f"recall@{c}" for c in cuts})
    return measures, names


@tool("eval.retrieval")
def retrieval(inp: EvalRetrievalInput, ctx: Context) -> EvalRetrievalOutput:
    """Evaluate a retriever on a collection with judged queries - nDCG@k, Recall@k, MRR@k and MAP.

    Metrics are reported per query and as the mean; P@k and recall at the ranking depth too.
    """
    try:
        import pytrec_eval
    except ImportError as err:
        raise BackendUnavailable("pytrec_eval is not installed", hint="pip install pytrec-eval-terrier") from err
    t0 = time.monotonic()
    coll = ctx.collection(inp.collection)
    queries = load_queries(inp.queries, inp.queries_path, ctx)
    qrels = load_qrels(inp.qrels, inp.qrels_path, ctx)
    judged = [q for q in queries if q in qrels]
    skipped = [q for q in queries if q not in qrels]
    if not judged:
        raise InvalidInput(
            "none of the queries has a judgment in the qrels",
            hint="query ids must match the first column of the qrels",
        )
    depth = max(inp.depth, inp.k)
    texts = [queries[q] for q in judged]
    vectors = None
    if inp.retriever in ("dense", "hybrid"):
        ctx.progress(0, len(judged), "encoding queries")
        vectors = encode_queries(coll, texts, ctx)
    run: dict[str, dict[str, float]] = {}
    for i, (qid, text) in enumerate(zip(judged, texts, strict=True)):
        ctx.progress(i, len(judged), f"query {qid}")
        if inp.retriever == "bm25":
            pairs = bm25_rank(coll, [text], depth)[0]
        elif inp.retriever == "dense":
            pairs = coll.search_many(vectors[i : i + 1], depth)[0]
        else:
            sparse = bm25_rank(coll, [text], depth)[0] if inp.bm25_weight else []
            dense = coll.search_many(vectors[i : i + 1], depth)[0] if inp.dense_weight else []
            pairs = rrf([sparse, dense], [inp.bm25_weight, inp.dense_weight], inp.rrf_k, depth)
        # trec_eval re-sorts by score and breaks ties by doc id: score by rank keeps our order.
        run[qid] = {doc: float(depth - r) for r, (doc, _) in enumerate(pairs)} or {NO_HIT: 0.0}
    ctx.progress(len(judged), len(judged), "scoring")
    measures, names = measures_for(inp.k, depth)
    judged_qrels = {q: qrels[q] for q in judged}
    scores = pytrec_eval.RelevanceEvaluator(judged_qrels, measures).evaluate(run)
    # MRR@k: reciprocal rank of the first relevant document within the top k.
    cut_run = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[: inp.k]) for q, docs in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(judged_qrels, {"recip_rank"}).evaluate(cut_run)
    per_query: dict[str, dict[str, float]] = {}
    for q in judged:
        row = {names[m]: float(v) for m, v in scores.get(q, {}).items() if m in names}
        row[f"mrr@{inp.k}"] = float(mrr.get(q, {}).get("recip_rank", 0.0))
        per_query[q] = row
    keys = sorted({key for row in per_query.values() for key in row})
    mean = {key: sum(row.get(key, 0.0) for row in per_query.values()) / len(per_query) for key in keys}
    retriever = inp.retriever if inp.retriever != "dense" else f"dense:{coll.model}"
    return EvalRetrievalOutput(
        collection=coll.name,
        retriever=retriever,
        k=inp.k,
        depth=depth,
        mean=mean,
        per_query=per_query if inp.per_query else {},
        num_queries=len(judged),
        skipped_queries=skipped,
        seconds=round(time.monotonic() - t0, 3),
    )
