"""The engine's side of a task (`TaskControl`): its guarded state and every transition.

The contract between a task and the engine (the session's scheduler and the subagent loop):
the state machine `queued → running (⇄ awaiting_approval) → succeeded | failed | cancelled`,
with one lock per task.
Every mutable field of a task lives here and is read and written under its lock; the engine's
loop thread writes, any thread reads through `snapshot()`. A task settles exactly once
(`settle`): it builds the result, hands it to `on_settle` (the journal commits it there), and
only then publishes it and sets the event that `wait` waits on, so no one sees a result that
is not yet durable. The handle (`Task`, task.py) holds its control; this module knows the
handle only as `TaskFacts`, so the two modules do not import each other.
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
    PendingApproval,
    SteerRecord,
    TaskResult,
    TaskState,
    TaskStatus,
    ToolTraceEntry,
    Usage,
)
from .conversation import Conversation
from .output import RedactedTail

if TYPE_CHECKING:
    import asyncio

    from ..core.secrets import Secrets
    from ..tools import ToolRegistry
    from ..tools.approval import ApprovalPolicy
    from .structured import OutputSpec

__all__ = ["Emit", "TaskControl", "TaskFacts"]

Emit = Callable[..., None]
_log = logging.getLogger(__name__)


class TaskFacts(Protocol):
    """What the engine reads of a task's handle: its immutable facts."""

    id: str
    name: str | None
    goal: str
    context: str
    model: str
    tools: ToolRegistry
    max_iterations: int
    timeout: float | None
    owner: str | None
    parent_id: str | None
    depth: int
    group_id: str | None
    max_total_tokens: int | None
    max_cost_usd: float | None
    tool_timeout: float | None
    approval: ApprovalPolicy
    output_type: OutputSpec | None
    resumed_from: str | None
    prior_messages: list[dict[str, Any]] | None


class TaskControl:
    """The engine's side of one task: its guarded state and every transition of it, and the
    task's redaction choke point (tail, activity, steering, result)."""

    def __init__(self, task: TaskFacts, emit: Emit, text_sink: Callable[[str, str], None],
                 secrets: Secrets) -> None:
        self.task = task
        self._secrets, self.redact = secrets, secrets.redact
        self._emit_to = emit
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._state = TaskState.QUEUED
        self._created_wall = time.time()
        self._created = time.monotonic()
        self._started: float | None = None
        self._ended: float | None = None
        self._usage = Usage()
        self._tail = RedactedTail(secrets, lambda text: text_sink(task.id, text))
        self._answer: list[str] = []  # text of the current model call
        self._pending: list[PendingApproval] = []  # tool calls awaiting a decision
        self._activity = "queued"
        self._last_tool: str | None = None
        self._steering: list[SteerRecord] = []
        self._inbox: list[int] = []  # positions in _steering not yet delivered
        self._finishing = False
        self._cancel_requested = False
        self._cancel_reason: str | None = None
        self._tool_trace: list[ToolTraceEntry] = []
        self._transcript: list[dict[str, Any]] = []
        self.conversation = Conversation(secrets.redact_data)  # kept at each completed step
        self._version = 0
        self._result: TaskResult | None = None
        # An ended task's snapshot never changes: keep it, so listing 1,000 finished tasks
        # allocates nothing (fresh snapshots there cost ~7 ms and set off full GC passes).
        self._final: TaskStatus | None = None
        self._aio_task: asyncio.Task[None] | None = None
        self._callbacks: list[Callable[[Any], None]] = []
        self._settling = False  # settle() has begun: the result is being made durable
        # Called once with the result before anyone can see it (the session's journal).
        self.on_settle: Callable[[Any, TaskResult], None] | None = None
        self.on_cost: Callable[[float], None] | None = None  # each priced call's USD

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

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        with self._lock:
            if not self._state.terminal:
                self._callbacks.append(fn)
                return
        _call_safely(fn, self.task)

    def emit(self, kind: str, **data: Any) -> None:
        """An event about this task."""
        self._emit_to(kind, self.task.id, **data)

    # ---- scheduling (the session) ----------------------------------------------------
    def claim(self, started_wall: float | None = None) -> bool:
        """A slot was given: queued → running. False when the task is no longer queued.
        `started_wall` (epoch seconds): when it really started, for a task re-attached from an
        earlier kernel, so its elapsed time goes on from there."""
        with self._lock:
            if self._state is not TaskState.QUEUED or self._settling:
                return False
            self._state = TaskState.RUNNING
            ago = 0.0 if started_wall is None else max(0.0, time.time() - started_wall)
            self._started = time.monotonic() - ago
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
            if self._state.terminal or self._cancel_requested or self._settling:
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
            if (self._state.terminal or self._finishing or self._cancel_requested
                    or self._settling):
                raise TaskFinishedError(
                    f"Task {self.task.id} has already {self._end_word()}; steering needs a live "
                    "task: delegate a new one instead."
                )
            self._inbox.append(len(self._steering))
            self._steering.append(SteerRecord(self.redact(message), time.time()))
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
            self._activity = self.redact(activity)
            if line is not None:
                self._tail.line(line)
            self._version += 1

    def on_text(self, text: str) -> None:
        with self._lock:
            self._tail.feed(text)
            self._answer.append(text)  # kept raw: settle redacts what becomes the summary
            self._activity = "writing"
            self._version += 1

    def on_reasoning(self, text: str) -> None:
        """Streamed reasoning: into the live tail and text events, never into the answer."""
        with self._lock:
            self._tail.feed(text)
            self._activity = "reasoning"
            self._version += 1

    def note_answer(self, text: str) -> None:
        """Answer text a retried stream repeated: part of the answer, not shown again."""
        with self._lock:
            self._answer.append(text)

    def partial_answer(self) -> str:
        """The text the model has streamed in the current call (reset at every request,
        retries included, so nothing shows twice): what a stopped task keeps."""
        with self._lock:
            return "".join(self._answer)

    def add_usage(self, prompt: int, completion: int, cost_usd: float | None = None,
                  estimated: bool = False) -> Usage:
        """Count one call's tokens (and its cost in USD when known; `estimated` when the
        endpoint reported no usage); the new totals."""
        with self._lock:
            self._tail.flush()  # the call's text is complete: show what was held back
            self._usage = usage = self._usage + Usage(prompt, completion, 0, cost_usd,
                                                      estimated)
            self._version += 1
        if cost_usd is not None and self.on_cost is not None:
            self.on_cost(cost_usd)
        return usage

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

    def await_approval(self, calls: list[PendingApproval]) -> list[PendingApproval]:
        """running → awaiting_approval with `calls` pending (their arguments redacted);
        the pending calls as shown. Nothing changes once the task is ending."""
        redact = self._secrets.redact
        shown = [PendingApproval(c.call_id, c.tool, redact(c.arguments), redact(c.reason),
                                 c.requested_at) for c in calls]
        with self._lock:
            if self._state.terminal or self._cancel_requested:
                return shown
            self._pending += shown
            self._state = TaskState.AWAITING_APPROVAL
            self._activity = f"awaiting approval: {shown[0].tool}"
            self._version += 1
        return shown

    def pending_approvals(self) -> list[PendingApproval]:
        with self._lock:
            return list(self._pending)

    def resolve_approval(self, call_id: str) -> bool:
        """A decision was made on `call_id`: drop it; back to running when none is left.
        False when it was not pending."""
        with self._lock:
            kept = [p for p in self._pending if p.call_id != call_id]
            if len(kept) == len(self._pending):
                return False
            self._pending = kept
            if not kept and self._state is TaskState.AWAITING_APPROVAL:
                self._state = TaskState.RUNNING
                self._activity = "running approved tools"
            self._version += 1
            return True

    def settle(
        self,
        exit_reason: ExitReason,
        *,
        summary: str = "",
        error: str | None = None,
        transcript: list[dict[str, Any]] | None = None,
        truncated: bool = False,
        data: Any = None,
    ) -> bool:
        """Enter the terminal state of `exit_reason` once; later calls change nothing.
        Returns whether it did. `data`: the validated typed output (built from redacted
        text)."""
        with self._lock:
            if self._state.terminal or self._settling:
                return False
            self._settling = True
            self._tail.flush()
            state = exit_reason.state
            self._pending = []
            ended = time.monotonic()
            if transcript is not None:
                self._transcript = self._secrets.redact_data(transcript)
            duration = ended - self._started if self._started is not None else 0.0
            task = self.task
            result = TaskResult(
                id=task.id,
                name=task.name,
                state=state,
                model=task.model,
                summary=self.redact(summary),
                exit_reason=exit_reason,
                error=error and self.redact(error),
                api_calls=self._usage.api_calls,
                duration_s=round(duration, 3),
                usage=self._usage,
                tool_trace=list(self._tool_trace),
                transcript=list(self._transcript),
                output=self._tail.lines(),
                truncated=truncated,
                data=data,
            )
        self.conversation.drop()  # the result keeps the transcript
        if self.on_settle is not None:  # durable before visible
            try:
                self.on_settle(task, result)
            except Exception:
                _log.exception("on_settle of task %s failed", task.id)
        with self._lock:
            self._state = state
            self._ended = ended
            self._activity = state.value
            self._result = result
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
            pending_approvals=list(self._pending),
            group_id=task.group_id,
            resumed_from=task.resumed_from,
        )

    def _end_word(self) -> str:
        if self._state.terminal:
            return self._state.value
        return "finished its work" if self._finishing else "been asked to cancel"


def _call_safely(fn: Callable[[Any], None], task: Any) -> None:
    try:
        fn(task)
    except Exception:  # a caller's callback must not break settling
        _log.exception("done callback %r of task %s failed", fn, task.id)
