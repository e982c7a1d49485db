"""OpenAI-compatible HTTP backend (``openai:ENDPOINT#MODEL``): vLLM, llama.cpp server, Ollama,
``python -m vltools.testing.openai_server`` (a test double).

Capabilities: ``generate``; ``next_token_logits`` through ``top_logprobs`` (servers that do not
return logprobs fail with `Unsupported`). No attentions. Token counts for truncation are estimates
(4 characters per token); the server's own usage numbers are reported where it returns them.
The endpoint (URL and API key) is resolved from the operator's settings by `vltools.core.endpoints`
before this client exists; the key goes only to that endpoint, redirects are not followed, and
errors give the status code and a short reason, never the response body.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from typing import Any

from vltools.core.cancel import StopFn, current_should_stop
from vltools.core.endpoints import Endpoint
from vltools.core.errors import BackendUnavailable, Unsupported
from vltools.models._llm_base import LLM, Completion, Messages, NextToken, TokenLogprob, Usage, stopped

CHARS_PER_TOKEN = 4
TOP_LOGPROBS = 20  # the most OpenAI's API allows


class OpenAILLM(LLM):
    """Client of an OpenAI-compatible server (chat completions; legacy completions for raw prompts)."""

    capabilities = frozenset({"generate", "next_token_logits"})
    exact_tokens = False
    max_top_logprobs = TOP_LOGPROBS

    def __init__(self, endpoint: Endpoint, model: str, *, spec: str, timeout: float = 120.0):
        import httpx

        self.endpoint, self.base_url, self.model, self.spec = endpoint, endpoint.base_url, model, spec
        headers = {}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        self._client = httpx.Client(
            base_url=endpoint.base_url, headers=headers, timeout=timeout, trust_env=False, follow_redirects=False
        )
        self._lock = threading.Lock()
        self.context_length = 8192

    # -- tokens (estimates) ----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return max(1, -(-len(text) // CHARS_PER_TOKEN)) if text else 0

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        limit = max_tokens * CHARS_PER_TOKEN
        return (text, False) if len(text) <= limit else (text[:limit], True)

    # -- HTTP -------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any], feature: str | None = None) -> dict[str, Any]:
        """POST ``body``; ``feature`` names the request fields a refusal (HTTP 400/422/501) would be about."""
        import httpx

        where = self.endpoint.label
        try:
            with self._lock:
                r = self._client.post(path, json={"model": self.model, **body})
        except httpx.HTTPError as err:
            raise BackendUnavailable(
                f"cannot reach the LLM server ({where}): {type(err).__name__}",
                hint="start the server (vLLM, llama.cpp server, Ollama) "
                "or fix the endpoint in VLTOOLS_LLM_ENDPOINTS",
            ) from None
        if r.status_code >= 300:  # the body is never quoted: it may be anything the server holds
            try:
                reason = HTTPStatus(r.status_code).phrase
            except ValueError:
                reason = "unknown status"
            if feature and r.status_code in (400, 422, 501):
                raise Unsupported(
                    f"LLM server ({where}) refused {path} with {feature} (HTTP {r.status_code} {reason}): "
                    f"it does not serve {feature}",
                    hint=f"use a server that supports {feature} on {path} (vLLM, llama.cpp server), "
                    "or smollm2 / hf:PATH",
                )
            raise BackendUnavailable(
                f"LLM server ({where}) answered {path} with HTTP {r.status_code} {reason}",
                hint=f"check that the server serves model {self.model!r} (redirects are not followed)",
            )
        try:
            data = r.json()
        except ValueError:
            raise BackendUnavailable(f"LLM server ({where}) answered {path} with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise BackendUnavailable(f"LLM server ({where}) answered {path} with JSON that is not an object")
        return data

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
        data = self._post("/chat/completions", body, "'logprobs' with 'top_logprobs'" if top_logprobs else None)
        try:
            choice = data["choices"][0]
            text = str(choice["message"].get("content") or "")
            lps = None
            content = (choice.get("logprobs") or {}).get("content") if top_logprobs else None
            if content:
                lps = [
                    TokenLogprob(
                        str(c["token"]),
                        float(c["logprob"]),
                        [(str(t["token"]), float(t["logprob"])) for t in c["top_logprobs"]],
                    )
                    for c in content
                ]
            usage = self._usage(data, len(lps) if lps else 0)
            finish = str(choice.get("finish_reason") or "stop")
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise self._bad_shape("/chat/completions") from None
        return Completion(text=text, usage=usage, finish_reason=finish, logprobs=lps)

    def _bad_shape(self, path: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"LLM server ({self.endpoint.label}) answered {path} in an unexpected shape",
            hint="use an OpenAI-compatible server",
        )

    # -- next-token logprobs -----------------------------------------------------------------------
    def next_token(self, prompt_or_messages: str | Messages, candidates: list[str]) -> NextToken:
        """Log-probabilities of the candidates among the server's top logprobs of the first token.

        Servers return at most their top 20; candidates outside that list get the smallest returned
        logprob minus 1 (ties keep input order) and are left out of ``observed``, so a caller that needs
        every candidate ordered can ask again about those (rerank.first does, in rounds).
        """
        if isinstance(prompt_or_messages, str):
            path, feature = "/completions", "'logprobs' (top logprobs of a raw-prompt completion)"
            data = self._post(
                path,
                {"prompt": prompt_or_messages, "max_tokens": 1, "temperature": 0.0, "logprobs": TOP_LOGPROBS},
                feature,
            )
        else:
            path, feature = "/chat/completions", "'logprobs' with 'top_logprobs'"
            data = self._post(
                path,
                {
                    "messages": prompt_or_messages,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "logprobs": True,
                    "top_logprobs": TOP_LOGPROBS,
                },
                feature,
            )
        try:
            if path == "/completions":
                top_map = ((data.get("choices") or [{}])[0].get("logprobs") or {}).get("top_logprobs") or []
                top = [(str(t), float(lp)) for t, lp in top_map[0].items()] if top_map else []
            else:
                content = ((data.get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
                top = [(str(t["token"]), float(t["logprob"])) for t in content[0]["top_logprobs"]] if content else []
            usage = self._usage(data, 1)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise self._bad_shape(path) from None
        if not top:
            raise Unsupported(
                f"the LLM server behind {self.spec!r} answered {path} without top logprobs: it ignores {feature} "
                "in the request, so next-token log-probabilities cannot be read",
                hint=f"use a server that returns {feature} on {path} (vLLM, llama.cpp server) or smollm2 / hf:PATH",
            )
        floor = min(float(lp) for _, lp in top) - 1.0
        best: dict[str, float] = {}
        for tok, lp in top:
            key = str(tok).strip()
            if key not in best or float(lp) > best[key]:
                best[key] = float(lp)
        logits = {c: best.get(c.strip(), floor) for c in candidates}
        seen = frozenset(c for c in candidates if c.strip() in best)
        return NextToken(logits, usage, observed=seen)
