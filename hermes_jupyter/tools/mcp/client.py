"""One start of one MCP server: a connection owned by one asyncio task on the engine loop.

The SDK's client is built on anyio: a `ClientSession` (and the transport under it) must be
entered and left in the same task. So each `Link` runs one long-lived task that opens the
transport and the session, lists the tools, then serves calls handed to it through a queue,
each call in its own cancel scope. A caller that is cancelled cancels its future, which
cancels that call's scope (the SDK then tells the server). When the server's output ends (a
crash), a call runs past the server's timeout (a hang) or the session closes, the link stops
for good and fails what it still holds with `ServerLost`; the manager starts a new link on
next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp.types import CallToolResult, PaginatedRequestParams, Tool

from .config import DEFAULT_START_TIMEOUT, ServerSpec

__all__ = ["Link", "ServerLost", "ToolCallRefused"]

GUARD = Path(__file__).with_name("guard.py")
CONNECTION_CLOSED = -32000
_Item = SessionMessage | Exception


class ServerLost(Exception):
    """The server crashed, hung, could not start or was stopped; the text says which."""


class ToolCallRefused(Exception):
    """The server answered the call with a protocol error (unknown tool, bad arguments)."""


@dataclass
class _Call:
    tool: str
    arguments: dict[str, Any]
    future: asyncio.Future[CallToolResult]


class Link:
    """One running server. Create on the engine loop; `tools` resolves once it is ready."""

    def __init__(self, spec: ServerSpec, cwd: Path) -> None:
        loop = asyncio.get_running_loop()
        self.spec = spec
        self.cwd = cwd
        self.tools: asyncio.Future[list[Tool]] = loop.create_future()
        self.broken: str | None = None  # why this link takes no more calls
        self._calls: asyncio.Queue[_Call] = asyncio.Queue()
        self._in_flight: set[asyncio.Future[CallToolResult]] = set()
        self._stopping = asyncio.Event()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the server's stderr, for crash messages
        self.task = loop.create_task(self._own(), name=f"mcp server {spec.name}")

    @property
    def usable(self) -> bool:
        return self.broken is None and not self.task.done()

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """Call `tool`; cancelling the caller abandons the call at once."""
        if self.broken is not None:
            raise ServerLost(self.broken)
        future: asyncio.Future[CallToolResult] = asyncio.get_running_loop().create_future()
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        self._calls.put_nowait(_Call(tool, arguments, future))
        return await future

    def stop(self, reason: str) -> None:
        """Stop the server (any time, loop thread); calls still held fail with `reason`."""
        if self.broken is None:
            self.broken = reason
        self._stopping.set()

    # ---- the owner task ----------------------------------------------------------------
    async def _own(self) -> None:
        try:
            async with self._transport() as (read, write), anyio.create_task_group() as tg:
                relay_send, relay_recv = anyio.create_memory_object_stream[_Item](0)
                tg.start_soon(self._relay, read, relay_send)
                async with ClientSession(relay_recv, write) as session:
                    with anyio.fail_after(DEFAULT_START_TIMEOUT):
                        await session.initialize()
                        tools = await _list_tools(session)
                    self.tools.set_result(tools)
                    await self._serve(session)
                tg.cancel_scope.cancel()
        except asyncio.CancelledError:
            self.stop("the session closed")
            raise
        except BaseException as err:  # every end of a server is reported
            self.stop(self._why(err))
        finally:
            self.stop("the server stopped")
            lost = ServerLost(self.broken or "the server stopped")
            if not self.tools.done():
                self.tools.set_exception(lost)
                self.tools.exception()  # retrieved: nobody may be waiting for it
            while not self._calls.empty():
                self._settle(self._calls.get_nowait().future, lost)
            for future in list(self._in_flight):
                self._settle(future, lost)
            self._stderr.close()

    async def _serve(self, session: ClientSession) -> None:
        async with anyio.create_task_group() as calls:
            calls.start_soon(self._stop_when_asked, calls.cancel_scope)
            while True:
                call = await self._calls.get()
                calls.start_soon(self._run_call, session, call)

    async def _stop_when_asked(self, scope: anyio.CancelScope) -> None:
        await self._stopping.wait()
        scope.cancel()

    async def _run_call(self, session: ClientSession, call: _Call) -> None:
        if call.future.done():  # the caller gave up before the call began
            return
        timeout = self.spec.timeout
        with anyio.CancelScope() as scope:
            call.future.add_done_callback(lambda _f: scope.cancel())
            try:
                with anyio.fail_after(timeout):
                    result = await session.call_tool(call.tool, call.arguments)
            except TimeoutError:
                self.stop(f"it did not answer {call.tool} within its {timeout:g} s timeout "
                          "(raise 'timeout' in its settings if the tool is slow)")
                self._settle(call.future, ServerLost(self.broken or ""))
                return
            except MCPError as err:
                if err.error.code == CONNECTION_CLOSED:
                    self.stop(self.broken or "the connection to it closed")
                    self._settle(call.future, ServerLost(self.broken or ""))
                else:
                    self._settle(call.future, ToolCallRefused(err.error.message))
                return
            except Exception as err:
                self.stop(f"the connection failed ({type(err).__name__}: {err})")
                self._settle(call.future, ServerLost(self.broken or ""))
                return
            if not call.future.done():
                call.future.set_result(result)

    async def _relay(self, read: MemoryObjectReceiveStream[_Item],
                     send: MemoryObjectSendStream[_Item]) -> None:
        """Pass the server's messages on; their end (the server exited) stops the link."""
        async with send:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                async for item in read:
                    await send.send(item)
        what = "exited" if self.spec.transport == "stdio" else "closed the connection"
        self.stop(f"the server {what}{self._stderr_tail()}")

    # ---- helpers ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        spec = self.spec
        if spec.transport == "stdio":
            command, args = spec.command, list(spec.args)
            if os.name == "posix":  # dies with this process, even on SIGKILL (guard.py)
                command, args = sys.executable, ["-I", str(GUARD), str(os.getpid()), "--",
                                                 command, *args]
            params = StdioServerParameters(command=command, args=args, env=dict(spec.env) or None,
                                           cwd=spec.cwd or self.cwd)
            async with stdio_client(params, errlog=self._stderr) as streams:  # type: ignore[arg-type]
                yield streams
            return
        timeout = httpx2.Timeout(30.0, read=max(300.0, spec.timeout))
        async with httpx2.AsyncClient(headers=dict(spec.headers), timeout=timeout) as http, \
                streamable_http_client(spec.url, http_client=http) as streams:
            yield streams

    def _why(self, err: BaseException) -> str:
        while len(getattr(err, "exceptions", ())) == 1:  # an ExceptionGroup of one
            err = err.exceptions[0]  # type: ignore[attr-defined]
        if self.broken is not None:
            return self.broken
        if isinstance(err, TimeoutError):
            return f"it did not start within {DEFAULT_START_TIMEOUT:g} s{self._stderr_tail()}"
        if isinstance(err, MCPError) and err.error.code == CONNECTION_CLOSED:
            return f"the server exited while starting{self._stderr_tail()}"
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"{type(err).__name__}: {text}{self._stderr_tail()}"[:500]

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            data = self._stderr.read()[-4000:].decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in data.splitlines() if line.strip()]
        return f"; its last error output: {lines[-1][:300]}" if lines else ""

    @staticmethod
    def _settle(future: asyncio.Future[CallToolResult], err: BaseException) -> None:
        if not future.done():
            future.set_exception(err)


async def _list_tools(session: ClientSession) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever cannot hang the start
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools
