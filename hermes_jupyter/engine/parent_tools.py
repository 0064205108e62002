"""The six operations as tools for a parent agent, so an agent can orchestrate subagents.

    agent_tools = session_tools(session, owner=agent)       # scoped to the agent's children
    parent = session.delegate("Split the audit in three", tools=session_tools(session))

Each tool is a plain typed, docstringed function (its schema comes from the hints and the
docstring) that answers in text, because that is what a model reads. Bad input becomes a
sentence the model can act on, never an exception.

Typed output: `delegate_task(..., output_type="NAME")` looks NAME up in `output_types` (a
mapping of names to schemas, or a function returning one: in a notebook, the user namespace),
so a model can ask for a schema the user defined without being able to build one itself.

Ownership: with `owner=` (an `Agent`, a `Task`, or an owner id string) the tools act only on
tasks that owner started; any other task is "unknown" to it, and names are scoped to the owner.
Without it they act as the user does (every task by id, the user's names). Depth: a child gets
the same tools, scoped to itself, only while its depth is below `max_depth`; otherwise it
cannot delegate. Capacity: a *task* that delegates holds a concurrency slot while it waits for
its child, so when no slot is free its `delegate_task` is refused with a clear answer instead
of queueing a child that could never start (the deadlock of a parent waiting on its own slot).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..core.errors import CollectTimeout, HermesError
from ..tools import TOOLSETS
from .session import Session
from .structured import OutputSpec, output_spec
from .task import Task
from .views import TaskReport, TaskTable

__all__ = ["COLLECT_WAIT_MAX", "HasOwnerId", "owner_id_of", "session_tools"]

COLLECT_WAIT_MAX = 60.0  # seconds a parent's collect_task may block, at most


class HasOwnerId(Protocol):
    owner_id: str


Owner = HasOwnerId | Task | str | None
OutputTypes = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def owner_id_of(owner: Owner) -> str | None:
    """The owner id of an `Agent` (its `owner_id`), a `Task` (its id), a string, or None."""
    if owner is None or isinstance(owner, str):
        return owner
    if isinstance(owner, Task):
        return owner.id
    return owner.owner_id


def session_tools(
    session: Session,
    owner: Owner | Callable[[], str | None] = None,
    *,
    max_depth: int = 1,
    max_children: int | None = None,
    output_types: OutputTypes | None = None,
) -> list[Callable[..., str]]:
    """delegate_task, check_task, steer_task, collect_task, cancel_task and list_tasks, bound
    to `session` and scoped to `owner` (see the module docstring).

    `owner` may also be a function returning the owner id, for a task whose id is known only
    after it was delegated. `max_children`: how many of the owner's tasks may be live at once.
    `output_types`: where `delegate_task(output_type=NAME)` finds NAME (None: nowhere).
    """
    scope = _Scope(session, owner, max_depth, max_children, output_types)

    def delegate_task(goal: str, context: str = "", name: str | None = None,
                      toolsets: list[str] | None = None,
                      output_type: str | None = None) -> str:
        """Start a background subagent on a goal; returns its task id at once.

        Args:
            goal: what the subagent should do, complete and self-contained.
            context: facts the subagent needs; it knows nothing else about your work.
            name: optional short name to refer to the task by.
            toolsets: its tools, from "files", "python", "shell", "mcp:SERVER" (omit: default).
            output_type: optional name of an output type the user defined (a class or JSON
                schema); the subagent's answer is then JSON validated against it.
        """
        return scope.delegate(goal, context, name, output_type, toolsets)

    def check_task(task_id: str) -> str:
        """Report a task's state, time, model calls, tokens, steering and recent output.

        Args:
            task_id: the id returned by delegate_task, or the task's name.
        """
        return TaskReport(scope.find(task_id).check()).text()

    def steer_task(task_id: str, message: str) -> str:
        """Send a running task an instruction; it reads it before its next model call.

        Args:
            task_id: the id returned by delegate_task, or the task's name.
            message: what the subagent should do differently.
        """
        session.steer(scope.find(task_id), message)
        return f"Steering message queued for {task_id}."

    def collect_task(task_id: str, timeout: float = 10) -> str:
        """Wait briefly for a task to end and return its summary (or its status if it is
        still running).

        Args:
            task_id: the id returned by delegate_task, or the task's name.
            timeout: seconds to wait at most (capped at 60).
        """
        return scope.collect(task_id, timeout)

    def cancel_task(task_id: str) -> str:
        """Stop a queued or running task, and every task it started.

        Args:
            task_id: the id returned by delegate_task, or the task's name.
        """
        if session.cancel(scope.find(task_id)):
            return f"{task_id} cancelled."
        return f"{task_id} had already ended; nothing to cancel."

    def list_tasks() -> str:
        """List your tasks with their state, model, time, calls and tokens."""
        return TaskTable([t.check() for t in scope.mine()], "delegate_task").text()

    tools: list[Callable[..., str]] = [
        delegate_task, check_task, steer_task, collect_task, cancel_task, list_tasks]
    return [_answering_errors(tool) for tool in tools]


class _Scope:
    """What one owner may see and do."""

    def __init__(self, session: Session, owner: Owner | Callable[[], str | None],
                 max_depth: int, max_children: int | None,
                 output_types: OutputTypes | None = None) -> None:
        self.session = session
        self._owner = owner
        self.max_depth = max_depth
        self.max_children = max_children
        self.output_types = output_types

    @property
    def owner_id(self) -> str | None:
        owner = self._owner
        if callable(owner) and not isinstance(owner, Task):
            return owner()
        return owner_id_of(owner)

    @property
    def everyone(self) -> bool:
        return self._owner is None

    def find(self, ref: str) -> Task:
        return self.session.task_of(self.owner_id, ref, everyone=self.everyone)

    def mine(self) -> list[Task]:
        owner = self.owner_id
        return [t for t in self.session.tasks() if self.everyone or t.owner == owner]

    def delegate(self, goal: str, context: str, name: str | None,
                 output_type: str | None = None, toolsets: list[str] | None = None) -> str:
        spec = self.output_type(output_type) if output_type else None
        if toolsets is not None:
            self.check_toolsets(toolsets)
        owner = self.owner_id
        parent = self.session.task(owner) if owner in self._task_ids() else None
        depth = parent.depth + 1 if parent is not None else 1
        if parent is not None and self.session.free_slots() == 0:
            raise HermesError(
                f"No free slot: the session runs {self.session.max_concurrent} tasks at once "
                "and you hold one, so a child would wait for you forever. Do this part "
                "yourself, or end your turn and let the user raise max_concurrent."
            )
        live = [t for t in self.mine() if not t.done()]
        if self.max_children is not None and len(live) >= self.max_children:
            raise HermesError(
                f"You already run {len(live)} tasks (max_children={self.max_children}): "
                "wait for one to end before you start another."
            )
        tools: list[Callable[..., Any]] = []
        holder: list[str] = []
        if depth < self.max_depth:
            tools = session_tools(self.session, lambda: holder[0] if holder else None,
                                  max_depth=self.max_depth, max_children=self.max_children,
                                  output_types=self.output_types)
        task = self.session.delegate(goal, context, name=name or None, tools=tools or None,
                                     toolsets=toolsets, owner=owner, output_type=spec)
        holder.append(task.id)
        return task.id

    def check_toolsets(self, toolsets: Any) -> None:
        """A HermesError listing the session's toolsets when `toolsets` names another."""
        servers = [f"mcp:{info.name}" for info in self.session.mcp_status()]
        choices = ", ".join([*TOOLSETS, *servers])
        if isinstance(toolsets, str) or not isinstance(toolsets, list):
            raise HermesError(f"Bad toolsets {toolsets!r}: pass a list of names from: "
                              f"{choices}.")
        for name in toolsets:
            known = isinstance(name, str) and (name in TOOLSETS or any(
                name == s or name.startswith(s + "/") for s in servers))
            if not known:
                raise HermesError(f"Unknown toolset {name!r}: choose from {choices}, or omit "
                                  "toolsets for the session's default.")

    def output_type(self, name: str) -> OutputSpec:
        """The output type the user defined under `name`; a HermesError saying which names
        there are when none (or no schema) is."""
        found = self.output_types() if callable(self.output_types) else self.output_types
        found = found or {}
        value = found.get(name.strip()) if isinstance(name, str) else None
        if value is None:
            known = [k for k, v in list(found.items()) if not k.startswith("_") and _is_schema(v)]
            listed = ", ".join(sorted(known)[:12]) or "none"
            raise HermesError(f"No output type named {name!r}; the user defined: {listed}. "
                              "Pass one of those, or no output_type.")
        return output_spec(value)  # InvalidArgument (a HermesError) when it is no schema

    def collect(self, ref: str, timeout: float) -> str:
        task = self.find(ref)
        wait = min(COLLECT_WAIT_MAX, max(0.0, float(timeout)))
        try:
            result = self.session.collect(task, timeout=wait)
        except CollectTimeout:
            return (f"{ref} is still running after {wait:g}s; it goes on in the background. "
                    "Do other work, or collect it later.\n" + TaskReport(task.check()).text())
        if result.ok:
            return result.summary or "(the task ended without a summary)"
        return f"{result.headline()}\n{result.error or result.exit_reason}"

    def _task_ids(self) -> set[str]:
        return {t.id for t in self.session.tasks()}


def _is_schema(value: Any) -> bool:
    """Whether `value` is a class `output_type` takes (dicts are not listed: too many are)."""
    if not isinstance(value, type):
        return False
    try:
        output_spec(value)
    except HermesError:
        return False
    return True


def _answering_errors(fn: Callable[..., str]) -> Callable[..., str]:
    """A HermesError (unknown id, finished task, empty goal) becomes the tool's answer."""

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> str:
        try:
            return fn(*args, **kwargs)
        except HermesError as err:
            return f"Error: {err}"

    return tool
