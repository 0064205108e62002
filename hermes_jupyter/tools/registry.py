"""The tools one task may call, and how a call runs: never raising into the agent loop.

Arguments are checked and converted against the tool's signature (`ToolSpec.bind`) before
the call; wrong ones go back to the model as one line per field, never as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from .approval import approval_reason
from .schema import ToolArgumentsError, ToolSpec, tool_spec

__all__ = ["ToolOutcome", "ToolRegistry"]

MAX_RESULT_CHARS = 20_000


@dataclass(frozen=True)
class ToolOutcome:
    text: str
    ok: bool
    duration_s: float


class ToolRegistry:
    """Name → callable. Sync tools run on the session's tool threads, async ones on the loop."""

    def __init__(
        self,
        functions: list[Callable[..., Any]],
        loaders: Iterable[Callable[[], Awaitable[list[Callable[..., Any]]]]] = (),
        approval: dict[str, str] | None = None,
    ) -> None:
        """Raises `ConfigurationError` for a function whose parameters have no JSON form.
        `loaders` give tools known only at run time (an MCP server's): see `prepare`.
        `approval`: tool name → why its calls need approval (besides `@tool` marks)."""
        self._functions: dict[str, Callable[..., Any]] = {}
        self._specs: dict[str, ToolSpec] = {}
        self._approval: dict[str, str] = dict(approval or {})  # name -> why it needs approval
        for fn in functions:
            self._add(fn)
        self._schemas = [spec.schema for spec in self._specs.values()]
        self._loaders = list(loaders)

    def __bool__(self) -> bool:
        return bool(self._functions) or bool(self._loaders)

    async def prepare(self) -> None:
        """Load the tools known only at run time, once (engine loop, before the first model
        call); a loader's `ToolsetError` says which toolset could not be loaded."""
        while self._loaders:
            for fn in await self._loaders.pop(0)():
                self._add(fn)
            self._schemas = [spec.schema for spec in self._specs.values()]

    def _add(self, fn: Callable[..., Any]) -> None:
        spec = tool_spec(fn)
        self._functions[spec.name] = fn
        self._specs[spec.name] = spec
        reason = approval_reason(fn)
        if reason:
            self._approval.setdefault(spec.name, reason)

    @property
    def names(self) -> list[str]:
        return list(self._functions)

    def approval_reason(self, name: str) -> str | None:
        """Why calls of the tool `name` need a person's approval; None when they do not."""
        return self._approval.get(name) if name in self._functions else None

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI `tools` entries, one per tool (built once, shared: do not mutate)."""
        return list(self._schemas)

    async def run(self, name: str, arguments: str, executor: Executor,
                  timeout: float | None = None) -> ToolOutcome:
        """Run one tool call; any problem becomes an error text the model can act on.

        `timeout` (seconds, the task's `tool_timeout`) bounds the call: an async tool is
        cancelled (a process tool kills its process group), a sync one is abandoned on the
        thread it runs on — such calls get a thread of their own, so an abandoned one never
        shrinks the shared pool. Either way the model reads that the tool timed out.
        """
        started = time.monotonic()
        fn = self._functions.get(name)
        if fn is None:
            known = ", ".join(self._functions) or "none"
            return self._error(f"there is no tool {name!r}; tools you can call: {known}", started)
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as err:
            return self._error(
                f"the arguments of {name} were not valid JSON ({err.msg} at char {err.pos}); "
                "call it again with a JSON object",
                started,
            )
        if not isinstance(args, dict):
            return self._error(f"the arguments of {name} must be a JSON object", started)
        try:
            positional, keywords = self._specs[name].bind(args)
        except ToolArgumentsError as err:
            return self._error(str(err), started)
        try:
            if inspect.iscoroutinefunction(fn):
                value = await asyncio.wait_for(fn(*positional, **keywords), timeout)
            elif timeout is None:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(executor, lambda: fn(*positional, **keywords))
            else:
                value = await asyncio.wait_for(_own_thread(fn, positional, keywords), timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            abandoned = "" if inspect.iscoroutinefunction(fn) else (
                " (a Python function cannot be stopped: it was left running on its own thread)")
            return self._error(f"{name} did not finish within its {timeout:g}s tool_timeout "
                               f"and was stopped{abandoned}; go on without its result, or "
                               "call it with less work", started)
        except Exception as err:
            return self._error(f"{name} raised {type(err).__name__}: {err}", started)
        return ToolOutcome(_as_text(value), True, time.monotonic() - started)

    @staticmethod
    def _error(message: str, started: float) -> ToolOutcome:
        return ToolOutcome(f"Error: {message}", False, time.monotonic() - started)


def _own_thread(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run `fn` on a new daemon thread; the awaitable of its result. Abandoning it (a
    timeout) leaves that thread alone and costs the shared tool pool nothing."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            (future.set_result if ok else future.set_exception)(value)

    def work() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as err:  # handed to the awaiting task, if it still waits
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, False, err)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, True, result)

    threading.Thread(target=work, name="hermes-tool-timed", daemon=True).start()
    return future


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > MAX_RESULT_CHARS:
        cut = len(text) - MAX_RESULT_CHARS
        text = text[:MAX_RESULT_CHARS] + f"\n… [{cut} more characters cut]"
    return text
