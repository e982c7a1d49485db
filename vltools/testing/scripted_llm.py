"""A scripted, deterministic LLM backend for tests (in the spirit of pydantic-ai's ``TestModel``).

It knows which passages are relevant: ``relevance`` maps a keyword to a grade, and a passage's
grade is the highest grade of the keywords it contains (0 if none). From the prompts the rerankers
send it reads the passages back and answers as a perfect judge would:

- ``complete``: RankGPT-style prompts ("[A] ...") -> identifiers best first ("[C] > [A] > [B]"); with
  ``top_logprobs`` > 0, the first token's top alternatives are the identifiers (log-softmax of their
  grades) competing with the ``distractors`` tokens, as a server's top logprobs would be;
  Rank-R1 setwise prompts ("[1] ...", answer tags) -> ``<think>..</think> <answer>[k]</answer>``
  naming the best document; anything else -> ``respond(messages)`` (default: a fixed answer).
- ``next_token`` / ``next_token_after``: identifier candidates -> each passage's grade as its
  logit; ``Yes``/``No`` (pointwise) -> logit(Yes) = grade, logit(No) = 0.
- ``prefix_attentions``: tokens are words; every prefix token gets a position bias that grows
  with its position (like a recency bias), in the query pass and in the calibration pass alike,
  plus, in the query pass only, its segment's grade spread over the segment's tokens. So only
  a reranker that subtracts the calibration pass ranks by relevance.

Every call is recorded in ``calls`` (method, messages or segments, extra) for assertions.
Use ``installed(llm)`` to make tools resolve ``llm.spec`` to it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from vltools.models.llm import (
    LLM,
    AttentionMass,
    Completion,
    Messages,
    NextToken,
    PrefixAttention,
    TokenLogprob,
    Usage,
)

_LETTER_LINE = re.compile(r"^\[([A-Z])\] (.*)$", re.M)
_NUMBER_LINE = re.compile(r"^\[(\d+)\] (.*)$", re.M)
_POINTWISE = re.compile(r"Passage: (.*?)\n\nQuery:", re.S)


class ScriptedLLM(LLM):
    """Deterministic backend with all three capabilities; see the module docstring."""

    capabilities = frozenset({"generate", "next_token_logits", "attentions"})
    context_length = 100_000

    def __init__(
        self,
        relevance: dict[str, float],
        *,
        spec: str = "scripted",
        respond: Callable[[Messages], str] | None = None,
        position_bias: float = 0.5,
        distractors: dict[str, float] | None = None,
        logprobs: bool = True,
    ):
        self.relevance = dict(relevance)
        self.spec = spec
        self.respond = respond
        self.position_bias = position_bias
        self.distractors = dict(distractors or {})  # non-identifier tokens and their logits (first token)
        self.logprobs = logprobs  # False: complete() never returns logprobs (a server without them)
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    # -- the oracle --------------------------------------------------------------------------
    def grade(self, text: str) -> float:
        """The grade of a passage: the highest grade among the keywords it contains (0 if none)."""
        words = set(re.findall(r"\w+", text.lower()))
        return max((g for k, g in self.relevance.items() if k.lower() in words), default=0.0)

    # -- tokens: whitespace words ------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        words = text.split()
        return (text, False) if len(words) <= max_tokens else (" ".join(words[:max_tokens]), True)

    def is_single_token(self, text: str) -> bool:
        return len(text.split()) == 1 and len(text) == len(text.strip())

    def chat_prompt(self, messages: Messages) -> str:
        return "".join(f"<{m['role']}>\n{m['content']}\n" for m in messages) + "<assistant>\n"

    @staticmethod
    def _text(prompt_or_messages: str | Messages) -> str:
        if isinstance(prompt_or_messages, str):
            return prompt_or_messages
        return "\n".join(m["content"] for m in prompt_or_messages)

    def _usage(self, text: str, generated: int = 0) -> Usage:
        n = self.count_tokens(text)
        return Usage(forward_passes=1 + generated, prompt_tokens=n, generated_tokens=generated, flops=float(n))

    # -- generate ----------------------------------------------------------------------------
    def complete(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        should_stop: Any = None,  # the LLM protocol's stop signal; scripted answers are instant
    ) -> Completion:
        self.calls.append(("complete", messages, {"max_tokens": max_tokens, "stop": stop}))
        text = self._text(messages)
        letters = dict(_LETTER_LINE.findall(text))
        numbers = {int(k): v for k, v in _NUMBER_LINE.findall(text)}
        if letters:
            order = sorted(letters, key=lambda c: (-self.grade(letters[c]), c))
            out = " > ".join(f"[{c}]" for c in order)
        elif numbers and "<answer>" in text:
            best = min(numbers, key=lambda k: (-self.grade(numbers[k]), k))
            out = f"<think>document [{best}] matches the query best.</think> <answer>[{best}]</answer>"
        else:
            out = self.respond(messages) if self.respond else "A scripted answer."
        if stop:
            cut = min((out.find(s) for s in stop if s in out), default=-1)
            out = out[:cut] if cut >= 0 else out
        lps = None
        if top_logprobs and self.logprobs:
            lps = [self._first_token(letters, top_logprobs)]
            out = lps[0].token if max_tokens == 1 else out
        generated = len(out.split())
        return Completion(text=out, usage=self._usage(text, generated), finish_reason="stop", logprobs=lps)

    def _first_token(self, letters: dict[str, str], k: int) -> TokenLogprob:
        """The first token's top-k log-probabilities: identifiers (logit = grade) and the distractors."""
        import math

        logits = {**{c: self.grade(t) for c, t in letters.items()}, **self.distractors} or {"A": 0.0}
        z = max(logits.values())
        lse = z + math.log(sum(math.exp(v - z) for v in logits.values()))
        top = sorted(((t, v - lse) for t, v in logits.items()), key=lambda x: (-x[1], x[0]))[:k]
        return TokenLogprob(top[0][0], top[0][1], top)

    # -- next-token logits -------------------------------------------------------------------
    def _logits(self, text: str, candidates: list[str]) -> dict[str, float]:
        if set(candidates) == {"Yes", "No"}:
            m = _POINTWISE.search(text)
            g = self.grade(m.group(1)) if m else 0.0
            return {"Yes": g, "No": 0.0}
        letters = dict(_LETTER_LINE.findall(text))
        return {c: self.grade(letters[c]) if c in letters else -100.0 for c in candidates}

    def next_token(self, prompt_or_messages: str | Messages, candidates: list[str]) -> NextToken:
        self.calls.append(("next_token", prompt_or_messages, {"candidates": list(candidates)}))
        text = self._text(prompt_or_messages)
        return NextToken(self._logits(text, candidates), self._usage(text))

    def next_token_after(self, messages: Messages, prefill: str, candidates: list[str]) -> NextToken:
        self.calls.append(("next_token_after", messages, {"prefill": prefill, "candidates": list(candidates)}))
        text = self._text(messages)
        return NextToken(self._logits(text, candidates), self._usage(text))

    # -- attentions --------------------------------------------------------------------------
    def _segment_tokens(self, segments: list[str]) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for s in segments:
            n = len(s.split())
            spans.append((pos, pos + n))
            pos += n
        return spans

    def prefix_attentions(self, prefix: list[str], suffixes: list[str]) -> PrefixAttention:
        import numpy as np

        self.calls.append(("prefix_attentions", prefix, {"suffixes": list(suffixes)}))
        spans = self._segment_tokens(prefix)
        n = spans[-1][1] if spans else 0
        bias = self.position_bias * np.arange(n, dtype=np.float64)
        weights = []
        for s in suffixes:
            w = bias.copy()
            if s.strip() != "N/A":
                for seg, (a, b) in zip(prefix, spans, strict=True):
                    if b > a:
                        w[a:b] += self.grade(seg) / (b - a)
            weights.append(w)
        usage = Usage(forward_passes=1 + len(suffixes), prompt_tokens=n + sum(len(s.split()) for s in suffixes))
        return PrefixAttention(spans=spans, weights=weights, usage=usage)

    def attentions(self, segments: list[str], *, source: int) -> AttentionMass:
        import numpy as np

        self.calls.append(("attentions", segments, {"source": source}))
        spans = self._segment_tokens(segments)
        mass = np.array([[[self.grade(s) for s in segments]]], dtype=np.float64)
        return AttentionMass(mass=mass, spans=spans, usage=self._usage("".join(segments)))


_INSTALLED: dict[str, LLM] = {}


@contextlib.contextmanager
def installed(llm: LLM) -> Iterator[LLM]:
    """Make every tool resolve ``llm.spec`` to ``llm`` (other specs load as usual) inside the block.

    Tools reach LLMs through ``Context.llm``, which looks up `vltools.models.llm.get_llm` at call
    time; that function is wrapped for the duration of the block."""
    from vltools.models import llm as llm_module

    real = llm_module.get_llm

    def get_llm(spec: str | None = None, settings: Any = None) -> LLM:
        if spec in _INSTALLED:
            return _INSTALLED[spec]
        return real(spec, settings)

    _INSTALLED[llm.spec] = llm
    llm_module.get_llm = get_llm
    try:
        yield llm
    finally:
        _INSTALLED.pop(llm.spec, None)
        llm_module.get_llm = real
