"""Results into notebook variables: shared by `%collect_task -o`, the dashboard and the comm.

The rule every face follows: a result never replaces a variable the user has without an
explicit confirmation. `free_variable` offers a name nothing uses (`result_t2`, else
`result_t2_2`, ...); `collect_into` refuses a taken name with `VariableExistsError` unless
`overwrite=True` (the panel and the dashboard ask the user, then resend with it).
"""

from __future__ import annotations

import keyword
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import HermesError
from ..core.models import TaskResult

if TYPE_CHECKING:
    from ..engine.task import Task

__all__ = [
    "VariableExistsError", "check_variable_name", "collect_into", "default_variable",
    "free_variable",
]

_MISSING = object()
_bind_lock = threading.Lock()  # a check and its assignment are one step for every face


class VariableExistsError(HermesError):
    """The variable is taken by another value: collect elsewhere, or confirm to replace it.

    `variable` is the name, `held` the type name of what it holds, `suggestion` a free name.
    """

    def __init__(self, variable: str, held: str, suggestion: str) -> None:
        self.variable = variable
        self.held = held
        self.suggestion = suggestion
        super().__init__(
            f"`{variable}` already holds a value of type {held}: collect into another name "
            f"(`{suggestion}` is free) or confirm to replace it."
        )


def default_variable(task_id: str) -> str:
    """`result_<id>`: the base name every face offers for a task's result."""
    return f"result_{task_id}"


def free_variable(namespace: Mapping[str, Any], base: str) -> str:
    """`base` when nothing in `namespace` uses it, else the first free `base_2`, `base_3`, ...."""
    if base not in namespace:
        return base
    n = 2
    while f"{base}_{n}" in namespace:
        n += 1
    return f"{base}_{n}"


def check_variable_name(variable: str) -> str:
    name = variable.strip() if isinstance(variable, str) else ""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise HermesError(
            f"Bad variable name {variable!r}: use a Python identifier such as result_t3."
        )
    return name


def collect_into(
    namespace: dict[str, Any], task: Task, variable: str, *, overwrite: bool = False
) -> str:
    """Store the task's `TaskResult` in `namespace[variable]`, now or when the task ends.

    Never waits: a running task gets a done-callback (an assignment, safe from any thread).
    A name already bound to anything but this task's own result is refused with
    `VariableExistsError` unless `overwrite` is True; a running task's result is stored at
    its end only if the name still holds what it held when asked (a value the user assigned
    meanwhile wins). Returns one line for the user; raises `HermesError` on bad input,
    changing nothing.
    """
    name = check_variable_name(variable)
    with _bind_lock:
        held = namespace.get(name, _MISSING)
        if held is not _MISSING and not overwrite and not _is_result_of(held, task):
            raise VariableExistsError(
                name, type(held).__name__, free_variable(namespace, default_variable(task.id))
            )

    def store(done: Task) -> None:
        with _bind_lock:
            if namespace.get(name, _MISSING) is held:
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


def _is_result_of(value: Any, task: Task) -> bool:
    """Collecting the same task twice into one name replaces nothing of the user's."""
    return isinstance(value, TaskResult) and value.id == task.id
