"""`Context`: what a running tool gets besides its input — backends, progress, deadline, logger.

Backends are resolved by dotted path on first use so that ``core`` imports nothing heavy
(and nothing of vltools' upper layers) at import time.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from vltools.core.errors import Timeout
from vltools.core.settings import Settings, get_settings

ProgressCallback = Callable[[float, float | None, str], None]

# kind -> "module:function(spec, settings)"; each loader caches per process.
BACKEND_LOADERS: dict[str, str] = {
    "text": "vltools.models.text:get_text_encoder",
    "llm": "vltools.models.llm:get_llm",
    "clip": "vltools.models.clip:get_clip",
    "collection": "vltools.store:open_collection",
}


def _resolve(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


class Context:
    """Per-call services for a tool.

    Args:
        progress: callback ``(done, total, note)``; the CLI draws tqdm on stderr, the MCP
            server sends progress notifications, graphs forward to LangGraph's custom stream.
        deadline: ``time.monotonic()`` value after which `check()` raises `Timeout`.
        settings: settings to use (default: from the environment).
    """

    def __init__(
        self,
        *,
        progress: ProgressCallback | None = None,
        deadline: float | None = None,
        settings: Settings | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._progress_cb = progress
        self.deadline = deadline
        self.settings = settings or get_settings()
        self.logger = logger or logging.getLogger("vltools")
        self.cancelled = threading.Event()
        self.tool_name: str = ""

    # -- time -------------------------------------------------------------------------
    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise `Timeout` if the call ran past its deadline or was cancelled."""
        if self.cancelled.is_set() or (self.deadline is not None and time.monotonic() > self.deadline):
            raise Timeout(
                f"{self.tool_name or 'tool'} ran past its time limit",
                hint="raise VLTOOLS_TIMEOUT_S or pass a smaller input",
            )

    # -- progress ---------------------------------------------------------------------
    def progress(self, done: float, total: float | None = None, note: str = "") -> None:
        """Report progress of long work; also a cooperative cancellation point."""
        self.check()
        if self._progress_cb is not None:
            try:
                self._progress_cb(done, total, note)
            except Exception:  # a broken progress sink must never fail the tool
                self.logger.debug("progress callback failed", exc_info=True)

    # -- backends ---------------------------------------------------------------------
    def backend(self, kind: str, spec: str | None = None) -> Any:
        from vltools.core.paths import check_model_spec

        check_model_spec(kind, spec, self.settings)  # paths in specs: allowed roots first, no URLs
        return _resolve(BACKEND_LOADERS[kind])(spec, self.settings)

    def text(self, spec: str | None = None) -> Any:
        """The text encoder for ``spec`` (default: settings.text_model)."""
        return self.backend("text", spec or self.settings.text_model)

    def llm(self, spec: str | None = None) -> Any:
        """The LLM backend for ``spec`` (default: settings.llm)."""
        return self.backend("llm", spec or self.settings.llm)

    def clip(self, spec: str | None = None) -> Any:
        """The CLIP backend for ``spec`` (default: settings.clip)."""
        return self.backend("clip", spec or self.settings.clip)

    def collection(self, name: str) -> Any:
        """Open an existing collection by name (raises NotFound)."""
        return self.backend("collection", name)

    # -- composition ------------------------------------------------------------------
    def call(self, name: str, inp: Any) -> Any:
        """Call another registry tool with this call's progress sink and deadline."""
        from vltools.core.registry import get_registry

        return get_registry().call(name, inp, ctx=self.child())

    def child(self) -> Context:
        ctx = Context(progress=self._progress_cb, deadline=self.deadline, settings=self.settings, logger=self.logger)
        ctx.cancelled = self.cancelled
        return ctx
