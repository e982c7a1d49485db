"""`evidence.select` (P39): pick the sentences of retrieved passages most relevant to a claim.

Passages are split into sentences and scored by text-encoder cosine similarity (``minilm`` by
default) or by a ``rerank.*`` tool reached through the registry.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from vltools.core import Context, tool
from vltools.core.errors import InvalidInput, NotFound, ToolError
from vltools.schemas import EvidenceSentence, Passage, ToolInput
from vltools.tools.natlog import check_claim


class SelectInput(ToolInput):
    claim: str = Field(description="The claim (or question) to select evidence for.")
    passages: list[Passage] = Field(min_length=1, max_length=1000, description="Documents or passages to select from.")
    k: int = Field(5, ge=1, le=100, description="How many sentences to keep.")
    split: bool = Field(True, description="Split passages into sentences before scoring.")
    reranker: str | None = Field(
        None, description="A rerank.* tool to score sentences with (default: text-encoder cosine similarity)."
    )
    min_score: float | None = Field(
        None, description="Drop sentences scoring below this (cosine similarity when no reranker is given)."
    )
    exclude: list[str] = Field(default_factory=list, description="Sentence texts to skip (already used).")
    text_model: str | None = Field(None, description="Text-encoder spec for the default scorer.")
    llm: str | None = Field(None, description="LLM spec passed to an LLM reranker (default: settings.llm).")


class SelectOutput(BaseModel):
    sentences: list[EvidenceSentence] = Field(description="Selected sentences, best first.")
    scorer: str = Field(description="What scored them: 'cosine:<model>' or the reranker's name.")


@tool("evidence.select")
def select(inp: SelectInput, ctx: Context) -> SelectOutput:
    """Pick the sentences of retrieved passages most relevant to a claim (split into sentences, score, keep top k)."""
    from vltools.tools.factcheck._natlog import split_sentences

    claim = check_claim(inp.claim)
    skip = {s.strip() for s in inp.exclude}
    cands: list[tuple[str, str]] = []
    for p in inp.passages:
        body = f"{p.title}. {p.text}" if (p.title and not inp.split) else p.text
        for s in split_sentences(body) if inp.split else [body.strip()]:
            if s and s not in skip and (p.id, s) not in cands:
                cands.append((p.id, s))
    if not cands:
        return SelectOutput(sentences=[], scorer="none")
    if inp.reranker:
        if not inp.reranker.startswith("rerank."):
            raise InvalidInput(
                f"reranker {inp.reranker!r} is not a rerank.* tool",
                hint="name a rerank.* tool, e.g. rerank.pointwise or rerank.icr",
            )
        ids = [f"s{i}" for i in range(len(cands))]
        passages = [{"id": i, "text": t} for i, (_, t) in zip(ids, cands, strict=True)]
        try:
            extra = {"llm": inp.llm} if inp.llm else {}
            out = ctx.call(inp.reranker, {"query": claim, "passages": passages, **extra})
        except NotFound:
            raise  # an unknown reranker: the registry's message lists close names
        except ToolError as err:
            raise ToolError(
                err.code, f"reranker {inp.reranker} failed: {err.message}", hint=err.hint, details=err.details
            ) from err
        scores = {h.id: h.score for h in out.hits}
        ranked = [(cands[int(i[1:])], scores[i]) for i in scores]
        scorer = inp.reranker
    else:
        enc = ctx.text(inp.text_model)
        vecs = enc.encode([claim] + [t for _, t in cands])
        sims = (vecs[1:] @ vecs[0]).tolist()
        ranked = list(zip(cands, sims, strict=True))
        scorer = f"cosine:{enc.spec}"
    ranked.sort(key=lambda x: -x[1])
    keep = [
        EvidenceSentence(doc_id=d, text=t, score=round(float(s), 6))
        for (d, t), s in ranked
        if inp.min_score is None or s >= inp.min_score
    ][: inp.k]
    return SelectOutput(sentences=keep, scorer=scorer)
