"""hermes_jupyter: background AI subagents for Jupyter notebooks and Python scripts."""

from __future__ import annotations

import sys as _sys
from typing import Any

from .core.errors import (
    CollectTimeout,
    ConfigurationError,
    HermesError,
    InvalidArgument,
    InvalidArgumentType,
    TaskFinishedError,
    UnknownTaskError,
)
from .core.models import (
    Event,
    ExitReason,
    PendingApproval,
    SteerRecord,
    TaskResult,
    TaskState,
    TaskStatus,
    ToolTraceEntry,
    Usage,
)
from .engine.agent import Agent, AgentReply, set_default_session_factory
from .engine.group import GroupStatus, TaskGroup
from .engine.session import Session
from .engine.task import Task
from .tools.approval import tool

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentReply",
    "CollectTimeout",
    "ConfigurationError",
    "Event",
    "ExitReason",
    "GroupStatus",
    "HermesError",
    "InvalidArgument",
    "InvalidArgumentType",
    "PendingApproval",
    "Session",
    "SteerRecord",
    "Task",
    "TaskFinishedError",
    "TaskGroup",
    "TaskResult",
    "TaskState",
    "TaskStatus",
    "ToolTraceEntry",
    "UnknownTaskError",
    "Usage",
    "__version__",
    "dashboard",
    "get_agent",
    "get_session",
    "tool",
]


def __getattr__(name: str) -> Any:
    """`get_session`, `get_agent` and `dashboard` import IPython/traitlets or widgets: only when
    asked for."""
    if name == "get_session":
        from .notebook.kernel import get_session

        return get_session
    if name == "get_agent":
        from .notebook.agent_magics import get_agent

        return get_agent
    if name == "dashboard":
        from .notebook.widgets.dashboard import dashboard

        return dashboard
    raise AttributeError(f"module 'hermes_jupyter' has no attribute {name!r}")


def _kernel_session() -> Session:
    from .notebook.kernel import get_session

    return get_session()


set_default_session_factory(_kernel_session)


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hermes_jupyter`: the magics are imported only now, keeping import cheap."""
    from .notebook.magics import load_ipython_extension as load

    load(ip)
    _register_displays(ip)


def _register_displays(ip: Any) -> None:
    """In an IPython (a kernel, a terminal), show a `TaskGroup` as a live progress bar."""
    if ip is not None and hasattr(ip, "display_formatter"):
        from .notebook.views import register_displays

        register_displays(ip)


# Imported in a running IPython (no %load_ext needed): register the displays now. IPython is
# only looked up, never imported, so the engine still runs where it cannot be.
_ipython = _sys.modules.get("IPython")
if _ipython is not None and callable(getattr(_ipython, "get_ipython", None)):
    _register_displays(_ipython.get_ipython())
