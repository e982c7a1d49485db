"""Retrieval evaluation (Rankify, P24): nDCG@k, Recall@k, MRR@k, P@k and MAP of a retriever
over a collection, for queries with relevance judgments, computed with pytrec_eval (trec_eval).
Optionally a pipeline: the retriever, then a ``rerank.*`` tool over its top ``depth`` hits; both
stages are scored in the same run, side by side, with per-query deltas and paired significance
tests (scipy: paired t-test and Wilcoxon signed-rank).

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


class RerankStage(BaseModel):
    """The second stage of an evaluated pipeline. Fields other than these are passed to the tool."""

    model_config = ConfigDict(extra="allow")

    tool: str = Field(pattern=r"^rerank\.[a-z_]+$", description="The reranker, e.g. rerank.first.")
    depth: int = Field(20, ge=1, le=1000, description="How many first-stage hits it reranks per query.")
    llm: str | None = Field(None, description="LLM spec of the reranker (default: settings.llm).")


class StageComparison(BaseModel):
    metric: str = Field(description="The metric compared, e.g. ndcg@10.")
    first_stage: float = Field(description="Mean over queries, first stage alone.")
    reranked: float = Field(description="Mean over queries, after reranking.")
    delta: float = Field(description="reranked - first_stage.")
    improved: int = Field(description="Queries where reranking raised the metric.")
    worsened: int = Field(description="Queries where it lowered the metric.")
    per_query_delta: dict[str, float] = Field(description="reranked - first_stage per query id.")
    t_test_p: float | None = Field(description="Two-sided paired t-test p-value (None when undefined).")
    wilcoxon_p: float | None = Field(description="Two-sided Wilcoxon signed-rank p-value (None when undefined).")


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
    rerank: RerankStage | None = Field(
        None,
        description='Optional second stage, e.g. {"tool": "rerank.first", "depth": 20, "llm": "smollm2"}; '
        "other fields go to the reranker. Both stages are reported side by side.",
    )

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
    reranker: str | None = Field(None, description="The rerank.* tool of the second stage, if any.")
    first_stage_mean: dict[str, float] | None = Field(
        None, description="With a reranker: the first stage's mean metrics (`mean` is then the pipeline's)."
    )
    first_stage_per_query: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="With a reranker: the first stage's per-query metrics."
    )
    comparison: list[StageComparison] = Field(
        default_factory=list, description="With a reranker: every metric, first stage vs reranked, paired tests."
    )
    rerank_seconds: float = Field(0.0, description="Wall-clock time spent in the reranker.")


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
        import pytrec_eval  # noqa: F401
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
    judged_qrels = {q: qrels[q] for q in judged}
    per_query = score_run(run, judged_qrels, inp.k, depth)
    first_per_query: dict[str, dict[str, float]] = {}
    comparison: list[StageComparison] = []
    rerank_seconds = 0.0
    if inp.rerank is not None:
        t1 = time.monotonic()
        reranked = rerank_run(coll, run, dict(zip(judged, texts, strict=True)), inp.rerank, depth, ctx)
        rerank_seconds = time.monotonic() - t1
        first_per_query, per_query = per_query, score_run(reranked, judged_qrels, inp.k, depth)
        comparison = compare(first_per_query, per_query)
    mean = _mean(per_query)
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
        reranker=inp.rerank.tool if inp.rerank else None,
        first_stage_mean=_mean(first_per_query) if inp.rerank else None,
        first_stage_per_query=first_per_query if inp.per_query else {},
        comparison=comparison,
        rerank_seconds=round(rerank_seconds, 3),
    )


def _mean(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = sorted({key for row in per_query.values() for key in row})
    return {key: sum(row.get(key, 0.0) for row in per_query.values()) / len(per_query) for key in keys}


def score_run(
    run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k: int, depth: int
) -> dict[str, dict[str, float]]:
    """Per-query metrics of a run ({query: {doc: score}}) with pytrec_eval, MRR@k included."""
    import pytrec_eval

    measures, names = measures_for(k, depth)
    scores = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # MRR@k: reciprocal rank of the first relevant document within the top k.
    cut_run = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:k]) for q, docs in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut_run)
    per_query: dict[str, dict[str, float]] = {}
    for q in qrels:
        row = {names[m]: float(v) for m, v in scores.get(q, {}).items() if m in names}
        row[f"mrr@{k}"] = float(mrr.get(q, {}).get("recip_rank", 0.0))
        per_query[q] = row
    return per_query


def rerank_run(
    coll: Any, run: dict[str, dict[str, float]], texts: dict[str, str], stage: RerankStage, depth: int, ctx: Context
) -> dict[str, dict[str, float]]:
    """The run after ``stage`` reranks each query's top ``stage.depth`` hits (the rest keep their order)."""
    options = dict(stage.model_extra or {})
    reranked: dict[str, dict[str, float]] = {}
    for i, (qid, docs) in enumerate(run.items()):
        ctx.progress(i, len(run), f"reranking query {qid}")
        ranked = [d for d, _ in sorted(docs.items(), key=lambda kv: -kv[1]) if d != NO_HIT]
        head, tail = ranked[: stage.depth], ranked[stage.depth :]
        if len(head) > 1:
            stored = {d["id"]: d for d in coll.get(head)}
            passages = [
                {"id": d, "text": stored.get(d, {}).get("text") or "(empty)", "title": stored.get(d, {}).get("title")}
                for d in head
            ]
            payload = {"query": texts[qid], "passages": passages, **options}
            if stage.llm is not None:
                payload["llm"] = stage.llm
            out = ctx.call(stage.tool, payload)
            head = [h.id for h in out.hits]
        order = head + tail
        reranked[qid] = {d: float(depth - r) for r, d in enumerate(order)} or {NO_HIT: 0.0}
    return reranked


def compare(first: dict[str, dict[str, float]], second: dict[str, dict[str, float]]) -> list[StageComparison]:
    """Each metric, first stage vs reranked, over the same queries: means, deltas and paired tests."""
    import math

    from scipy import stats

    out = []
    queries = list(first)
    for metric in sorted({m for row in first.values() for m in row}):
        a = [first[q].get(metric, 0.0) for q in queries]
        b = [second[q].get(metric, 0.0) for q in queries]
        deltas = {q: y - x for q, x, y in zip(queries, a, b, strict=True)}
        t_p = w_p = None
        if len(queries) > 1 and any(abs(d) > 1e-12 for d in deltas.values()):
            t = stats.ttest_rel(b, a)
            t_p = float(t.pvalue) if math.isfinite(t.pvalue) else None
            try:
                w_p = float(stats.wilcoxon(b, a).pvalue)
            except ValueError:
                w_p = None
        elif len(queries) > 1:
            t_p = w_p = 1.0  # identical rankings: no difference at all
        out.append(
            StageComparison(
                metric=metric,
                first_stage=sum(a) / len(a),
                reranked=sum(b) / len(b),
                delta=(sum(b) - sum(a)) / len(a),
                improved=sum(d > 1e-12 for d in deltas.values()),
                worsened=sum(d < -1e-12 for d in deltas.values()),
                per_query_delta=deltas,
                t_test_p=t_p,
                wilcoxon_p=w_p,
            )
        )
    return out
