"""rerank.icr — in-context reranking (P26): the prompt holds all passages, then the query. The
passages prefix is encoded once (fast attention kernel, KV cache kept); the query and the
content-free calibration query "N/A" are then each run against that cache, and attention weights
are computed only for their tokens. A passage's score is, per token, the attention from the query
tokens (summed over layers and heads) minus the same under "N/A", summed over the passage's tokens
after masking outlier tokens (calibrated score below mean - 2 std within the passage), as in the
paper's code. Prefix segments are tokenised jointly, as one text. No generation: 1 prefix pass
plus 2 short passes per window. Needs ``attentions`` (smollm2, hf:...; not openai:)."""

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
TAIL = "\nPlease find information that is relevant to the following query in the paragraphs above.\n\nQuery:"


class IcrInput(RerankInput):
    max_prompt_tokens: int = Field(
        2048, ge=256, le=131_072, description="Largest prompt per pass; longer lists are ranked in sliding windows."
    )
    calibrate: bool = Field(True, description="Subtract the attention mass under the content-free query 'N/A'.")


class IcrOutput(RerankOutput):
    calibrated: bool = Field(description="Whether the calibration pass was subtracted.")


def _prefix(run: Run, sub: list[int]) -> list[str]:
    """Prompt segments [head, passage..., tail] that precede the query (shared by both queries)."""
    prompt = run.llm.chat_prompt([{"role": "user", "content": _PLACEHOLDER}])
    before, _, _after = prompt.partition(_PLACEHOLDER)  # the query is last: nothing after it is attended to
    return [before + HEAD] + [f"[{k + 1}] {run.items[i].text}\n" for k, i in enumerate(sub)] + [TAIL]


def calibrated_scores(query: np.ndarray, calibration: np.ndarray | None, spans: list[tuple[int, int]]) -> np.ndarray:
    """Per passage: sum over its tokens of query - calibration attention, outlier tokens masked.

    Tokens whose calibrated score is below mean - 2 std of the passage's tokens are dropped (the
    "masked N/A calibration" of the paper's code). Without calibration: the plain attention mass."""
    out = np.zeros(len(spans))
    for j, (a, b) in enumerate(spans):
        q = query[a:b]
        if calibration is None or b - a == 0:
            out[j] = float(q.sum())
            continue
        diff = q - calibration[a:b]
        std = float(diff.std(ddof=1)) if b - a > 1 else 0.0
        keep = diff > float(diff.mean()) - 2 * std if std > 0 else np.ones_like(diff, dtype=bool)
        out[j] = float(diff[keep].sum())
    return out


def _scores(run: Run, sub: list[int], calibrate: bool) -> np.ndarray:
    suffixes = [" " + run.query] + ([" " + CALIBRATION_QUERY] if calibrate else [])
    res = run.llm.prefix_attentions(_prefix(run, sub), suffixes)
    run.add(res.usage)
    spans = res.spans[1 : 1 + len(sub)]
    return calibrated_scores(res.weights[0], res.weights[1] if calibrate else None, spans)


@tool("rerank.icr")
def icr(inp: IcrInput, ctx: Context) -> IcrOutput:
    """In-context reranking from the LLM's attention of query to passages, calibrated, no generation (ICR).

    Score = calibrated attention mass from the query to the passage when the list fits one prompt,
    else the position score after sliding windows. Works with any model that exposes attentions,
    even ones too small to follow ranking instructions.
    """
    run = start(inp, ctx, "icr", "attentions")
    budget = min(inp.max_prompt_tokens, run.llm.context_length - 8)
    overhead = sum(run.llm.count_tokens(s) for s in _prefix(run, [])) + run.llm.count_tokens(run.query) + 6
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
