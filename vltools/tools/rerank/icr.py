"""rerank.icr — in-context reranking (P26): one forward pass over a prompt holding all passages and
the query, plus one calibration pass with the content-free query "N/A". A passage's score is the
attention mass from the query tokens to its tokens, summed over layers and heads, minus the same
mass under the calibration query. No generation: O(1) passes per window. Needs ``attentions``
(smollm2, hf:...; not openai:)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from vltools.core.context import Context
from vltools.core.errors import TooLarge
from vltools.core.tool import tool
from vltools.tools.rerank._common import RerankInput, RerankOutput, Run, sliding_window, start

CALIBRATION_QUERY = "N/A"
_PLACEHOLDER = "\x00VLTOOLS_CONTENT\x00"
HEAD = "Here are some paragraphs:\n\n"
TAIL = "\nPlease find information that is relevant to the following query in the paragraphs above.\n\nQuery: "


class IcrInput(RerankInput):
    max_prompt_tokens: int = Field(
        2048, ge=256, le=131_072, description="Largest prompt per pass; longer lists are ranked in sliding windows."
    )
    calibrate: bool = Field(True, description="Subtract the attention mass under the content-free query 'N/A'.")


class IcrOutput(RerankOutput):
    calibrated: bool = Field(description="Whether the calibration pass was subtracted.")


def _segments(run: Run, sub: list[int], query: str) -> tuple[list[str], int]:
    """Prompt segments [head, passage..., tail, query, end] and the index of the query segment."""
    prompt = run.llm.chat_prompt([{"role": "user", "content": _PLACEHOLDER}])
    before, _, after = prompt.partition(_PLACEHOLDER)
    segs = [before + HEAD] + [f"[{k + 1}] {run.items[i].text}\n" for k, i in enumerate(sub)] + [TAIL, query, after]
    return segs, len(segs) - 2


def _scores(run: Run, sub: list[int], calibrate: bool) -> np.ndarray:
    segs, q = _segments(run, sub, run.query)
    res = run.llm.attentions(segs, source=q)
    run.add(res.usage)
    score = res.mass.sum(axis=(0, 1))[1 : 1 + len(sub)].astype(np.float64)
    if calibrate:
        segs, q = _segments(run, sub, CALIBRATION_QUERY)
        cal = run.llm.attentions(segs, source=q)
        run.add(cal.usage)
        score -= cal.mass.sum(axis=(0, 1))[1 : 1 + len(sub)]
    return score


@tool("rerank.icr")
def icr(inp: IcrInput, ctx: Context) -> IcrOutput:
    """In-context reranking from the LLM's attention of query to passages, calibrated, no generation (ICR).

    Score = calibrated attention mass from the query to the passage when the list fits one prompt,
    else the position score after sliding windows. Works with any model that exposes attentions,
    even ones too small to follow ranking instructions.
    """
    run = start(inp, ctx, "icr", "attentions")
    budget = min(inp.max_prompt_tokens, run.llm.context_length - 8)
    segs, _ = _segments(run, [], run.query)
    overhead = sum(run.llm.count_tokens(s) for s in segs) + 4
    lengths = [run.llm.count_tokens(f"[{len(run.items)}] {it.text}\n") for it in run.items]
    n = len(run.items)
    longest = sorted(lengths, reverse=True)
    window = n
    while window > 1 and overhead + sum(longest[:window]) > budget:
        window -= 1
    if window < 2 and n > 1:
        raise TooLarge(
            f"two passages of up to {inp.max_passage_tokens} tokens do not fit a {budget}-token prompt",
            hint="lower max_passage_tokens or raise max_prompt_tokens",
        )
    last: dict[int, float] = {}

    def rank(sub: list[int]) -> list[int]:
        s = _scores(run, sub, inp.calibrate)
        for j, i in enumerate(sub):
            last[i] = float(s[j])
        ranked = sorted(range(len(sub)), key=lambda j: -s[j])
        return [sub[j] for j in ranked]

    stride = max(1, window // 2)
    order, run.windows = sliding_window(
        list(range(n)), window, stride, rank, lambda d, t: ctx.progress(d, t, "windows")
    )
    if run.windows > 1:
        run.notes.append(f"list exceeds {budget} prompt tokens: ranked in {run.windows} windows of {window}")
    return run.finish(order, last if run.windows == 1 else None, calibrated=inp.calibrate)
