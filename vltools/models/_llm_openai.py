"""OpenAI-compatible HTTP backend (``openai:BASE_URL#MODEL``): vLLM, llama.cpp server, Ollama,
``python -m vltools.testing.openai_server`` (a test double).

Capabilities: ``generate``; ``next_token_logits`` through ``top_logprobs`` (servers that do not
return logprobs fail with `Unsupported`). No attentions. Token counts for truncation are estimates
(4 characters per token); the server's own usage numbers are reported where it returns them.
The API key, if any, comes from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from vltools.core.cancel import StopFn, current_should_stop
from vltools.core.errors import BackendUnavailable, Unsupported
from vltools.models._llm_base import LLM, Completion, Messages, NextToken, TokenLogprob, Usage, stopped

CHARS_PER_TOKEN = 4
TOP_LOGPROBS = 20  # the most OpenAI's API allows


class OpenAILLM(LLM):
    """Client of an OpenAI-compatible server (chat completions; legacy completions for raw prompts)."""

    capabilities = frozenset({"generate", "next_token_logits"})
    exact_tokens = False

    def __init__(self, base_url: str, model: str, *, spec: str, timeout: float = 120.0):
        import httpx

        self.base_url, self.model, self.spec = base_url, model, spec
        headers = {}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, trust_env=False)
        self._lock = threading.Lock()
        self.context_length = 8192

    # -- tokens (estimates) ----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return max(1, -(-len(text) // CHARS_PER_TOKEN)) if text else 0

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        limit = max_tokens * CHARS_PER_TOKEN
        return (text, False) if len(text) <= limit else (text[:limit], True)

    # -- HTTP -------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            with self._lock:
                r = self._client.post(path, json={"model": self.model, **body})
        except httpx.HTTPError as err:
            raise BackendUnavailable(
                f"cannot reach the LLM server {self.base_url}: {err}",
                hint="start the server (vLLM, llama.cpp server, Ollama) or fix the URL",
            ) from err
        if r.status_code >= 400:
            raise BackendUnavailable(
                f"LLM server {self.base_url}{path} answered {r.status_code}: {r.text[:300]}",
                hint=f"check that the server serves model {self.model!r}",
            )
        try:
            return r.json()
        except ValueError as err:
            raise BackendUnavailable(f"LLM server {self.base_url} answered non-JSON: {r.text[:200]}") from err

    @staticmethod
    def _usage(data: dict[str, Any], generated: int) -> Usage:
        u = data.get("usage") or {}
        gen = int(u.get("completion_tokens", generated) or 0)
        return Usage(
            forward_passes=max(1, gen), prompt_tokens=int(u.get("prompt_tokens", 0) or 0), generated_tokens=gen
        )

    # -- generate ---------------------------------------------------------------------------------
    def complete(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        should_stop: StopFn | None = None,
    ) -> Completion:
        stop_fn = current_should_stop(should_stop)
        if stop_fn is not None and stop_fn():  # an HTTP request in flight is not interrupted
            raise stopped(f"generation with {self.spec}")
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if stop:
            body["stop"] = list(stop)
        if top_logprobs:
            body.update(logprobs=True, top_logprobs=min(top_logprobs, TOP_LOGPROBS))
        data = self._post("/chat/completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError) as err:
            raise BackendUnavailable(f"LLM server {self.base_url} answered an unexpected shape: {data!r:.200}") from err
        lps = None
        content = (choice.get("logprobs") or {}).get("content") if top_logprobs else None
        if content:
            lps = [
                TokenLogprob(
                    c["token"], float(c["logprob"]), [(t["token"], float(t["logprob"])) for t in c["top_logprobs"]]
                )
                for c in content
            ]
        usage = self._usage(data, len(lps) if lps else 0)
        return Completion(text=text, usage=usage, finish_reason=choice.get("finish_reason") or "stop", logprobs=lps)

    # -- next-token logprobs -----------------------------------------------------------------------
    def next_token(self, prompt_or_messages: str | Messages, candidates: list[str]) -> NextToken:
        """Log-probabilities of the candidates among the server's top logprobs of the first token.

        Candidates outside the top list get the smallest returned logprob minus 1 (ties keep input order).
        """
        if isinstance(prompt_or_messages, str):
            data = self._post(
                "/completions",
                {"prompt": prompt_or_messages, "max_tokens": 1, "temperature": 0.0, "logprobs": TOP_LOGPROBS},
            )
            top_map = ((data.get("choices") or [{}])[0].get("logprobs") or {}).get("top_logprobs") or []
            top = list(top_map[0].items()) if top_map else []
        else:
            data = self._post(
                "/chat/completions",
                {
                    "messages": prompt_or_messages,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "logprobs": True,
                    "top_logprobs": TOP_LOGPROBS,
                },
            )
            content = ((data.get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
            top = [(t["token"], t["logprob"]) for t in content[0]["top_logprobs"]] if content else []
        if not top:
            raise Unsupported(
                f"the server behind {self.spec!r} returned no top_logprobs",
                hint="use a server with logprobs support (vLLM, llama.cpp) or smollm2 / hf:PATH",
            )
        floor = min(float(lp) for _, lp in top) - 1.0
        best: dict[str, float] = {}
        for tok, lp in top:
            key = str(tok).strip()
            if key not in best or float(lp) > best[key]:
                best[key] = float(lp)
        logits = {c: best.get(c.strip(), floor) for c in candidates}
        return NextToken(logits, self._usage(data, 1))
