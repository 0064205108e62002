"""Tools a subagent can call: plain callables, and the built-in toolsets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ..core.errors import ConfigurationError
from .files import WorkspaceFiles
from .process import ProcessGroups, ProcessPolicy
from .python import ProcessKilled, PythonRunner
from .registry import ToolOutcome, ToolRegistry
from .schema import function_schema, tool_name

__all__ = [
    "TOOLSETS",
    "ProcessGroups",
    "ProcessKilled",
    "ProcessPolicy",
    "PythonRunner",
    "ToolOutcome",
    "ToolRegistry",
    "WorkspaceFiles",
    "build_registry",
    "function_schema",
    "tool_name",
]

TOOLSETS = ("files", "python")


def build_registry(
    tools: Iterable[Callable[..., Any]] | None,
    toolsets: Iterable[str] | None,
    workspace: str | os.PathLike[str],
    processes: ProcessPolicy | None = None,
) -> ToolRegistry:
    """The registry for one task; unknown toolset names are a configuration error.
    `processes` is how tool processes run (the session's env allowlist, caps, registry)."""
    functions: list[Callable[..., Any]] = []
    for name in toolsets or ():
        if name == "files":
            functions += WorkspaceFiles(workspace).tools()
        elif name == "python":
            functions += PythonRunner(workspace, policy=processes).tools()
        else:
            raise ConfigurationError(
                f"Unknown toolset {name!r}: choose from {', '.join(TOOLSETS)}."
            )
    for fn in tools or ():
        if not callable(fn):
            raise ConfigurationError(f"Tool {fn!r} is not callable: pass functions in tools=[...].")
        functions.append(fn)
    return ToolRegistry(functions)
