"""hermes_jupyter: background AI subagents for Jupyter notebooks and Python scripts."""

from __future__ import annotations

from typing import Any

from .core.errors import (
    CollectTimeout,
    ConfigurationError,
    HermesError,
    TaskFinishedError,
    UnknownTaskError,
)
from .core.models import (
    Event,
    ExitReason,
    SteerRecord,
    TaskResult,
    TaskState,
    TaskStatus,
    ToolTraceEntry,
    Usage,
)
from .engine.session import Session
from .engine.task import Task

__version__ = "0.1.0"

__all__ = [
    "CollectTimeout",
    "ConfigurationError",
    "Event",
    "ExitReason",
    "HermesError",
    "Session",
    "SteerRecord",
    "Task",
    "TaskFinishedError",
    "TaskResult",
    "TaskState",
    "TaskStatus",
    "ToolTraceEntry",
    "UnknownTaskError",
    "Usage",
    "__version__",
    "dashboard",
    "get_session",
]


def __getattr__(name: str) -> Any:
    """`get_session` and `dashboard` import IPython/traitlets or widgets: only when asked for."""
    if name == "get_session":
        from .notebook.kernel import get_session

        return get_session
    if name == "dashboard":
        from .notebook.widgets.dashboard import dashboard

        return dashboard
    raise AttributeError(f"module 'hermes_jupyter' has no attribute {name!r}")


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hermes_jupyter`: the magics are imported only now, keeping import cheap."""
    from .notebook.magics import load_ipython_extension as load

    load(ip)
