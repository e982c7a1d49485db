"""rerank.rank_r1 — Rank-R1 (P05) setwise reasoning reranker: for a small set of passages the LLM
reasons in <think>…</think> and names the most relevant one in <answer>[n]</answer>; heap or
bubble setwise selection sorts the top ``depth``. The reasoning of every comparison is returned.
Unparsable answers fall back to the passage of the set that ranked highest in the input (so a
model that never answers leaves the input order unchanged) and are counted. Needs ``generate`` (any backend)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from vltools.core.context import Context
from vltools.core.tool import tool
from vltools.tools.rerank._common import RerankInput, RerankOutput, Run, start

SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
_ANSWER = re.compile(r"<answer>\s*\[?\s*(\d+)\s*\]?.*?(</answer>|$)", re.S)
_THINK = re.compile(r"<think>(.*?)(</think>|<answer>|$)", re.S)
_LOOSE = re.compile(r"\[(\d+)\]")


class RankR1Input(RerankInput):
    depth: int = Field(
        10, ge=1, le=100, description="How many top positions setwise selection sorts; the rest keep input order."
    )
    num_child: int = Field(
        19, ge=1, le=19, description="Children per heap node: each comparison sees up to num_child + 1 passages (20)."
    )
    method: Literal["heap", "bubble"] = Field("heap", description="Setwise selection: heap sort or bubble sort.")
    think_tokens: int = Field(
        2048,
        ge=8,
        le=16_384,
        description="Generation budget per comparison (reasoning + answer); reasoning models need thousands.",
    )


class Comparison(BaseModel):
    ids: list[str] = Field(description="Passage ids shown, in label order [1], [2], ...")
    winner: str = Field(description="The passage chosen as most relevant.")
    reasoning: str = Field(description="The model's <think> text (explainability).")
    answer: str = Field(description="The raw text of the answer, or the whole output when no answer tag was found.")
    fallback: bool = Field(description="True when the answer could not be parsed and the input order decided.")


class RankR1Output(RerankOutput):
    comparisons: list[Comparison] = Field(default_factory=list, description="Every setwise comparison, in order.")
    fallbacks: int = Field(0, description="Comparisons whose answer could not be parsed (input order decided).")


def parse_answer(text: str, n: int) -> tuple[int | None, str, str]:
    """(0-based choice or None, reasoning, answer text) from a Rank-R1 style output."""
    think = _THINK.search(text)
    reasoning = (think.group(1) if think else text.split("<answer>")[0]).strip()
    m = _ANSWER.search(text)
    if m and 1 <= int(m.group(1)) <= n:
        return int(m.group(1)) - 1, reasoning, m.group(0).strip()
    tail = text.split("</think>")[-1] if "</think>" in text else ""
    loose = [int(x) for x in _LOOSE.findall(tail) if 1 <= int(x) <= n]
    if loose:
        return loose[-1] - 1, reasoning, tail.strip()
    return None, reasoning, text.strip()


def _messages(query: str, texts: list[str]) -> list[dict[str, str]]:
    docs = "\n".join(f"[{i + 1}] {t}" for i, t in enumerate(texts))
    user = (
        f'Given the query: "{query}", which of the following documents is most relevant?\n{docs}\n'
        "After completing the reasoning process, please provide only the label of the most relevant document "
        "to the query, enclosed in square brackets, within the answer tags. For example, if the third document "
        "is the most relevant, the answer should be: <think> reasoning process here </think> <answer>[3]</answer>."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class _Judge:
    def __init__(self, run: Run, think_tokens: int):
        self.run, self.think_tokens = run, think_tokens
        self.comparisons: list[Comparison] = []
        self.cache: dict[tuple[int, ...], int] = {}
        self.fallbacks = 0

    def best(self, group: list[int]) -> int:
        """Position in ``group`` of the most relevant item."""
        if len(group) == 1:
            return 0
        key = tuple(group)
        if key not in self.cache:
            items = self.run.items
            c = self.run.llm.complete(
                _messages(self.run.query, [items[i].text for i in group]),
                max_tokens=self.think_tokens,
                temperature=0.0,
                stop=["</answer>"],
            )
            self.run.add(c.usage)
            text = c.text + ("</answer>" if "<answer>" in c.text and "</answer>" not in c.text else "")
            choice, reasoning, answer = parse_answer(text, len(group))
            fallback = choice is None
            self.fallbacks += fallback
            # fallback: the passage ranked highest in the input (so all-fallback runs keep the input order)
            self.cache[key] = min(range(len(group)), key=lambda j: group[j]) if choice is None else choice
            ids = [items[i].passage.id for i in group]
            self.comparisons.append(
                Comparison(ids=ids, winner=ids[self.cache[key]], reasoning=reasoning, answer=answer, fallback=fallback)
            )
            self.run.ctx.progress(len(self.comparisons), None, "comparisons")
        return self.cache[key]


def _heap_top(arr: list[int], c: int, depth: int, judge: _Judge) -> list[int]:
    def sift(m: int, i: int) -> None:
        while True:
            group = [i] + [c * i + j for j in range(1, c + 1) if c * i + j < m]
            if len(group) == 1:
                return
            b = group[judge.best([arr[g] for g in group])]
            if b == i:
                return
            arr[i], arr[b] = arr[b], arr[i]
            i = b

    n = len(arr)
    for i in range((n - 2) // c, -1, -1):
        sift(n, i)
    top, m = [], n
    for _ in range(min(depth, n)):
        top.append(arr[0])
        m -= 1
        if m == 0:
            break
        arr[0] = arr[m]
        sift(m, 0)
    return top + sorted(arr[:m])


def _bubble_top(arr: list[int], c: int, depth: int, judge: _Judge) -> list[int]:
    n = len(arr)
    for p in range(min(depth, n - 1)):
        j = n - 1
        while j > p:
            s = max(p, j - c)
            group = arr[s : j + 1]
            b = s + judge.best(group)
            arr[s], arr[b] = arr[b], arr[s]
            j = s
    return arr


@tool("rerank.rank_r1")
def rank_r1(inp: RankR1Input, ctx: Context) -> RankR1Output:
    """Setwise reasoning reranker (Rank-R1) that thinks before picking the best passage and explains each choice.

    Heap (default) or bubble selection sorts the top ``depth``; each comparison's reasoning is returned.
    Score = position score (n - rank + 1).
    """
    run = start(inp, ctx, "rank_r1", "generate")
    judge = _Judge(run, inp.think_tokens)
    arr = list(range(len(run.items)))
    order = (_heap_top if inp.method == "heap" else _bubble_top)(arr, inp.num_child, inp.depth, judge)
    run.windows = len(judge.comparisons)
    if judge.fallbacks:
        run.notes.append(f"{judge.fallbacks} of {len(judge.comparisons)} answers unparsable: input order decided")
    return run.finish(order, comparisons=judge.comparisons, fallbacks=judge.fallbacks)
