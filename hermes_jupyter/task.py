"""A task: one background subagent, its guarded state, and the handle users hold.

Every field below `_lock` is read and written under it; the engine's loop thread writes, any
thread reads through `check()`. A task settles exactly once (`_settle`), which sets `_done`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import TaskFinishedError
from .models import (
    SteerRecord,
    TaskResult,
    TaskState,
    TaskStatus,
    ToolTraceEntry,
    Usage,
)
from .output import OutputTail

if TYPE_CHECKING:
    import asyncio

    from .session import Session
    from .tools import ToolRegistry

__all__ = ["Task"]

Emit = Callable[..., None]
_log = logging.getLogger(__name__)


class Task:
    """Handle of one subagent, returned by `Session.delegate` at once.

    Like ipyparallel's `AsyncResult`: `done()`, `collect(timeout)`, `check()`, `steer()`,
    `cancel()`, and a short repr.
    """

    def __init__(
        self,
        session: Session,
        task_id: str,
        name: str | None,
        goal: str,
        context: str,
        model: str,
        tools: ToolRegistry,
        max_iterations: int,
        timeout: float | None,
        emit: Emit,
        text_sink: Callable[[str, str], None],
    ) -> None:
        self.id = task_id
        self.name = name
        self.goal = goal
        self.context = context
        self.model = model
        self.tools = tools
        self.max_iterations = max_iterations
        self.timeout = timeout
        self._session = session
        self._emit = emit
        self._text_sink = text_sink
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state = TaskState.QUEUED
        self._created_wall = time.time()
        self._created = time.monotonic()
        self._started: float | None = None
        self._ended: float | None = None
        self._usage = Usage()
        self._tail = OutputTail()
        self._activity = "queued"
        self._last_tool: str | None = None
        self._steering: list[SteerRecord] = []
        self._inbox: list[int] = []  # positions in _steering not yet delivered
        self._finishing = False
        self._cancel_requested = False
        self._cancel_reason: str | None = None
        self._tool_trace: list[ToolTraceEntry] = []
        self._transcript: list[dict[str, Any]] = []
        self._version = 0
        self._result: TaskResult | None = None
        # An ended task's snapshot never changes: keep it, so listing 1,000 finished tasks
        # allocates nothing (fresh snapshots there cost ~7 ms and set off full GC passes).
        self._final: TaskStatus | None = None
        self._aio_task: asyncio.Task[None] | None = None
        self._callbacks: list[Callable[[Task], None]] = []

    # ---- the public handle -------------------------------------------------------------
    def check(self) -> TaskStatus:
        with self._lock:
            if self._final is not None and self._final.version == self._version:
                return self._final
            status = self._snapshot()
            if self._state.terminal:
                self._final = status
            return status

    def steer(self, message: str) -> None:
        self._session.steer(self, message)

    def collect(self, timeout: float | None = None) -> TaskResult:
        return self._session.collect(self, timeout=timeout)

    def cancel(self) -> bool:
        return self._session.cancel(self)

    def done(self) -> bool:
        return self._done.is_set()

    def add_done_callback(self, fn: Callable[[Task], None]) -> None:
        """Call `fn(task)` once the task has ended (now, if it has); on the settling thread."""
        with self._lock:
            if not self._state.terminal:
                self._callbacks.append(fn)
                return
        _call_safely(fn, self)

    @property
    def state(self) -> TaskState:
        return self._state

    @property
    def result(self) -> TaskResult | None:
        """The result once the task has ended, else None (never blocks)."""
        return self._result

    def __repr__(self) -> str:
        label = f"{self.id} {self.name!r}" if self.name else self.id
        return f"<Task {label}: {self._state.value} {self._elapsed():.1f}s>"

    # ---- engine side -------------------------------------------------------------------
    def _elapsed(self) -> float:
        start = self._started if self._started is not None else self._created
        end = self._ended if self._ended is not None else time.monotonic()
        return max(0.0, end - start)

    def _snapshot(self) -> TaskStatus:
        return TaskStatus(
            id=self.id,
            name=self.name,
            state=self._state,
            model=self.model,
            goal=self.goal,
            created_at=self._created_wall,
            elapsed_s=round(self._elapsed(), 3),
            api_calls=self._usage.api_calls,
            prompt_tokens=self._usage.prompt_tokens,
            completion_tokens=self._usage.completion_tokens,
            recent_output=self._tail.lines(),
            activity=self._activity,
            last_tool=self._last_tool,
            steering=list(self._steering),
            error=self._result.error if self._result else None,
            summary=self._result.summary if self._result else None,
            version=self._version,
        )

    def _touch(self) -> None:
        self._version += 1

    def _accept_steer(self, message: str) -> None:
        """Queue a steering message, unless the task has decided it is finished."""
        with self._lock:
            if self._state.terminal or self._finishing or self._cancel_requested:
                raise TaskFinishedError(
                    f"Task {self.id} has already {self._end_word()}; steering needs a live task: "
                    "delegate a new one instead."
                )
            self._inbox.append(len(self._steering))
            self._steering.append(SteerRecord(message, time.time()))
            self._touch()
        self._emit("steer_queued", self.id, message=message)

    def _take_steers(self) -> list[str]:
        """Mark queued steering messages delivered and return them, oldest first."""
        with self._lock:
            if not self._inbox:
                return []
            now = time.time()
            messages = []
            for i in self._inbox:
                record = self._steering[i]
                self._steering[i] = SteerRecord(record.message, record.queued_at, now)
                messages.append(record.message)
            self._inbox.clear()
            self._touch()
        for message in messages:
            self._emit("steer_delivered", self.id, message=message)
        return messages

    def _try_finish(self) -> bool:
        """Decide "finished" and stop accepting steers in one step, so none is ever lost."""
        with self._lock:
            if self._inbox or self._cancel_requested:
                return False
            self._finishing = True
            return True

    def _set_activity(self, activity: str, line: str | None = None) -> None:
        with self._lock:
            self._activity = activity
            if line is not None:
                self._tail.line(line)
            self._touch()

    def _on_text(self, text: str) -> None:
        with self._lock:
            self._tail.write(text)
            self._activity = "writing"
            self._touch()
        self._text_sink(self.id, text)

    def _add_usage(self, prompt: int, completion: int) -> None:
        with self._lock:
            self._usage = Usage(
                self._usage.prompt_tokens + prompt,
                self._usage.completion_tokens + completion,
                self._usage.api_calls,
            )
            self._touch()

    def _count_request(self) -> None:
        with self._lock:
            self._usage = Usage(
                self._usage.prompt_tokens, self._usage.completion_tokens, self._usage.api_calls + 1
            )
            self._activity = "thinking"
            self._touch()

    def _record_tool(self, entry: ToolTraceEntry) -> None:
        with self._lock:
            self._tool_trace.append(entry)
            self._last_tool = entry.name
            self._touch()

    def _end_word(self) -> str:
        if self._state.terminal:
            return self._state.value
        return "finished its work" if self._finishing else "been asked to cancel"

    def _settle(
        self,
        state: TaskState,
        exit_reason: str,
        *,
        summary: str = "",
        error: str | None = None,
        transcript: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Enter a terminal state once; later calls change nothing. Returns whether it did."""
        with self._lock:
            if self._state.terminal:
                return False
            self._state = state
            self._ended = time.monotonic()
            self._activity = state.value
            if transcript is not None:
                self._transcript = transcript
            duration = self._ended - self._started if self._started is not None else 0.0
            self._result = TaskResult(
                id=self.id,
                name=self.name,
                state=state,
                model=self.model,
                summary=summary,
                exit_reason=exit_reason,
                error=error,
                api_calls=self._usage.api_calls,
                duration_s=round(duration, 3),
                usage=self._usage,
                tool_trace=list(self._tool_trace),
                transcript=list(self._transcript),
                output=self._tail.lines(),
            )
            self._touch()
            callbacks, self._callbacks = self._callbacks, []
        self._done.set()
        for fn in callbacks:
            _call_safely(fn, self)
        self._emit(
            "finished", self.id, state=state.value, exit_reason=exit_reason, error=error
        )
        return True


def _call_safely(fn: Callable[[Task], None], task: Task) -> None:
    try:
        fn(task)
    except Exception:  # a caller's callback must not break settling
        _log.exception("done callback %r of task %s failed", fn, task.id)
