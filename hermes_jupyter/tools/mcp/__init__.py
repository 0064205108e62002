"""MCP servers as toolsets: `toolsets=["mcp:name"]` gives a task the tools of one server.

`config` checks settings and names tools without the SDK; `manager` owns a session's servers;
`client` (one connection per server start) and `results` load the `mcp` SDK on first use;
`guard.py` runs stdio servers so they die with the kernel.
"""

from __future__ import annotations

from .config import ServerSpec, ToolsetRef, mcp_tool_name, parse_servers, parse_toolset
from .manager import (
    McpServerInfo,
    McpServers,
    McpToolError,
    release_shared,
    sanitize_schema,
)

__all__ = [
    "McpServerInfo",
    "McpServers",
    "McpToolError",
    "ServerSpec",
    "ToolsetRef",
    "mcp_tool_name",
    "parse_servers",
    "parse_toolset",
    "release_shared",
    "sanitize_schema",
]
