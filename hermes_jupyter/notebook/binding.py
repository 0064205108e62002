"""Results into notebook variables: shared by `%collect_task -o`, the dashboard and the comm.

The rule every face follows: a result never replaces a variable the user has without an
explicit confirmation. `free_variable` offers a name nothing uses (`result_t2`, else
`result_t2_2`, ...); `collect_into` refuses a taken name with `VariableExistsError` unless
`overwrite=True` (the panel and the dashboard ask the user, then resend with it). A name is
taken when the namespace holds it, or when it is a Python built-in (`print`, `list`) or one of
IPython's own names (`display`, `get_ipython`, `In`, `Out`, `_`, `_3`, `_i3`, ...).
"""

from __future__ import annotations

import builtins
import keyword
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import HermesError
from ..core.models import TaskResult

if TYPE_CHECKING:
    from ..engine.task import Task

__all__ = [
    "VariableExistsError", "check_free", "check_variable_name", "collect_into",
    "default_variable", "free_variable",
]

_MISSING = object()
# IPython's output and input history names (`_`, `__`, `_3`, `_i`, `_ii`, `_i3`): it rebinds them
_HISTORY_NAME = re.compile(r"_{1,3}|_\d+|_i{1,3}|_i\d+")
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
            f"`{variable}` {self.what}: collect into another name (`{suggestion}` is free) or "
            "confirm to replace it."
        )

    @property
    def what(self) -> str:
        """What the name is now, as a phrase: `holds a value of type list`, `is a Python
        built-in`, `is one of IPython's own names`."""
        if self.held in (_BUILTIN, _IPYTHON):
            return f"is {self.held}"
        return f"already holds a value of type {self.held}"


_BUILTIN = "a Python built-in"
_IPYTHON = "one of IPython's own names"


def default_variable(task_id: str) -> str:
    """`result_<id>`: the base name every face offers for a task's result."""
    return f"result_{task_id}"


def free_variable(namespace: Mapping[str, Any], base: str) -> str:
    """`base` when nothing in `namespace` uses it, else the first free `base_2`, `base_3`, ...."""
    if _taken_as(namespace, base) is None:
        return base
    n = 2
    while _taken_as(namespace, f"{base}_{n}") is not None:
        n += 1
    return f"{base}_{n}"


def _taken_as(namespace: Mapping[str, Any], name: str) -> str | None:
    """What makes `name` taken (the type name of its value, a built-in, an IPython name),
    or None when it is free."""
    if _HISTORY_NAME.fullmatch(name) or name in _ipython_names(namespace):
        return _IPYTHON
    held = namespace.get(name, _MISSING)
    if held is not _MISSING:
        return type(held).__name__
    return _BUILTIN if name in vars(builtins) else None


def _ipython_names(namespace: Mapping[str, Any]) -> set[str]:
    """The names IPython keeps for itself in `namespace` (its `user_ns_hidden`), when
    `namespace` is the running shell's."""
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    if shell is None or getattr(shell, "user_ns", None) is not namespace:
        return {"display", "get_ipython", "exit", "quit", "In", "Out"}
    return {"display", *getattr(shell, "user_ns_hidden", ())}


def check_variable_name(variable: str, example: str = "result_t3") -> str:
    """`variable` stripped; one line when it is not a Python identifier (`example` shows one
    that fits where the name is used)."""
    name = variable.strip() if isinstance(variable, str) else ""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise HermesError(
            f"Bad variable name {variable!r}: use a Python identifier such as {example}."
        )
    return name


def collect_into(
    namespace: dict[str, Any], task: Task, variable: str, *, overwrite: bool = False
) -> str:
    """Store the task's `TaskResult` in `namespace[variable]`, now or when the task ends.

    Never waits: a running task gets a done-callback (an assignment, safe from any thread).
    A name already bound to anything but this task's own result, a built-in or an IPython name
    is refused with `VariableExistsError` unless `overwrite` is True; a running task's result
    is stored at its end only if the name still holds what it held when asked (a value the
    user assigned meanwhile wins). Returns one line for the user; raises `HermesError` on bad input,
    changing nothing.
    """
    name = check_variable_name(variable)
    with _bind_lock:
        check_free(namespace, task, name, overwrite=overwrite)
        held = namespace.get(name, _MISSING)

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


def check_free(
    namespace: Mapping[str, Any], task: Task, variable: str, *, overwrite: bool = False
) -> str:
    """`variable`, checked: a Python identifier, and free for `task`'s result (nothing holds
    it but this task's own result, and it is no built-in or IPython name) unless `overwrite`.
    Raises `HermesError` for a bad name, `VariableExistsError` for a taken one."""
    name = check_variable_name(variable)
    held = namespace.get(name, _MISSING)
    if overwrite or (held is not _MISSING and _is_result_of(held, task)):
        return name
    taken = _taken_as(namespace, name)
    if taken is not None:
        raise VariableExistsError(name, taken, free_variable(namespace, default_variable(task.id)))
    return name


def _is_result_of(value: Any, task: Task) -> bool:
    """Collecting the same task twice into one name replaces nothing of the user's."""
    return isinstance(value, TaskResult) and value.id == task.id
