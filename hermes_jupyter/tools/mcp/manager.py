"""`McpServers`: the MCP servers of one session, started lazily and shared by its tasks.

Threads: the constructor and `toolset`/`status` run on any thread and do no I/O; everything
that touches a server runs on the session's engine loop (`load`, `call`, `aclose`). A server
starts on the first task that uses it, once, however many tasks ask at the same moment;
its tool list is kept until it stops. A crashed or hung server is started again on next use.
Every text that leaves this module passes the session's `Secrets` first.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.errors import ToolsetError
from ...core.secrets import Secrets
from .config import ServerSpec, ToolsetRef, mcp_tool_name, parse_servers, parse_toolset

if TYPE_CHECKING:
    from .client import Link

__all__ = ["McpServerInfo", "McpServers", "McpToolError", "release_shared", "shared_copy"]

ToolLoader = Callable[[], Awaitable[list[Callable[..., Any]]]]
_CLOSE_WAIT = 5.0  # seconds close() waits for servers to stop (stdio: stdin closed, then kill)
# Imported on a worker thread before the first server starts: together about 1-3 s, which on
# the engine loop would stall every task. `jsonschema` is what the SDK validates results with.
_SDK_MODULES = ("hermes_jupyter.tools.mcp.client", "hermes_jupyter.tools.mcp.results",
                "jsonschema", "referencing")


class McpToolError(Exception):
    """A call to an MCP tool failed; the message is one line the model can act on."""


@dataclass(frozen=True)
class McpServerInfo:
    """One configured server for people: never an env or header value."""

    name: str
    where: str  # "stdio: npx -y ..." or "http: https://host/mcp (headers: Authorization)"
    state: str  # "not started" | "running" | "stopped: <why>"
    tools: tuple[str, ...] | None  # the server's own tool names; None until it has started


class McpServers:
    """Owns the session's MCP servers; `toolset("mcp:name")` gives a task their tools."""

    def __init__(self, servers: Mapping[str, Any] | None, secrets: Secrets,
                 cwd: Path) -> None:
        self._setup(parse_servers(servers), secrets, cwd, uuid.uuid4().hex)

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent to another process (a task's tools to a Dask worker) as its server specs: there
        one copy per session (`key`) is shared by the session's tasks and starts its servers on
        first use (`shared_copy`); `release_shared(key)` takes it back to close it. The specs'
        env and header values travel with it: send it only straight to a worker."""
        return (shared_copy, (self.key, self.specs, self._secrets, self._cwd))

    def _setup(self, specs: dict[str, ServerSpec], secrets: Secrets, cwd: Path,
               key: str) -> None:
        self.key = key  # names this session's servers in other processes (not a secret)
        self.specs = specs
        self._secrets = secrets
        for spec in self.specs.values():
            spec.register_secrets(secrets)
        self._cwd = cwd
        self._links: dict[str, Link] = {}  # loop thread only
        self._listed: dict[str, tuple[str, ...]] = {}  # tool names, for status()
        self._closed = False
        self._imported: asyncio.Future[None] | None = None  # loop thread only

    def __bool__(self) -> bool:
        return bool(self.specs)

    def toolset(self, name: str) -> ToolLoader:
        """Check `mcp:server[/tool1+tool2]` now (any thread, no I/O); the returned coroutine
        function starts the server if needed and gives the tool functions (engine loop)."""
        return functools.partial(self.load, parse_toolset(name, self.specs))

    async def load(self, ref: ToolsetRef) -> list[Callable[..., Any]]:
        """The tools of `ref` as functions for a `ToolRegistry`; `ToolsetError` if the server
        cannot start or lacks a tool the subset names."""
        link = await self._started(ref.server)
        try:
            tools = await asyncio.shield(link.tools)
        except Exception as err:
            raise ToolsetError(self._line(
                f"MCP server {ref.server!r} did not start: {err}; check its mcp_servers "
                "settings")) from None
        by_name = {t.name: t for t in tools}
        missing = [t for t in ref.only if t not in by_name]
        if missing:
            raise ToolsetError(self._line(
                f"MCP server {ref.server!r} has no tool {missing[0]!r} (toolset {ref}); "
                f"its tools: {', '.join(by_name) or 'none'}"))
        chosen = [by_name[t] for t in ref.only] if ref.only else tools
        return [self._function(ref.server, t.name, t.description, t.input_schema)
                for t in chosen]

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> str:
        """Call one tool and give its result as text; `McpToolError` with one line if the
        tool reports an error, the server crashed, hung or is stopped."""
        from .client import ServerLost, ToolCallRefused
        from .results import result_text

        link = await self._started(server)
        try:
            await asyncio.shield(link.tools)
            result = await link.call(tool, arguments)
        except ServerLost as err:
            again = "" if self._closed else "; it starts again on the next call"
            raise McpToolError(self._line(
                f"MCP server {server!r} failed during {tool}: {err}{again}")) from None
        except ToolCallRefused as err:
            raise McpToolError(self._line(
                f"MCP server {server!r} refused the call to {tool}: {err}")) from None
        text = self._secrets.redact(result_text(result))
        if result.is_error:
            raise McpToolError(self._line(f"{tool} reported an error: {text}"))
        return text

    def status(self) -> list[McpServerInfo]:
        """The configured servers and what is known of them (any thread, no I/O)."""
        out = []
        for name, spec in self.specs.items():
            link = self._links.get(name)
            if link is None:
                state = "not started"
            elif link.usable:
                state = "running" if link.tools.done() else "starting"
            else:
                state = f"stopped: {self._line(link.broken or 'stopped')}"
            out.append(McpServerInfo(name, spec.describe(self._secrets), state,
                                     self._listed.get(name)))
        return out

    async def start_all(self) -> None:
        """Start every server and list its tools (engine loop); failures show in status()."""
        links = [await self._started(name) for name in self.specs]
        await asyncio.gather(*(asyncio.shield(link.tools) for link in links),
                             return_exceptions=True)

    async def aclose(self) -> None:
        """Stop every server (engine loop); later calls fail with a clear error."""
        self._closed = True
        links = list(self._links.values())
        for link in links:
            link.stop("the session closed")
        if links:
            await asyncio.wait([link.task for link in links], timeout=_CLOSE_WAIT)

    # ---- helpers -----------------------------------------------------------------------
    async def _started(self, name: str) -> Link:
        """The server's live link, started if needed (loop thread); the SDK is imported on a
        worker thread the first time."""
        if self._imported is None:
            self._imported = asyncio.ensure_future(asyncio.to_thread(_import_sdk))
        try:
            await asyncio.shield(self._imported)
        except ImportError as err:
            raise ToolsetError(f"MCP servers need the mcp package, version 2 or later: pip "
                               f"install 'hermes_jupyter[mcp]' ({err}).") from None
        return self._link(name)

    def _link(self, name: str) -> Link:
        from .client import Link  # imported already by _started

        link = self._links.get(name)
        if link is not None and (link.usable or self._closed):
            return link
        if self._closed:
            raise ToolsetError(f"MCP server {name!r} is not available: the session is closed.")
        link = self._links[name] = Link(self.specs[name], self._cwd)
        link.tools.add_done_callback(functools.partial(self._remember_tools, name))
        return link

    def _remember_tools(self, name: str, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            self._listed[name] = tuple(t.name for t in done.result())

    def _function(self, server: str, tool: str, description: str | None,
                  schema: dict[str, Any] | None) -> Callable[..., Any]:
        name = mcp_tool_name(server, tool)

        async def call_mcp_tool(**arguments: Any) -> str:
            return await self.call(server, tool, arguments)

        call_mcp_tool.__name__ = call_mcp_tool.__qualname__ = name
        call_mcp_tool.__doc__ = description
        call_mcp_tool.__tool_schema__ = {  # type: ignore[attr-defined]
            "type": "function",
            "function": {
                "name": name,
                "description": description or f"Tool {tool} of the MCP server {server}.",
                "parameters": sanitize_schema(schema),
            },
        }
        return call_mcp_tool

    def _line(self, text: str) -> str:
        return " ".join(self._secrets.redact(text).split())


_SHARED: dict[str, McpServers] = {}  # this process's copies of other processes' sessions
_SHARED_LOCK = threading.Lock()


def shared_copy(key: str, specs: dict[str, ServerSpec], secrets: Secrets,
                cwd: Path) -> McpServers:
    """This process's one copy of the servers of session `key` (made on first use)."""
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = McpServers.__new__(McpServers)
            found._setup(specs, secrets, cwd, key)
        return found


def release_shared(key: str) -> McpServers | None:
    """Forget this process's copy of session `key`'s servers; the caller closes it."""
    with _SHARED_LOCK:
        return _SHARED.pop(key, None)


def _import_sdk() -> None:
    for module in _SDK_MODULES:
        importlib.import_module(module)


def sanitize_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The tool's input schema as given, with what strict providers refuse taken off: a
    `$schema` key, a missing `properties` or a top level that is not an object."""
    out: dict[str, Any] = json.loads(json.dumps(dict(schema or {}), default=str))
    out.pop("$schema", None)
    if out.get("type") != "object":
        out = {"type": "object", "properties": {}} if not out.get("properties") else {
            **out, "type": "object"}
    out.setdefault("properties", {})
    return out

