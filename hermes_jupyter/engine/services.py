"""What the parent `Agent` borrows from its session's engine: the loop, the model, the tools.

A parent's turn is not a task (it holds no slot), but it runs on the same engine loop, through
the same keys, retries and dialect handling, and its tools on the same tool threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future
from dataclasses import replace
from typing import Any, TypeVar

from ..core import validate as check
from ..core.errors import HermesError
from ..tools import McpServerInfo, McpServers, ProcessPolicy, ToolOutcome, ToolRegistry
from .loop import EngineLoop
from .provider import Completion, Provider

__all__ = ["Attachments", "EngineServices"]

_T = TypeVar("_T")


class EngineServices:
    """The engine loop, provider and tool threads of one session, for code that is not a
    task. `closed()` says whether the session has closed; `processes` is how the session's
    tool processes run (its secrets, env allowlist, memory cap, the registry close kills)."""

    def __init__(self, engine: EngineLoop, provider: Provider, tools: Executor,
                 closed: Callable[[], bool], processes: ProcessPolicy,
                 screen: Callable[[ToolRegistry, str, str], str | None]) -> None:
        self.processes = processes
        self._screen = screen  # a refusal text for a call that would need approval
        self._engine = engine
        self._provider = provider
        self._tools = tools
        self._closed = closed

    def submit(self, coro: Coroutine[Any, Any, _T]) -> Future[_T]:
        """Run `coro` on the engine loop (from any thread but that one); its future."""
        if self._closed():
            coro.close()
            raise HermesError("This session is closed: create a new Session.")
        return asyncio.run_coroutine_threadsafe(coro, self._engine.loop)

    async def stream_completion(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: Callable[[str], None],
    ) -> Completion:
        """One streamed model turn through the session's keys, retries and dialects
        (engine loop only)."""
        return await self._provider.complete(
            model, messages, tools, on_text=on_text, on_event=lambda kind, data: None,
            on_request=lambda: None,
        )

    async def run_tool(self, registry: ToolRegistry, name: str, arguments: str) -> ToolOutcome:
        """Run one tool call of `registry` on the session's tool threads (engine loop only);
        its text redacted of the session's secrets, as a task's tool results are. A call that
        needs approval runs only if the session's policy lets it without asking."""
        refused = self._screen(registry, name, arguments)
        if refused is not None:
            return ToolOutcome(refused, False, 0.0)
        outcome = await registry.run(name, arguments, self._tools)
        return replace(outcome, text=self.processes.secrets.redact(outcome.text))

    def shutdown(self, mcp: McpServers) -> None:
        """Stop MCP servers and HTTP clients on the loop, then the loop itself."""
        if self._engine.started:
            if mcp:
                with contextlib.suppress(Exception):
                    self._engine.run(mcp.aclose(), timeout=6.0)
            with contextlib.suppress(Exception):
                self._engine.run(self._provider.aclose(), timeout=1.0)
        self._engine.close()

    def mcp_status(self, mcp: McpServers, connect: bool, timeout: float,
                   closed: bool) -> list[McpServerInfo]:
        """The servers' states and tool names; `connect` first starts those not running."""
        connect = check.a_bool("connect", connect)
        timeout = check.seconds("timeout", timeout)
        if connect and mcp and not closed:
            with contextlib.suppress(TimeoutError):
                self._engine.run(mcp.start_all(), timeout=timeout)
        return mcp.status()


class Attachments:
    """Per-session helpers of the faces (a refresher, a dashboard), one per key, made on first
    use; those with a `close()` method are closed with the session. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helpers: dict[str, Any] = {}

    def get(self, key: str, make: Callable[[], _T]) -> _T:
        with self._lock:
            found = self._helpers.get(key)
            if found is None:
                found = self._helpers[key] = make()
            return found

    def peek(self, key: str) -> Any:
        """The helper under `key`, or None when none was made."""
        with self._lock:
            return self._helpers.get(key)

    def close(self) -> None:
        with self._lock:
            helpers = list(self._helpers.values())
        for helper in helpers:
            closer = getattr(helper, "close", None)
            if callable(closer):
                with contextlib.suppress(Exception):
                    closer()
