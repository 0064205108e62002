"""Results into notebook variables: shared by `%collect_task -o`, the dashboard and the comm."""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Any

from ..core.errors import HermesError

if TYPE_CHECKING:
    from ..engine.task import Task

__all__ = ["check_variable_name", "collect_into", "default_variable"]


def default_variable(task_id: str) -> str:
    return f"result_{task_id}"


def check_variable_name(variable: str) -> str:
    name = variable.strip() if isinstance(variable, str) else ""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise HermesError(
            f"Bad variable name {variable!r}: use a Python identifier such as result_t3."
        )
    return name


def collect_into(namespace: dict[str, Any], task: Task, variable: str) -> str:
    """Store the task's `TaskResult` in `namespace[variable]`, now or when the task ends.

    Never waits: a running task gets a done-callback (an assignment, safe from any thread).
    Returns one line for the user; raises `HermesError` on bad input, changing nothing.
    """
    name = check_variable_name(variable)

    def store(done: Task) -> None:
        namespace[name] = done.result

    if task.done():
        store(task)
        assert task.result is not None
        return f"{task.id} {task.result.state.value}: result stored in `{name}`."
    task.add_done_callback(store)
    return (
        f"{task.id} is still {task.state.value}; its result will be stored in `{name}` "
        "when it ends."
    )
