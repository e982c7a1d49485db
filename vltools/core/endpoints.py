"""Network endpoints come from the operator, never from a call's input.

An ``openai:`` spec names an endpoint the operator configured (``VLTOOLS_LLM_ENDPOINTS``, a JSON
object ``{"local": {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "OPENAI_API_KEY"}}``),
as ``openai:local#MODEL``. A spec may also spell out a configured endpoint's URL. Any other URL is
refused before a connection is made, unless the operator sets ``VLTOOLS_ALLOW_ANY_ENDPOINT=true``
(dangerous: callers can then make the server send requests anywhere); even then an API key is only
ever sent to the URL it is configured for.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from vltools.core.errors import InvalidInput
from vltools.core.settings import Settings

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_URL = re.compile(r"https?://[^\s#@/?]+(/[^\s#?@]*)?", re.ASCII)


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint: ``name`` is empty for an unlisted URL allowed by the opt-in."""

    name: str
    base_url: str
    api_key: str | None = None

    @property
    def label(self) -> str:
        """How messages name the endpoint (the name; the URL only when the caller gave it)."""
        return f"endpoint {self.name!r}" if self.name else self.base_url

    def __repr__(self) -> str:  # never show the key
        return f"Endpoint(name={self.name!r}, base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


def _key(env: str | None) -> str | None:
    return (os.environ.get(env) or None) if env else None


def resolve_endpoint(target: str, settings: Settings) -> Endpoint:
    """The endpoint ``target`` (a configured name or URL) stands for; refuses anything else.

    Raises:
        InvalidInput: an unknown name, or a URL that is not configured (without the opt-in).
    """
    target = target.strip()
    configured = settings.llm_endpoints
    names = ", ".join(sorted(configured)) or "none"
    hint = (
        "use openai:NAME#MODEL with a name from VLTOOLS_LLM_ENDPOINTS (configured: " + names + "); the operator "
        'adds endpoints with VLTOOLS_LLM_ENDPOINTS=\'{"local": {"base_url": "http://127.0.0.1:8000/v1"}}\''
    )
    if "://" not in target:
        if target in configured:
            ep = configured[target]
            return Endpoint(target, _norm(ep.base_url), _key(ep.api_key_env))
        shown = target if _NAME.fullmatch(target) else "given"
        raise InvalidInput(f"no LLM endpoint named {shown!r} is configured", hint=hint)
    url = _norm(target)
    for name, ep in configured.items():
        if _norm(ep.base_url) == url:
            return Endpoint(name, url, _key(ep.api_key_env))
    if settings.allow_any_endpoint:
        if not _URL.fullmatch(url):
            raise InvalidInput("the openai: URL is malformed", hint="give http(s)://HOST[:PORT]/PATH")
        return Endpoint("", url, None)  # never a key for an unlisted URL
    raise InvalidInput(
        "openai: URLs in a call must be configured endpoints; this one is not (no request was made)",
        hint=hint,
    )


__all__ = ["Endpoint", "resolve_endpoint"]
