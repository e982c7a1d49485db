"""`Context`: what a running tool gets besides its input — backends, progress, deadline, logger.

- The registry running a call sets itself on the context (`Context.registry`), so nested
  calls (`ctx.call`) run on that registry: a server, LangChain face or plugin registry keeps
  its nested calls. This module does not import the registry.
- Backends come from typed accessors (`text`, `clip`, `llm`, `collection`) returning the
  Protocols of `vltools.core.protocols`; their modules are imported on first use, so ``core``
  imports nothing heavy.
- Cancellation is cooperative: `should_stop()` is true once the deadline passed or the call was
  cancelled. Backends check it between batches and tokens; while a tool runs, the registry makes
  it the default stop signal (`vltools.core.cancel`) of backend calls made from the tool's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vltools.core.errors import InternalError, Timeout
from vltools.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from vltools.core.protocols import LLM, ClipBackend, Collection, TextEncoder, ToolCaller

ProgressCallback = Callable[[float, float | None, str], None]


class Context:
    """Per-call services for a tool.

    Args:
        progress: callback ``(done, total, note)``; the CLI draws tqdm on stderr, the MCP
            server sends progress notifications, graphs forward to LangGraph's custom stream.
        deadline: ``time.monotonic()`` value after which `check()` raises `Timeout`.
        settings: settings to use (default: from the environment).
        registry: the registry that runs the call (set by ``Registry.call``).
    """

    def __init__(
        self,
        *,
        progress: ProgressCallback | None = None,
        deadline: float | None = None,
        settings: Settings | None = None,
        logger: logging.Logger | None = None,
        registry: ToolCaller | None = None,
    ) -> None:
        self._progress_cb = progress
        self.deadline = deadline
        self.settings = settings or get_settings()
        self.logger = logger or logging.getLogger("vltools")
        self.cancelled = threading.Event()
        self.registry: ToolCaller | None = registry
        self.tool_name: str = ""

    # -- time and cancellation --------------------------------------------------------
    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def cancel(self) -> None:
        """Ask the call (and every nested call) to stop at its next check."""
        self.cancelled.set()

    def should_stop(self) -> bool:
        """True once the deadline passed or the call was cancelled (cheap: backends poll it)."""
        return self.cancelled.is_set() or (self.deadline is not None and time.monotonic() > self.deadline)

    def check(self) -> None:
        """Raise `Timeout` if the call ran past its deadline or was cancelled."""
        if self.cancelled.is_set():
            raise Timeout(
                f"{self.tool_name or 'tool'} was cancelled", hint="the caller gave up or ran past its time limit"
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Timeout(
                f"{self.tool_name or 'tool'} ran past its time limit",
                hint="raise the timeout (--timeout or VLTOOLS_TIMEOUT_S) or pass a smaller input",
                details={"deadline_passed_by_s": round(time.monotonic() - self.deadline, 3)},
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
    def text(self, spec: str | None = None) -> TextEncoder:
        """The text encoder for ``spec`` (default: settings.text_model)."""
        from vltools.core.paths import check_model_spec
        from vltools.models.text import get_text_encoder

        check_model_spec("text", spec, self.settings)  # paths in specs: allowed roots first, no URLs
        return get_text_encoder(spec or self.settings.text_model, self.settings)

    def llm(self, spec: str | None = None) -> LLM:
        """The LLM backend for ``spec`` (default: settings.llm)."""
        from vltools.core.paths import check_model_spec
        from vltools.models.llm import get_llm

        check_model_spec("llm", spec, self.settings)  # paths in specs: allowed roots first, no URLs
        return get_llm(spec or self.settings.llm, self.settings)

    def clip(self, spec: str | None = None) -> ClipBackend:
        """The CLIP backend for ``spec`` (default: settings.clip)."""
        from vltools.core.paths import check_model_spec
        from vltools.models.clip import get_clip

        check_model_spec("clip", spec, self.settings)  # paths in specs: allowed roots first, no URLs
        return get_clip(spec or self.settings.clip, self.settings)

    def collection(self, name: str) -> Collection:
        """Open an existing collection by name (raises NotFound)."""
        from vltools.store import open_collection

        return open_collection(name, self.settings)

    # -- composition ------------------------------------------------------------------
    def call(self, name: str, inp: Any = None) -> BaseModel:
        """Call another tool of the registry running this call, with this call's progress sink and deadline."""
        if self.registry is None:
            raise InternalError(
                f"{self.tool_name or 'a tool'} called {name} through a context that no registry runs",
                hint="run the outer tool with Registry.call (or vltools.call), not by calling its function",
            )
        return self.registry.call(name, inp, ctx=self.child())

    def child(self) -> Context:
        """A context for a nested call: same deadline, cancellation, progress sink, settings and registry."""
        ctx = Context(
            progress=self._progress_cb,
            deadline=self.deadline,
            settings=self.settings,
            logger=self.logger,
            registry=self.registry,
        )
        ctx.cancelled = self.cancelled
        return ctx
