"""rerank.first — FIRST (P11, P52): the listwise prompt, but the order comes from the logits of the
first generated token over the passage identifiers (single tokens, verified in the vocabulary);
sliding window; one forward pass per window, no generation. Needs ``next_token_logits``."""

from __future__ import annotations

from pydantic import Field

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.tools.rerank._common import (
    LABELS,
    RerankInput,
    RerankOutput,
    check_labels,
    listwise_messages,
    sliding_window,
    start,
)


class FirstInput(RerankInput):
    window: int = Field(20, ge=2, le=len(LABELS), description="Passages per window (identifiers A..Z).")
    stride: int = Field(10, ge=1, le=len(LABELS), description="How far the window moves up the list each step.")


@tool("rerank.first")
def first(inp: FirstInput, ctx: Context) -> RerankOutput:
    """Fast listwise reranking from the first generated token's logits over passage identifiers (FIRST).

    One forward pass per window instead of generating a permutation; ties keep the input order.
    Score = the identifier's logit when the list fits one window, else the position score.
    """
    run = start(inp, ctx, "first", "next_token_logits")
    check_labels(run.llm, min(inp.window, len(run.items)))
    last_logit: dict[int, float] = {}

    def rank(sub: list[int]) -> list[int]:
        labels = list(LABELS[: len(sub)])
        nt = run.llm.next_token(listwise_messages(run.query, [run.items[i].text for i in sub]), labels)
        run.add(nt.usage)
        for j, i in enumerate(sub):
            last_logit[i] = nt.logits[labels[j]]
        ranked = sorted(range(len(sub)), key=lambda j: -nt.logits[labels[j]])  # stable: ties keep input order
        return [sub[j] for j in ranked]

    order, run.windows = sliding_window(
        list(range(len(run.items))), inp.window, inp.stride, rank, lambda d, t: ctx.progress(d, t, "windows")
    )
    return run.finish(order, last_logit if run.windows == 1 else None)
