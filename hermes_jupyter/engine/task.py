"""A task: the handle users hold (`Task`); the engine's side of it is `TaskControl`
(control.py).

`Task` is what `Session.delegate` returns: immutable facts (id, goal, model, ...) and the user's
operations, which go through the session (its `TaskHost`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..core.models import (
    PendingApproval,
    TaskResult,
    TaskState,
    TaskStatus,
)
from ..core.validate import a_callable
from ..tools.approval import ApprovalPolicy
from .control import TaskControl

if TYPE_CHECKING:

    from ..core.secrets import Secrets
    from ..tools import ToolRegistry
    from .structured import OutputSpec

__all__ = ["Task", "TaskControl", "TaskHost", "descendants_of", "named_elsewhere"]

Emit = Callable[..., None]
_log = logging.getLogger(__name__)


class TaskHost(Protocol):
    """What a `Task` handle asks of the session that made it."""

    def steer(self, ref: Task, message: str) -> None: ...
    def collect(self, ref: Task, timeout: float | None = None) -> TaskResult: ...
    def cancel(self, ref: Task) -> bool: ...
    def approve(self, ref: Task, call_id: str | None = None, *,
                remember: str | None = None) -> PendingApproval: ...
    def deny(self, ref: Task, call_id: str | None = None,
             reason: str = "") -> PendingApproval: ...


class Task:
    """Handle of one subagent, returned by `Session.delegate` at once.

    Like ipyparallel's `AsyncResult`: `done()`, `collect(timeout)`, `check()`, `steer()`,
    `cancel()`, and a short repr. Attributes: `id` ("t3"), `name`, `goal`, `context`, `model`,
    `max_iterations`, `timeout` (seconds or None), `resumed_from` ("kernel/id" of the
    interrupted task it resumed, `Session.resume`, else None).
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
        secrets: Secrets,
    ) -> None:
        self.id = task_id
        self.name = name
        self.goal, self.context = secrets.redact(goal), secrets.redact(context)
        self.model = model
        self.tools = tools
        self.max_iterations = max_iterations
        self.timeout = timeout
        self.owner: str | None = None  # who started it: None (the user), an agent, a task id
        self.parent_id: str | None = None  # the task that started this one, if a task did
        self.depth = 1  # 1 for the user's and agents' tasks; a task's child is one deeper
        self.group_id: str | None = None  # the fan-out group (Session.map) it belongs to
        self.max_total_tokens: int | None = None  # budgets (prompt + completion tokens, USD)
        self.max_cost_usd: float | None = None
        self.tool_timeout: float | None = None  # seconds one tool call may take
        self.output_type: OutputSpec | None = None  # typed output: its final answer's schema
        self.resumed_from: str | None = None  # "kernel/id" of the interrupted task resumed
        self.prior_messages: list[dict[str, Any]] | None = None  # its conversation, to go on
        self._host = host
        self.approval = ApprovalPolicy()  # which of its tool calls wait for a person
        self._control = TaskControl(self, emit, text_sink, secrets)

    def check(self) -> TaskStatus:
        """A consistent snapshot: state, counters, recent output, steering, error."""
        return self._control.snapshot()

    def steer(self, message: str) -> None:
        self._host.steer(self, message)

    def collect(self, timeout: float | None = None) -> TaskResult:
        return self._host.collect(self, timeout=timeout)

    def cancel(self) -> bool:
        return self._host.cancel(self)

    def approve(self, call_id: str | None = None, *,
                remember: str | None = None) -> PendingApproval:
        """Let a waiting tool call run (`Session.approve`)."""
        return self._host.approve(self, call_id, remember=remember)

    def deny(self, call_id: str | None = None, reason: str = "") -> PendingApproval:
        """Refuse a waiting tool call; the model reads `reason` (`Session.deny`)."""
        return self._host.deny(self, call_id, reason)

    def done(self) -> bool:
        return self._control.done()

    def add_done_callback(self, fn: Callable[[Task], None]) -> None:
        """Call `fn(task)` once the task has ended (now, if it has); on the settling thread."""
        self._control.add_done_callback(a_callable("fn", fn, "a function taking the Task"))

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


def descendants_of(root: Task, tasks: list[Task]) -> list[Task]:
    """The tasks started, directly or not, by `root`, among `tasks`; children first."""
    out: list[Task] = []
    frontier = {root.id}
    while frontier:
        children = [t for t in tasks if t.parent_id in frontier]
        out += children
        frontier = {t.id for t in children}
    return out


def named_elsewhere(tasks: Iterable[Task], name: str) -> str:
    """Where the user's view finds no task `name`: which agents or tasks named theirs so, every
    one of them, newest first ("kid is agent default's task t2; ... t1: use t2 or t1"), else ""."""
    found = [(t.owner, t) for t in reversed(list(tasks))
             if t.name == name and t.owner is not None]
    said = [f"{name!r} is {'agent ' + o[6:] if o.startswith('agent:') else 'task ' + o}'s "
            f"task {t.id}" for o, t in found[:3]]
    ids = " or ".join(t.id for _, t in found[:3])
    return f"{'; '.join(said)}: use {ids}." if found else ""
