"""The six operations as tools for a parent agent, so an agent can orchestrate subagents.

    parent = session.delegate("Split the audit into three parts and merge the results",
                              tools=session_tools(session))

Each tool is a plain typed, docstringed function (its schema comes from the hints and the
docstring) that answers in text, because that is what a model reads. Bad input becomes a
sentence the model can act on, never an exception. Children started this way get no tools
unless their goal's toolsets say so, so they cannot delegate further.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..core.errors import CollectTimeout, HermesError
from .session import Session
from .views import TaskReport, TaskTable

__all__ = ["session_tools"]


def session_tools(session: Session) -> list[Callable[..., str]]:
    """delegate_task, check_task, steer_task, collect_task, cancel_task and list_tasks,
    bound to `session`."""

    def delegate_task(goal: str, context: str = "", name: str | None = None) -> str:
        """Start a background subagent on a goal; returns its task id at once.

        Args:
            goal: what the subagent should do, complete and self-contained.
            context: facts the subagent needs; it knows nothing else about your work.
            name: optional short name to refer to the task by.
        """
        task = session.delegate(goal, context, name=name or None)
        return task.id

    def check_task(task_id: str) -> str:
        """Report a task's state, time, model calls, tokens, steering and recent output.

        Args:
            task_id: the id returned by delegate_task, or the task's name.
        """
        return TaskReport(session.check(task_id)).text()

    def steer_task(task_id: str, message: str) -> str:
        """Send a running task an instruction; it reads it before its next model call.

        Args:
            task_id: the id returned by delegate_task, or the task's name.
            message: what the subagent should do differently.
        """
        session.steer(task_id, message)
        return f"Steering message queued for {task_id}."

    def collect_task(task_id: str, timeout: float = 60) -> str:
        """Wait for a task to end and return its summary (or its status if it is still running).

        Args:
            task_id: the id returned by delegate_task, or the task's name.
            timeout: seconds to wait at most.
        """
        try:
            result = session.collect(task_id, timeout=max(0.0, float(timeout)))
        except CollectTimeout:
            return (f"{task_id} is still running after {timeout:g}s; collect it again later.\n"
                    + TaskReport(session.check(task_id)).text())
        if result.ok:
            return result.summary or "(the task ended without a summary)"
        return f"{result.headline()}\n{result.error or result.exit_reason}"

    def cancel_task(task_id: str) -> str:
        """Stop a queued or running task.

        Args:
            task_id: the id returned by delegate_task, or the task's name.
        """
        if session.cancel(task_id):
            return f"{task_id} cancelled."
        return f"{task_id} had already ended; nothing to cancel."

    def list_tasks() -> str:
        """List every task with its state, model, time, calls and tokens."""
        return TaskTable(session.list_tasks()).text()

    tools: list[Callable[..., str]] = [
        delegate_task, check_task, steer_task, collect_task, cancel_task, list_tasks]
    return [_answering_errors(tool) for tool in tools]


def _answering_errors(fn: Callable[..., str]) -> Callable[..., str]:
    """A HermesError (unknown id, finished task, empty goal) becomes the tool's answer."""

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> str:
        try:
            return fn(*args, **kwargs)
        except HermesError as err:
            return f"Error: {err}"

    return tool
