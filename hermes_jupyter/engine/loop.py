"""The engine's own asyncio loop on a daemon thread: all model I/O and agent loops run here.

Never the kernel's loop: ipykernel stalls asyncio tasks created in a cell once it ends.
Cross-thread calls are batched: many `post` calls between two loop iterations cost one
wake-up of the loop (one `call_soon_threadsafe`), which keeps `delegate` cheap under load.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["EngineLoop"]

T = TypeVar("T")


class EngineLoop:
    def __init__(self, name: str = "hermes-engine") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: list[Callable[[], None]] = []
        self._wake_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._ensure_started()

    @property
    def started(self) -> bool:
        """Whether the loop thread was ever started (a session that ran nothing has none)."""
        return self._loop is not None

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def post(self, fn: Callable[[], None]) -> None:
        """Run `fn()` on the loop soon; callable from any thread, wake-ups coalesced."""
        loop = self._ensure_started()
        with self._lock:
            self._pending.append(fn)
            if self._wake_scheduled:
                return
            self._wake_scheduled = True
        loop.call_soon_threadsafe(self._run_pending)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and wait for it (never from the loop thread)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._ensure_started())
        return future.result(timeout)

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def _run_pending(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._wake_scheduled = False
        for fn in batch:
            fn()

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        with self._lock:
            if self._closed:
                raise RuntimeError("the session is closed")
            if self._loop is None:
                ready = threading.Event()
                loop = _new_loop()
                self._thread = threading.Thread(
                    target=self._main, args=(loop, ready), name=self._name, daemon=True
                )
                self._thread.start()
                ready.wait()
                self._loop = loop
        return self._loop

    @staticmethod
    def _main(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())  # close open streams' generators
            loop.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (less CPU per wake-up of the loop), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
