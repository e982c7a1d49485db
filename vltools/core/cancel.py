"""The running call's stop signal, for backends that are handed no ``should_stop``.

While the registry runs a tool, the tool's thread carries that call's `Context.should_stop`
in a context variable; a backend method called from the tool without an explicit
``should_stop`` (``llm.generate(...)``) picks it up here, so every tool's backend work stops
at the deadline or on cancel without each call site passing it along.
Backends import this module, not `vltools.core.context`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from vltools.core.errors import Timeout

StopFn = Callable[[], bool]

_RUNNING: ContextVar[StopFn | None] = ContextVar("vltools_should_stop", default=None)


@contextlib.contextmanager
def stop_signal(should_stop: StopFn) -> Iterator[None]:
    """Make ``should_stop`` the current thread's stop signal for the duration of the block."""
    token = _RUNNING.set(should_stop)
    try:
        yield
    finally:
        _RUNNING.reset(token)


def current_should_stop(should_stop: StopFn | None = None) -> StopFn | None:
    """``should_stop`` if given, else the running call's (None outside a registry call)."""
    return should_stop if should_stop is not None else _RUNNING.get()


def stopped_early(what: str, done: int | None = None, total: int | None = None) -> Timeout:
    """The `Timeout` a backend raises when its stop signal cut ``what`` short."""
    where = f" ({done}/{total} done)" if done is not None and total is not None else ""
    return Timeout(
        f"{what} stopped early{where}: the call ran past its deadline or was cancelled",
        hint="raise the timeout (--timeout, VLTOOLS_TIMEOUT_S) or ask for less work per call",
        details={"done": done, "total": total} if done is not None else None,
    )
