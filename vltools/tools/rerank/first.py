"""rerank.first — FIRST (P11, P52): FIRST's listwise prompt (alphabetical identifiers) with the
assistant turn pre-filled with "[", and the order read from the logits of the next token over the
identifiers, each tokenised in that context (after "["); sliding window 20 / stride 10 from the
bottom up, as in the paper; one forward pass per window, no generation. Needs ``next_token_logits``."""

from __future__ import annotations

from pydantic import Field

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.models.llm import LLM
from vltools.tools.rerank._common import (
    FIRST_PREFILL,
    LABELS,
    RerankInput,
    RerankOutput,
    check_labels,
    first_messages,
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
    prefill = type(run.llm).next_token_after is not LLM.next_token_after
    if not prefill:
        run.notes.append(f"{run.llm.spec} cannot pre-fill the assistant turn: identifiers read without the '['")

    def rank(sub: list[int]) -> list[int]:
        labels = list(LABELS[: len(sub)])
        msgs = first_messages(run.query, [run.items[i].text for i in sub])
        nt = run.llm.next_token_after(msgs, FIRST_PREFILL, labels) if prefill else run.llm.next_token(msgs, labels)
        run.add(nt.usage)
        for j, i in enumerate(sub):
            last_logit[i] = nt.logits[labels[j]]
        ranked = sorted(range(len(sub)), key=lambda j: -nt.logits[labels[j]])  # stable: ties keep input order
        return [sub[j] for j in ranked]

    order, run.windows = sliding_window(
        list(range(len(run.items))), inp.window, inp.stride, rank, lambda d, t: ctx.progress(d, t, "windows")
    )
    return run.finish(order, last_logit if run.windows == 1 else None)
