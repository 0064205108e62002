"""A task: the handle users hold (`Task`) and the engine's side of it (`TaskControl`).

`Task` is what `Session.delegate` returns: immutable facts (id, goal, model, ...) and the user's
operations, which go through the session. `TaskControl` is the contract between a task and the
engine (the session's scheduler and the subagent loop): the guarded state machine
`queued → running → succeeded | failed | cancelled`, with one lock per task. Every mutable field
of a task lives there and is read and written under its lock; the engine's loop thread writes,
any thread reads through `snapshot()`. A task settles exactly once (`settle`), which sets the
event that `wait` waits on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import TaskFinishedError
from ..core.models import (
    ExitReason,
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

    from ..tools import ToolRegistry

__all__ = ["Task", "TaskControl", "TaskHost"]

Emit = Callable[..., None]
_log = logging.getLogger(__name__)


class TaskHost(Protocol):
    """What a `Task` handle asks of the session that made it."""

    def steer(self, ref: Task, message: str) -> None: ...
    def collect(self, ref: Task, timeout: float | None = None) -> TaskResult: ...
    def cancel(self, ref: Task) -> bool: ...


class Task:
    """Handle of one subagent, returned by `Session.delegate` at once.

    Like ipyparallel's `AsyncResult`: `done()`, `collect(timeout)`, `check()`, `steer()`,
    `cancel()`, and a short repr. Attributes: `id` ("t3"), `name`, `goal`, `context`, `model`,
    `max_iterations`, `timeout` (seconds or None).
    """

    def __init__(
        self,
        host: TaskHost,
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
        self.owner: str | None = None  # who started it: None (the user), an agent, a task id
        self.parent_id: str | None = None  # the task that started this one, if a task did
        self.depth = 1  # 1 for the user's and agents' tasks; a task's child is one deeper
        self.max_total_tokens: int | None = None  # budgets (prompt + completion tokens, USD)
        self.max_cost_usd: float | None = None
        self._host = host
        self._control = TaskControl(self, emit, text_sink)

    def check(self) -> TaskStatus:
        """A consistent snapshot: state, counters, recent output, steering, error."""
        return self._control.snapshot()

    def steer(self, message: str) -> None:
        self._host.steer(self, message)

    def collect(self, timeout: float | None = None) -> TaskResult:
        return self._host.collect(self, timeout=timeout)

    def cancel(self) -> bool:
        return self._host.cancel(self)

    def done(self) -> bool:
        return self._control.done()

    def add_done_callback(self, fn: Callable[[Task], None]) -> None:
        """Call `fn(task)` once the task has ended (now, if it has); on the settling thread."""
        self._control.add_done_callback(fn)

    @property
    def state(self) -> TaskState:
        return self._control.state

    @property
    def result(self) -> TaskResult | None:
        """The result once the task has ended, else None (never blocks)."""
        return self._control.result

    @property
    def version(self) -> int:
        """A counter that moves whenever `check()` would answer differently."""
        return self._control.version

    def control_for(self, host: object) -> TaskControl:
        """The engine's side of this task, for the session that made it only."""
        if host is not self._host:
            raise PermissionError(f"task {self.id} belongs to another session")
        return self._control

    def __repr__(self) -> str:
        label = f"{self.id} {self.name!r}" if self.name else self.id
        return f"<Task {label}: {self.state.value} {self._control.elapsed():.1f}s>"


class TaskControl:
    """The engine's side of one task: its guarded state and every transition of it."""

    def __init__(self, task: Task, emit: Emit, text_sink: Callable[[str, str], None]) -> None:
        self.task = task
        self._emit_to = emit
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
        self._answer: list[str] = []  # text of the current model call
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

    # ---- reads (any thread) ----------------------------------------------------------
    @property
    def state(self) -> TaskState:
        return self._state

    @property
    def result(self) -> TaskResult | None:
        return self._result

    @property
    def version(self) -> int:
        return self._version

    @property
    def usage(self) -> Usage:
        with self._lock:
            return self._usage

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Block until the task has settled; False when `timeout` (seconds) ran out first."""
        return self._done.wait(timeout)

    def snapshot(self) -> TaskStatus:
        with self._lock:
            if self._final is not None and self._final.version == self._version:
                return self._final
            status = self._snapshot()
            if self._state.terminal:
                self._final = status
            return status

    def elapsed(self) -> float:
        start = self._started if self._started is not None else self._created
        end = self._ended if self._ended is not None else time.monotonic()
        return max(0.0, end - start)

    def add_done_callback(self, fn: Callable[[Task], None]) -> None:
        with self._lock:
            if not self._state.terminal:
                self._callbacks.append(fn)
                return
        _call_safely(fn, self.task)

    def emit(self, kind: str, **data: Any) -> None:
        """An event about this task."""
        self._emit_to(kind, self.task.id, **data)

    # ---- scheduling (the session) ----------------------------------------------------
    def claim(self) -> bool:
        """A slot was given: queued → running. False when the task is no longer queued."""
        with self._lock:
            if self._state is not TaskState.QUEUED:
                return False
            self._state = TaskState.RUNNING
            self._started = time.monotonic()
            self._activity = "starting"
            self._version += 1
        return True

    def bind(self, aio: asyncio.Task[None]) -> bool:
        """Attach the asyncio task that runs this task; False if a cancel came first."""
        with self._lock:
            if self._cancel_requested:
                return False
            self._aio_task = aio
            return True

    def request_cancel(self, reason: str = "cancelled") -> str | None:
        """Mark the task as stopping. Returns "queued" (settle it now), "running" (its
        asyncio task was or will be cancelled by the caller) or None (nothing to do)."""
        with self._lock:
            if self._state.terminal or self._cancel_requested:
                return None
            self._cancel_requested = True
            self._cancel_reason = reason
            return "queued" if self._state is TaskState.QUEUED else "running"

    def aio_task(self) -> asyncio.Task[None] | None:
        with self._lock:
            return self._aio_task

    # ---- the subagent loop (the loop thread) -----------------------------------------
    def accept_steer(self, message: str) -> None:
        """Queue a steering message, unless the task has decided it is finished."""
        with self._lock:
            if self._state.terminal or self._finishing or self._cancel_requested:
                raise TaskFinishedError(
                    f"Task {self.task.id} has already {self._end_word()}; steering needs a live "
                    "task: delegate a new one instead."
                )
            self._inbox.append(len(self._steering))
            self._steering.append(SteerRecord(message, time.time()))
            self._version += 1
        self.emit("steer_queued", message=message)

    def take_steers(self, limit: int | None = None) -> list[str]:
        """Mark queued steering messages delivered (the oldest `limit` of them, default all)
        and return them, oldest first."""
        with self._lock:
            if not self._inbox:
                return []
            now = time.time()
            messages = []
            taken = self._inbox[:limit] if limit is not None else list(self._inbox)
            for i in taken:
                record = self._steering[i]
                self._steering[i] = SteerRecord(record.message, record.queued_at, now)
                messages.append(record.message)
            del self._inbox[:len(taken)]
            self._version += 1
        for message in messages:
            self.emit("steer_delivered", message=message)
        return messages

    def try_finish(self) -> bool:
        """Decide "finished" and stop accepting steers in one step, so none is ever lost."""
        with self._lock:
            if self._inbox or self._cancel_requested:
                return False
            self._finishing = True
            return True

    def set_activity(self, activity: str, line: str | None = None) -> None:
        with self._lock:
            self._activity = activity
            if line is not None:
                self._tail.line(line)
            self._version += 1

    def on_text(self, text: str) -> None:
        with self._lock:
            self._tail.write(text)
            self._answer.append(text)
            self._activity = "writing"
            self._version += 1
        self._text_sink(self.task.id, text)

    def partial_answer(self) -> str:
        """The text the model has streamed in the current call (reset at every request,
        retries included, so nothing shows twice): what a stopped task keeps."""
        with self._lock:
            return "".join(self._answer)

    def add_usage(self, prompt: int, completion: int, cost_usd: float | None = None) -> Usage:
        """Count one call's tokens (and its cost in USD when known); the new totals."""
        with self._lock:
            self._usage = self._usage + Usage(prompt, completion, 0, cost_usd)
            self._version += 1
            return self._usage

    def count_request(self) -> None:
        with self._lock:
            self._usage = self._usage + Usage(api_calls=1)
            self._answer.clear()
            self._activity = "thinking"
            self._version += 1

    def record_tool(self, entry: ToolTraceEntry) -> None:
        with self._lock:
            self._tool_trace.append(entry)
            self._last_tool = entry.name
            self._version += 1

    def settle(
        self,
        exit_reason: ExitReason,
        *,
        summary: str = "",
        error: str | None = None,
        transcript: list[dict[str, Any]] | None = None,
        truncated: bool = False,
    ) -> bool:
        """Enter the terminal state of `exit_reason` once; later calls change nothing.
        Returns whether it did."""
        with self._lock:
            if self._state.terminal:
                return False
            state = exit_reason.state
            self._state = state
            self._ended = time.monotonic()
            self._activity = state.value
            if transcript is not None:
                self._transcript = transcript
            duration = self._ended - self._started if self._started is not None else 0.0
            task = self.task
            self._result = TaskResult(
                id=task.id,
                name=task.name,
                state=state,
                model=task.model,
                summary=summary,
                exit_reason=exit_reason,
                error=error,
                api_calls=self._usage.api_calls,
                duration_s=round(duration, 3),
                usage=self._usage,
                tool_trace=list(self._tool_trace),
                transcript=list(self._transcript),
                output=self._tail.lines(),
                truncated=truncated,
            )
            self._version += 1
            callbacks, self._callbacks = self._callbacks, []
        self._done.set()
        for fn in callbacks:
            _call_safely(fn, self.task)
        self.emit("finished", state=state.value, exit_reason=exit_reason.value, error=error)
        return True

    # ---- helpers (under the lock) ----------------------------------------------------
    def _snapshot(self) -> TaskStatus:
        task = self.task
        return TaskStatus(
            id=task.id,
            name=task.name,
            state=self._state,
            model=task.model,
            goal=task.goal,
            created_at=self._created_wall,
            elapsed_s=round(self.elapsed(), 3),
            api_calls=self._usage.api_calls,
            prompt_tokens=self._usage.prompt_tokens,
            completion_tokens=self._usage.completion_tokens,
            cost_usd=self._usage.cost_usd,
            recent_output=self._tail.lines(),
            activity=self._activity,
            last_tool=self._last_tool,
            steering=list(self._steering),
            error=self._result.error if self._result else None,
            summary=self._result.summary if self._result else None,
            version=self._version,
            owner=task.owner,
            parent_id=task.parent_id,
            depth=task.depth,
        )

    def _end_word(self) -> str:
        if self._state.terminal:
            return self._state.value
        return "finished its work" if self._finishing else "been asked to cancel"


def _call_safely(fn: Callable[[Task], None], task: Task) -> None:
    try:
        fn(task)
    except Exception:  # a caller's callback must not break settling
        _log.exception("done callback %r of task %s failed", fn, task.id)
