"""The engine: `Session`, `Task`, the subagent loop, the provider, credentials, events and the
journal. Usable from any Python process; imports no IPython, ipywidgets or anywidget."""

from __future__ import annotations

from .session import Session, TaskRef
from .task import Task

__all__ = ["Session", "Task", "TaskRef"]
