"""The tools one task may call, and how a call runs: never raising into the agent loop."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from .approval import approval_reason
from .schema import function_schema, tool_name

__all__ = ["ToolOutcome", "ToolRegistry"]

MAX_RESULT_CHARS = 20_000


@dataclass(frozen=True)
class ToolOutcome:
    text: str
    ok: bool
    duration_s: float


class ToolRegistry:
    """Name → callable. Sync tools run on the session's tool threads, async ones on the loop."""

    def __init__(self, functions: list[Callable[..., Any]],
                 approval: dict[str, str] | None = None) -> None:
        self._functions: dict[str, Callable[..., Any]] = {}
        self._approval: dict[str, str] = {}  # name -> why its calls need approval
        for fn in functions:
            self._functions[tool_name(fn)] = fn
            reason = approval_reason(fn)
            if reason:
                self._approval[tool_name(fn)] = reason
        self._approval.update(approval or {})

    def __bool__(self) -> bool:
        return bool(self._functions)

    @property
    def names(self) -> list[str]:
        return list(self._functions)

    def approval_reason(self, name: str) -> str | None:
        """Why calls of the tool `name` need a person's approval; None when they do not."""
        return self._approval.get(name) if name in self._functions else None

    def schemas(self) -> list[dict[str, Any]]:
        return [function_schema(fn) for fn in self._functions.values()]

    async def run(self, name: str, arguments: str, executor: Executor) -> ToolOutcome:
        """Run one tool call; any problem becomes an error text the model can act on."""
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
            if inspect.iscoroutinefunction(fn):
                value = await fn(**args)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(executor, lambda: fn(**args))
        except asyncio.CancelledError:
            raise
        except TypeError as err:
            return self._error(f"{name} was called with wrong arguments: {err}", started)
        except Exception as err:
            return self._error(f"{name} raised {type(err).__name__}: {err}", started)
        return ToolOutcome(_as_text(value), True, time.monotonic() - started)

    @staticmethod
    def _error(message: str, started: float) -> ToolOutcome:
        return ToolOutcome(f"Error: {message}", False, time.monotonic() - started)


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
