"""rerank.listwise — RankGPT-style listwise reranking: the LLM generates a permutation of passage
identifiers over a sliding window. Needs an LLM with ``generate`` (any backend)."""

from __future__ import annotations

from pydantic import Field

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.tools.rerank._common import (
    LABELS,
    RerankInput,
    RerankOutput,
    listwise_messages,
    parse_permutation,
    sliding_window,
    start,
)


class ListwiseInput(RerankInput):
    window: int = Field(20, ge=2, le=len(LABELS), description="Passages per window (identifiers A..Z).")
    stride: int = Field(10, ge=1, le=len(LABELS), description="How far the window moves up the list each step.")
    max_new_tokens: int = Field(
        0, ge=0, le=1024, description="Generation budget per window (0 = 4 tokens per passage + 8)."
    )


class ListwiseOutput(RerankOutput):
    parse_repairs: dict[str, int] = Field(
        default_factory=dict, description="Identifiers the parser dropped or filled in: duplicates, unknown, missing."
    )
    responses: list[str] = Field(default_factory=list, description="The raw generated text of each window.")


@tool("rerank.listwise")
def listwise(inp: ListwiseInput, ctx: Context) -> ListwiseOutput:
    """Rerank passages by having an LLM generate their order (RankGPT-style listwise, sliding window).

    Robust to malformed output: unknown or repeated identifiers are dropped and missing ones keep
    their input order, so every passage comes back exactly once. Score = position score (n - rank + 1).
    """
    run = start(inp, ctx, "listwise", "generate")
    repairs = {"duplicates": 0, "unknown": 0, "missing": 0}
    responses: list[str] = []

    def rank(sub: list[int]) -> list[int]:
        msgs = listwise_messages(run.query, [run.items[i].text for i in sub])
        budget = inp.max_new_tokens or 4 * len(sub) + 8
        c = run.llm.complete(msgs, max_tokens=budget, temperature=0.0)
        run.add(c.usage)
        responses.append(c.text)
        perm, rep = parse_permutation(c.text, len(sub))
        for key, v in rep.items():
            repairs[key] += v
        return [sub[j] for j in perm]

    order, run.windows = sliding_window(
        list(range(len(run.items))), inp.window, inp.stride, rank, lambda d, t: ctx.progress(d, t, "windows")
    )
    if repairs["missing"]:
        run.notes.append(f"{repairs['missing']} identifier(s) missing from the model output kept their input order")
    return run.finish(order, parse_repairs=repairs, responses=responses)
