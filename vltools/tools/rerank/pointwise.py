"""rerank.pointwise — relevance as P(yes) − P(no) of the next token, one forward pass per passage:
the cheapest LLM baseline. Needs ``next_token_logits``."""

from __future__ import annotations

import math

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.tools.rerank._common import RerankInput, RerankOutput, pointwise_messages, start


class PointwiseInput(RerankInput):
    pass


@tool("rerank.pointwise")
def pointwise(inp: PointwiseInput, ctx: Context) -> RerankOutput:
    """Score each passage independently by the LLM's P(yes) minus P(no) of being relevant (pointwise baseline).

    Score in [-1, 1] (softmax over the two answer tokens); ties keep the input order.
    """
    run = start(inp, ctx, "pointwise", "next_token_logits")
    scores: dict[int, float] = {}
    for item in run.items:
        nt = run.llm.next_token(pointwise_messages(run.query, item.text), ["Yes", "No"])
        run.add(nt.usage)
        y, n = nt.logits["Yes"], nt.logits["No"]
        m = max(y, n)
        py, pn = math.exp(y - m), math.exp(n - m)
        scores[item.index] = (py - pn) / (py + pn)
        ctx.progress(item.index + 1, len(run.items), "passages")
    order = sorted(scores, key=lambda i: -scores[i])
    run.windows = len(run.items)
    return run.finish(order, scores)
