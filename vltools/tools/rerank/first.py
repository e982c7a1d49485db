"""rerank.first — FIRST (P11, P52): FIRST's listwise prompt (alphabetical identifiers) with the
assistant turn pre-filled with "[", and the order read from the logits of the next token over the
identifiers, each tokenised in that context (after "["); sliding window 20 / stride 10 from the
bottom up, as in the paper; one forward pass per window, no generation. Needs ``next_token_logits``.

``openai:`` servers return at most their top 20 logprobs, and other tokens compete for those places,
so a window's identifiers may not all be read in one call. Those passages rank below every read one
(their logprob is below all returned ones) and are asked about again in a prompt of their own,
until every passage is placed: several calls per window, merged in that order."""

from __future__ import annotations

from pydantic import Field

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.models.llm import LLM, NextToken
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
    extra = {"windows": 0, "calls": 0, "unread": 0}

    def read(sub: list[int]) -> tuple[list[str], NextToken]:
        labels = list(LABELS[: len(sub)])
        msgs = first_messages(run.query, [run.items[i].text for i in sub])
        nt = run.llm.next_token_after(msgs, FIRST_PREFILL, labels) if prefill else run.llm.next_token(msgs, labels)
        run.add(nt.usage)
        return labels, nt

    def rank(sub: list[int]) -> list[int]:
        """One window. A backend that sees only its top-k logprobs (servers: 20) may leave identifiers
        unread; those passages all rank below the read ones (their logprob is below every returned one),
        so they are asked about again, alone in a new prompt, until every passage is placed."""
        placed: list[int] = []
        remaining, first_round = list(sub), True
        while remaining:
            labels, nt = read(remaining)
            read_j = [j for j in range(len(remaining)) if nt.observed is None or labels[j] in nt.observed]
            if not first_round:
                extra["calls"] += 1
            if not read_j:  # the top logprobs hold no identifier left: input order for the rest
                extra["unread"] += len(remaining)
                floor = min((last_logit[i] for i in placed), default=0.0) - 1.0
                for k, i in enumerate(remaining):
                    last_logit[i] = floor - k * 1e-6
                placed += remaining
                break
            ranked = sorted(read_j, key=lambda j: -nt.logits[labels[j]])  # stable: ties keep input order
            # scores stay monotone across rounds: a later round's best sits below the earlier rounds' worst
            top = nt.logits[labels[ranked[0]]]
            bound = min((last_logit[i] for i in placed), default=None)
            shift = 0.0 if bound is None or top < bound else bound - 1.0 - top
            for j in ranked:
                last_logit[remaining[j]] = nt.logits[labels[j]] + shift
            placed += [remaining[j] for j in ranked]
            keep = set(read_j)
            remaining = [i for j, i in enumerate(remaining) if j not in keep]
            if remaining and first_round:
                extra["windows"] += 1
            first_round = False
        return placed

    order, run.windows = sliding_window(
        list(range(len(run.items))), inp.window, inp.stride, rank, lambda d, t: ctx.progress(d, t, "windows")
    )
    if extra["windows"] or extra["unread"]:
        run.notes.append(
            f"{run.llm.spec} returns only its top {run.llm.max_top_logprobs or 'k'} logprobs: in "
            f"{extra['windows']} window(s) some identifiers were not among them, so {extra['calls']} more call(s) "
            "ranked those passages below the ones read"
            + (f"; {extra['unread']} passage(s) never appeared and keep their input order" if extra["unread"] else "")
        )
    return run.finish(order, last_logit if run.windows == 1 else None)
