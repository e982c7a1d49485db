"""A synchronous handle on one MCP client session, kept open across tests.

The SDK's client is async and its transports are context managers that must be entered and
left in one task; a background thread owns an event loop that opens the transport and the
session once, and tests run coroutines on it with `call`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp import ClientSession


class BackgroundSession:
    def __init__(self, open_transport: Callable[[], AbstractAsyncContextManager[Any]], *, timeout: float = 180.0):
        self._open = open_transport
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.session: ClientSession | None = None
        self.init_result: Any = None
        self._thread = threading.Thread(target=self._main, name="mcp-test-client", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as err:  # reported to the test thread
            self._error = err
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self._open() as streams, ClientSession(streams[0], streams[1]) as session:
            self.init_result = await session.initialize()
            self.session = session
            self._ready.set()
            await self._stop.wait()

    def start(self) -> BackgroundSession:
        self._thread.start()
        if not self._ready.wait(self._timeout) or self._error is not None:
            raise RuntimeError(f"MCP session did not start: {self._error!r}")
        return self

    def call(self, fn: Callable[[ClientSession], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run ``fn(session)`` on the session's loop and return its result."""
        assert self.session is not None
        fut = asyncio.run_coroutine_threadsafe(fn(self.session), self._loop)
        return fut.result(timeout or self._timeout)

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
