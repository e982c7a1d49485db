"""Shared parts of the LLM rerankers: input/output models, passage truncation, prompts,
sliding windows, permutation parsing and run statistics."""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from vltools.core.context import Context
from vltools.core.errors import TooLarge
from vltools.schemas import Hit, Passage, Ranking, RunStats, ToolInput

MAX_PASSAGES = 1000
LABELS = string.ascii_uppercase  # single-token identifiers for listwise prompts (A..Z)


class RankInput(ToolInput):
    """What every ``rerank.*`` tool takes: a query and passages (or a ranking)."""

    query: str = Field("", max_length=20_000, description="The search query (may come from `ranking.query`).")
    passages: list[Passage] = Field(
        default_factory=list,
        max_length=MAX_PASSAGES,
        description=f"Passages to rerank, best-first order of the first stage (at most {MAX_PASSAGES}). "
        "Hits of a retrieve.* ranking are accepted as they are.",
    )
    ranking: Ranking | None = Field(
        None, description="Alternatively, the ranking a retrieve.* tool returned; its hits become the passages."
    )
    k: int | None = Field(None, ge=1, le=MAX_PASSAGES, description="Return only the top k hits (default: all).")

    @model_validator(mode="after")
    def _check(self) -> RankInput:
        if not self.passages and self.ranking is not None:
            if len(self.ranking.hits) > MAX_PASSAGES:
                raise ValueError(f"ranking has {len(self.ranking.hits)} hits; at most {MAX_PASSAGES} can be reranked")
            self.passages = [
                Passage(id=h.id, text=h.text, title=h.title, metadata=h.metadata) for h in self.ranking.hits
            ]
            self.query = self.query or self.ranking.query
        if not self.query.strip():
            raise ValueError("query is empty or only whitespace; give the search query to rank by")
        if not self.passages:
            raise ValueError("no passages to rerank; give passages [{id, text}, ...] or a ranking with hits")
        seen: set[str] = set()
        for p in self.passages:
            if p.id in seen:
                raise ValueError(f"passage id {p.id!r} appears twice; ids must be unique")
            seen.add(p.id)
        return self


class RerankInput(RankInput):
    """What every LLM ``rerank.*`` tool takes."""

    llm: str | None = Field(
        None, description="LLM spec: smollm2, hf:NAME_OR_PATH or openai:ENDPOINT#MODEL (default: settings.llm)."
    )
    max_passage_tokens: int = Field(
        128, ge=8, le=4096, description="Per-passage token budget; longer passages are truncated (and counted)."
    )


class RerankOutput(Ranking):
    """A ranking (every input passage exactly once, unless `k` cut it) plus run statistics."""

    hits: list[Hit] = Field(default_factory=list, description="Passages best first; `score` is method-specific.")
    method: str = Field(description="Which reranker produced this ranking.")
    llm: str = Field(description="The LLM spec used.")
    stats: RunStats = Field(description="Forward passes, prompt/generated tokens and seconds of this call.")
    truncated_passages: int = Field(0, description="How many passages were cut to the per-passage token budget.")
    max_passage_tokens: int = Field(description="The per-passage token budget used.")
    windows: int = Field(1, description="Model calls over passage windows (1 = whole list at once).")
    notes: list[str] = Field(default_factory=list, description="What happened that the caller should know.")


@dataclass
class Item:
    """A passage prepared for prompting."""

    index: int
    passage: Passage
    text: str  # whitespace-collapsed, truncated prompt text


@dataclass
class Run:
    """Per-call state: the backend, prepared passages and accumulated cost."""

    inp: RerankInput
    ctx: Context
    method: str
    llm: Any
    items: list[Item]
    truncated: int
    usage: Any
    started: float = field(default_factory=time.perf_counter)
    windows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def query(self) -> str:
        return " ".join(self.inp.query.split())

    def add(self, usage: Any) -> None:
        self.usage.add(usage)

    def finish(self, order: list[int], scores: dict[int, float] | None = None, **extra: Any) -> RerankOutput:
        """Build the output from a permutation of item indices (verified), best first."""
        n = len(self.items)
        if sorted(order) != list(range(n)):
            raise AssertionError(f"{self.method}: not a permutation of {n} passages: {order}")
        hits = []
        for pos, i in enumerate(order):
            p = self.items[i].passage
            score = scores.get(i, float(n - pos)) if scores is not None else float(n - pos)
            meta = dict(p.metadata) if isinstance(getattr(p, "metadata", None), dict) else {}
            hits.append(Hit(id=p.id, score=float(score), rank=pos + 1, text=p.text, title=p.title, metadata=meta))
        if self.inp.k is not None:
            hits = hits[: self.inp.k]
        u = self.usage
        stats = RunStats(
            forward_passes=u.forward_passes,
            prompt_tokens=u.prompt_tokens,
            generated_tokens=u.generated_tokens,
            seconds=round(time.perf_counter() - self.started, 4),
            flops=float(getattr(u, "flops", 0.0)),
        )
        return RerankOutput(
            query=self.inp.query,
            hits=hits,
            method=self.method,
            llm=self.llm.spec,
            stats=stats,
            truncated_passages=self.truncated,
            max_passage_tokens=self.inp.max_passage_tokens,
            windows=max(1, self.windows),
            notes=self.notes,
            **extra,
        )


def start(inp: RerankInput, ctx: Context, method: str, capability: str) -> Run:
    """Resolve the backend, check its capability, truncate passages to the token budget."""
    from vltools.models.llm import Usage

    llm = ctx.llm(inp.llm)
    llm.require(capability, f"rerank.{method}")
    limit = ctx.settings.max_document_chars
    items, truncated = [], 0
    for i, p in enumerate(inp.passages):
        if len(p.text) > limit:
            raise TooLarge(
                f"passage {p.id!r} has {len(p.text):,} characters (limit {limit:,})",
                hint="split it into passages or raise VLTOOLS_MAX_DOCUMENT_CHARS",
            )
        raw = f"{p.title}: {p.text}" if p.title and not p.text.startswith(p.title) else p.text
        head = raw[: inp.max_passage_tokens * 64]  # no token is 64 characters: cut before tokenising 1 MB
        text, cut = llm.truncate(" ".join(head.split()), inp.max_passage_tokens)
        truncated += int(cut or len(head) < len(raw))
        items.append(Item(i, p, text.strip() or "(empty)"))
    run = Run(inp=inp, ctx=ctx, method=method, llm=llm, items=items, truncated=truncated, usage=Usage())
    if truncated:
        run.notes.append(f"{truncated} passage(s) truncated to {inp.max_passage_tokens} tokens")
    return run


# -- prompts -------------------------------------------------------------------------------------

RANKGPT_SYSTEM = (
    "You are RankGPT, an intelligent assistant that can rank passages based on their relevancy to the query."
)


def listwise_messages(query: str, texts: list[str]) -> list[dict[str, str]]:
    """The RankGPT-style prompt shared by rerank.listwise and rerank.first (letter identifiers)."""
    n = len(texts)
    body = "\n".join(f"[{LABELS[i]}] {t}" for i, t in enumerate(texts))
    example = " > ".join(LABELS[i] for i in ([1, 0, 2] if n >= 3 else [1, 0]))
    user = (
        f"I will provide you with {n} passages, each indicated by an identifier such as [A]. "
        f"Rank the passages based on their relevance to the query: {query}\n\n{body}\n\n"
        f"Search query: {query}\n"
        f"Rank the {n} passages above based on their relevance to the search query. List the identifiers in "
        f"descending order of relevance, most relevant first, separated by ' > ', e.g. {example}. "
        "Answer with the identifiers only."
    )
    return [{"role": "system", "content": RANKGPT_SYSTEM}, {"role": "user", "content": user}]


FIRST_SYSTEM = "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query."
FIRST_PREFILL = "["  # the assistant turn starts with "[", so the next token is the first identifier


def first_messages(query: str, texts: list[str]) -> list[dict[str, str]]:
    """FIRST's prompt (RankZephyr's template with alphabetical identifiers, as in rank_llm)."""
    n = len(texts)
    body = "".join(f"[{LABELS[i]}] {t}\n" for i, t in enumerate(texts))
    user = (
        f"I will provide you with {n} passages, each indicated by a alphabetical identifier []. "
        f"Rank the passages based on their relevance to the search query: {query}.\n\n{body}\n"
        f"Search Query: {query}.\n"
        f"Rank the {n} passages above based on their relevance to the search query. All the passages should be "
        "included and listed using identifiers, in descending order of relevance. The output format should be "
        "[] > [], e.g., [A] > [B]. Only respond with the ranking results, do not say any word or explain."
    )
    return [{"role": "system", "content": FIRST_SYSTEM}, {"role": "user", "content": user}]


def pointwise_messages(query: str, text: str) -> list[dict[str, str]]:
    user = f"Passage: {text}\n\nQuery: {query}\n\nIs the passage relevant to the query? Answer with Yes or No only."
    return [{"role": "user", "content": user}]


# -- windows -------------------------------------------------------------------------------------


def sliding_window(
    order: list[int],
    window: int,
    stride: int,
    rank_fn: Callable[[list[int]], list[int]],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[int], int]:
    """RankGPT sliding window from the bottom of the list to the top.

    ``rank_fn(sub)`` gets a window of item indices and returns them reordered (any output that is
    not a permutation of ``sub`` is an error). Returns (new order, number of windows).
    """
    order = list(order)
    n = len(order)
    window = max(1, min(window, n))
    stride = max(1, min(stride, window))
    starts = []
    end, begin = n, max(0, n - window)
    while True:
        starts.append((begin, end))
        if begin == 0:
            break
        end -= stride
        begin = max(0, begin - stride)
    for w, (b, e) in enumerate(starts):
        sub = order[b:e]
        new = rank_fn(sub) if len(sub) > 1 else sub
        if sorted(new) != sorted(sub):
            raise AssertionError(f"window ranking is not a permutation: {sub} -> {new}")
        order[b:e] = new
        if progress is not None:
            progress(w + 1, len(starts))
    return order, len(starts)


# -- permutation parsing -------------------------------------------------------------------------

_BRACKETED = re.compile(r"\[\s*([A-Z])\s*\]")
_BARE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])")
_NUMBER = re.compile(r"(?<!\d)(\d{1,3})(?!\d)")


def parse_permutation(text: str, n: int) -> tuple[list[int], dict[str, int]]:
    """Turn model output such as ``"B > A > C"`` into a permutation of ``range(n)``.

    Bracketed identifiers ``[B]`` win over bare letters; with no letters at all, numbers 1..n are
    read as positions. Unknown identifiers and repeats are dropped; missing ones are appended in
    their input order. Returns (permutation, repair counts).
    """
    labels = {c: i for i, c in enumerate(LABELS[:n])}
    found = _BRACKETED.findall(text) or _BARE.findall(text)
    idx: list[int] = []
    unknown = 0
    if found:
        for c in found:
            if c in labels:
                idx.append(labels[c])
            else:
                unknown += 1
    else:
        for num in _NUMBER.findall(text):
            v = int(num)
            if 1 <= v <= n:
                idx.append(v - 1)
            else:
                unknown += 1
    perm: list[int] = []
    seen: set[int] = set()
    dup = 0
    for i in idx:
        if i in seen:
            dup += 1
            continue
        seen.add(i)
        perm.append(i)
    missing = [i for i in range(n) if i not in seen]
    return perm + missing, {"duplicates": dup, "unknown": unknown, "missing": len(missing)}


def check_labels(llm: Any, n: int) -> None:
    """FIRST needs identifiers that are single tokens of the model's vocabulary."""
    from vltools.core.errors import Unsupported

    bad = [c for c in LABELS[:n] if not llm.is_single_token(c)]
    if bad:
        raise Unsupported(
            f"identifiers {bad} are not single tokens of {llm.spec}, so first-token logits cannot rank them",
            hint="use rerank.listwise with this model, or a model whose vocabulary has single-letter tokens",
        )
