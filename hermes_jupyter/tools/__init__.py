"""Tools a subagent can call: plain callables, and the built-in toolsets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ..core.errors import ConfigurationError
from .files import WorkspaceFiles
from .mcp import McpServerInfo, McpServers
from .process import ProcessGroups, ProcessPolicy
from .python import ProcessKilled, PythonRunner
from .registry import ToolOutcome, ToolRegistry
from .schema import ToolArgumentsError, ToolSpec, function_schema, tool_name, tool_spec

__all__ = [
    "TOOLSETS",
    "McpServerInfo",
    "McpServers",
    "ProcessGroups",
    "ProcessKilled",
    "ProcessPolicy",
    "PythonRunner",
    "ToolArgumentsError",
    "ToolOutcome",
    "ToolRegistry",
    "ToolSpec",
    "WorkspaceFiles",
    "build_registry",
    "function_schema",
    "tool_name",
    "tool_spec",
]

TOOLSETS = ("files", "python")


def build_registry(
    tools: Iterable[Callable[..., Any]] | None,
    toolsets: Iterable[str] | None,
    workspace: str | os.PathLike[str],
    processes: ProcessPolicy | None = None,
    mcp: McpServers | None = None,
) -> ToolRegistry:
    """The registry for one task; unknown toolset names are a configuration error.
    `processes` is how tool processes run (the session's env allowlist, caps, registry).
    `mcp:server` (or `mcp:server/tool1+tool2`) names the tools of one of `mcp`'s servers;
    they are listed when the task starts (`ToolRegistry.prepare`), not here."""
    functions: list[Callable[..., Any]] = []
    loaders = []
    for name in toolsets or ():
        if name.startswith("mcp:"):
            if mcp is None:
                raise ConfigurationError(f"Toolset {name!r} needs MCP servers: pass "
                                         "Session(mcp_servers={...}).")
            loaders.append(mcp.toolset(name))
        elif name == "files":
            functions += WorkspaceFiles(workspace).tools()
        elif name == "python":
            functions += PythonRunner(workspace, policy=processes).tools()
        else:
            raise ConfigurationError(
                f"Unknown toolset {name!r}: choose from {', '.join(TOOLSETS)} or "
                "mcp:SERVER."
            )
    for fn in tools or ():
        if not callable(fn):
            raise ConfigurationError(f"Tool {fn!r} is not callable: pass functions in tools=[...].")
        functions.append(fn)
    return ToolRegistry(functions, loaders)
