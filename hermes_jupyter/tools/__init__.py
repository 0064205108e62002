"""Tools a subagent can call: plain callables, and the built-in toolsets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ..core.errors import ConfigurationError
from .approval import ApprovalPolicy, approval_reason, tool
from .files import WorkspaceFiles
from .mcp import McpServerInfo, McpServers
from .process import ProcessGroups, ProcessPolicy
from .python import ProcessKilled, PythonRunner
from .registry import ToolOutcome, ToolRegistry
from .schema import ToolArgumentsError, ToolSpec, function_schema, tool_name, tool_spec
from .shell import ShellRunner

__all__ = [
    "TOOLSETS",
    "ApprovalPolicy",
    "McpServerInfo",
    "McpServers",
    "ProcessGroups",
    "ProcessKilled",
    "ProcessPolicy",
    "PythonRunner",
    "ShellRunner",
    "ToolArgumentsError",
    "ToolOutcome",
    "ToolRegistry",
    "ToolSpec",
    "WorkspaceFiles",
    "approval_reason",
    "build_registry",
    "function_schema",
    "tool",
    "tool_name",
    "tool_spec",
]

TOOLSETS = ("files", "python", "shell")


def build_registry(
    tools: Iterable[Callable[..., Any]] | None,
    toolsets: Iterable[str] | None,
    workspace: str | os.PathLike[str],
    processes: ProcessPolicy | None = None,
    mcp: McpServers | None = None,
    approve_file_writes: bool = False,
) -> ToolRegistry:
    """The registry for one task; unknown toolset names are a configuration error.
    `processes` is how tool processes run (the session's env allowlist, caps, registry).
    `mcp:server` (or `mcp:server/tool1+tool2`) names the tools of one of `mcp`'s servers;
    they are listed when the task starts (`ToolRegistry.prepare`), not here.
    `approve_file_writes` puts the `files` toolset's `write_file` under approval."""
    functions: list[Callable[..., Any]] = []
    loaders = []
    needs: dict[str, str] = {}
    for name in toolsets or ():
        if name.startswith("mcp:"):
            if mcp is None:
                raise ConfigurationError(f"Toolset {name!r} needs MCP servers: pass "
                                         "Session(mcp_servers={...}).")
            loaders.append(mcp.toolset(name))
        elif name == "files":
            functions += WorkspaceFiles(workspace).tools()
            if approve_file_writes:
                needs["write_file"] = "file writes need approval (approve_file_writes)"
        elif name == "python":
            functions += PythonRunner(workspace, policy=processes).tools()
        elif name == "shell":
            functions += ShellRunner(workspace, policy=processes).tools()
        else:
            raise ConfigurationError(
                f"Unknown toolset {name!r}: choose from {', '.join(TOOLSETS)} or "
                "mcp:SERVER."
            )
    for fn in tools or ():
        if not callable(fn):
            raise ConfigurationError(f"Tool {fn!r} is not callable: pass functions in tools=[...].")
        functions.append(fn)
    return ToolRegistry(functions, loaders, needs)
