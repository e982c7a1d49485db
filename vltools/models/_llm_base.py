"""The LLM interface shared by every backend: data types, capabilities and the base class.

Backends (`_llm_hf`, `_llm_openai`) import this module; `vltools.models.llm` (spec parsing and
the model cache) imports them lazily. Keeping the types here keeps that graph acyclic.
Importing this module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vltools.core.cancel import stopped_early
from vltools.core.errors import Timeout, Unsupported

if TYPE_CHECKING:
    from vltools.core.protocols import StopFn
    from vltools.core.settings import Settings

CAPABILITIES = ("generate", "next_token_logits", "attentions")

# Which spec kinds provide each capability (named in `Unsupported` errors).
PROVIDERS: dict[str, list[str]] = {
    "generate": ["smollm2", "hf:NAME_OR_PATH", "openai:ENDPOINT#MODEL"],
    "next_token_logits": ["smollm2", "hf:NAME_OR_PATH", "openai:ENDPOINT#MODEL (servers that return top_logprobs)"],
    "attentions": ["smollm2", "hf:NAME_OR_PATH"],
}

Messages = list[dict[str, str]]


@dataclass
class Usage:
    """Cost of one or more backend calls."""

    forward_passes: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    flops: float = 0.0  # estimated forward-pass FLOPs (0 where the backend cannot tell, e.g. remote servers)

    def add(self, other: Usage) -> Usage:
        self.forward_passes += other.forward_passes
        self.prompt_tokens += other.prompt_tokens
        self.generated_tokens += other.generated_tokens
        self.flops += other.flops
        return self


@dataclass
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Completion:
    """What `LLM.complete` returns: the text plus usage (and per-token logprobs when asked)."""

    text: str
    usage: Usage
    finish_reason: str = "stop"
    logprobs: list[TokenLogprob] | None = None


@dataclass
class NextToken:
    """Logits of candidate tokens at the next position."""

    logits: dict[str, float]
    usage: Usage
    # Candidates whose value the backend actually saw. None: all of them (local backends read the full
    # distribution). Servers that return only their top-k logprobs floor the others; a caller that must
    # order every candidate asks again for the unobserved ones (rerank.first does).
    observed: frozenset[str] | None = None


@dataclass
class AttentionMass:
    """Attention from the tokens of one segment to each segment of a prompt.

    ``mass[layer, head, j]`` = attention weight summed over the tokens of segment ``j``,
    averaged over the tokens of the source segment. ``spans[j]`` = token range of segment ``j``.
    """

    mass: Any  # numpy array (layers, heads, n_segments)
    spans: list[tuple[int, int]]
    usage: Usage


@dataclass
class PrefixAttention:
    """Attention from suffix tokens to the tokens of a shared prefix (ICR's query and calibration passes).

    ``spans[j]`` = token range of prefix segment ``j`` (segments tokenised jointly, as one text).
    ``weights[s][t]`` = attention to prefix token ``t`` from the tokens of suffix ``s``, summed over
    layers and heads and averaged over the suffix tokens.
    """

    spans: list[tuple[int, int]]
    weights: list[Any]  # one numpy array (prefix_tokens,) per suffix
    usage: Usage


class LLM:
    """Base class of every backend. Subclasses set ``capabilities`` and override what they support."""

    spec: str = ""
    capabilities: frozenset[str] = frozenset()
    context_length: int = 2048
    exact_tokens: bool = True  # False where token counts are estimates (remote servers)
    max_top_logprobs: int | None = None  # servers cap the logprobs they return per position (OpenAI API: 20)

    # -- text / tokens ----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """Cut ``text`` to at most ``max_tokens`` tokens; returns (text, was_truncated)."""
        raise NotImplementedError

    def is_single_token(self, text: str) -> bool:
        """Whether ``text`` is one token of the vocabulary (remote backends cannot tell: True)."""
        return True

    # -- capabilities -----------------------------------------------------------------------
    def require(self, capability: str, who: str = "this tool") -> None:
        """Raise `Unsupported` unless this backend has ``capability``."""
        if capability not in self.capabilities:
            raise Unsupported(
                f"{who} needs the LLM capability {capability!r}, which backend {self.spec!r} does not have "
                f"(it has: {', '.join(sorted(self.capabilities)) or 'none'})",
                hint="use a backend that has it: " + ", ".join(PROVIDERS.get(capability, [])),
            )

    def chat_prompt(self, messages: Messages) -> str:
        """The prompt text the model sees for chat ``messages`` (plain ``role: content`` lines here)."""
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def generate(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        should_stop: StopFn | None = None,
    ) -> str:
        """Chat messages -> generated text (greedy when temperature is 0)."""
        return self.complete(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop, should_stop=should_stop
        ).text

    def complete(
        self,
        messages: Messages | str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        should_stop: StopFn | None = None,
    ) -> Completion:
        """Like `generate`, with usage and (``top_logprobs`` > 0) per-token logprobs.

        Local backends (smollm2, hf:) also take a raw prompt string, continued as is (no chat template).

        ``should_stop`` (default: the running tool call's) is checked between tokens; when it
        says stop, generation ends and `Timeout` is raised (the partial text is dropped).
        """
        self.require("generate")
        raise NotImplementedError

    def next_token_logits(self, prompt_or_messages: str | Messages, candidates: list[str]) -> dict[str, float]:
        """Logits (or log-probabilities, for remote servers) of each candidate as the next token."""
        return self.next_token(prompt_or_messages, candidates).logits

    def next_token(self, prompt_or_messages: str | Messages, candidates: list[str]) -> NextToken:
        self.require("next_token_logits")
        raise NotImplementedError

    def attentions(self, segments: list[str], *, source: int) -> AttentionMass:
        """Attention mass from segment ``source`` to every segment of ``"".join(segments)``."""
        self.require("attentions")
        raise NotImplementedError

    def prefix_attentions(self, prefix: list[str], suffixes: list[str]) -> PrefixAttention:
        """Encode ``"".join(prefix)`` once, then for each suffix (appended to the prefix, one at a
        time) the attention of its tokens to the prefix tokens. See `PrefixAttention`."""
        self.require("attentions")
        raise NotImplementedError

    def next_token_after(self, messages: Messages, prefill: str, candidates: list[str]) -> NextToken:
        """Logits of each candidate as the token after the assistant turn is pre-filled with ``prefill``;
        each candidate is tokenised in that context (``prefill + candidate``)."""
        self.require("next_token_logits")
        raise NotImplementedError


def stopped(what: str) -> Timeout:
    """The error a backend raises when ``should_stop`` cut its work short."""
    return stopped_early(what)


def model_cache_dir(settings: Settings) -> Path:
    """Where converted model weights are cached: once per machine (``settings.model_cache``, default
    ``~/.cache/vltools``, ``VLTOOLS_MODEL_CACHE`` overrides), not under each ``VLTOOLS_HOME``."""
    return Path(settings.model_cache).expanduser()
