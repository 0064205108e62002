"""hermes_jupyter: background AI subagents for Jupyter notebooks and Python scripts."""

from __future__ import annotations

from typing import Any

from .errors import (
    CollectTimeout,
    ConfigurationError,
    HermesError,
    TaskFinishedError,
    UnknownTaskError,
)
from .models import Event, SteerRecord, TaskResult, TaskState, TaskStatus, ToolTraceEntry, Usage
from .session import Session
from .task import Task

__version__ = "0.1.0"

__all__ = [
    "CollectTimeout",
    "ConfigurationError",
    "Event",
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
]


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hermes_jupyter`: the magics are imported only now, keeping import cheap."""
    from .magics import load_ipython_extension as load

    load(ip)
