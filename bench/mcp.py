"""MCP toolsets: what a stdio MCP server costs a task.

Start: a fresh session's first use of a server (spawn under the guard, initialize, list
tools), from `mcp_status(connect=True)`. Call: one `add` round trip as the task's tool trace
times it. Cancel: `cancel` → `collect` while the task waits in a tool that never returns (the
server is told to stop the call). Close: `session.close()` with a running server, until the
server process is gone.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from hermes_jupyter.testing import FakeLLM, Reply, ToolCall

from ._common import Row, pct, session, tail_rows, wait_until

SIZES = {
    "full": {"samples": 30},
    "quick": {"samples": 10},
    "tiny": {"samples": 2},
}
SERVER = Path(__file__).resolve().parent.parent / "tests" / "mcp_servers" / "tools_server.py"
CANCEL_GOAL_MS = 100.0


def run(samples: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as llm:
        starts, closes = _start_and_close(llm.base_url, Path(tmp), samples)
        calls, cancels = _calls_and_cancels(llm, Path(tmp), samples)
    rows = [
        Row("mcp", f"start a stdio server and list its tools, p{q}", pct(starts, q), "ms",
            note=f"{samples} fresh sessions") for q in (50, 99)
    ]
    rows += [Row("mcp", f"close a session with a running server, p{q}", pct(closes, q), "ms",
                 note="until the server process is gone") for q in (50, 99)]
    rows += [Row("mcp", f"tool call round trip (add), p{q}", pct(calls, q), "ms",
                 note=f"{len(calls)} calls, tool trace duration") for q in (50, 99)]
    rows += tail_rows("mcp", "cancel mid-MCP-call", cancels, CANCEL_GOAL_MS,
                      goal=f"p99 ≤ {CANCEL_GOAL_MS:g} ms", note=f"{len(cancels)} samples")
    return rows


def _servers(tmp: Path) -> dict[str, object]:
    return {"tools": {"command": sys.executable, "args": [str(SERVER)],
                      "env": {"PID_FILE": str(tmp / "pid"), "MARKER_FILE": str(tmp / "marker")}}}


def _start_and_close(base_url: str, tmp: Path, samples: int) -> tuple[list[float], list[float]]:
    starts, closes = [], []
    for _ in range(samples):
        with session(base_url, mcp_servers=_servers(tmp)) as s:
            t0 = time.perf_counter()
            [info] = s.mcp_status(connect=True)
            starts.append((time.perf_counter() - t0) * 1000)
            if info.state != "running":
                raise RuntimeError(f"bench: the MCP server did not start ({info.state})")
            pid = int((tmp / "pid").read_text())
            t0 = time.perf_counter()
        wait_until(lambda p=pid: not _alive(p), 10, "the MCP server to end")
        closes.append((time.perf_counter() - t0) * 1000)
    return starts, closes


def _calls_and_cancels(llm: FakeLLM, tmp: Path, samples: int) -> tuple[list[float], list[float]]:
    calls, cancels = [], []
    marker = tmp / "marker"
    with session(llm.base_url, mcp_servers=_servers(tmp)) as s:
        llm.script(Reply(tool_calls=[ToolCall("mcp_tools__add", {"a": i, "b": 1})
                                     for i in range(samples)]), Reply("done"))
        result = s.delegate("add", toolsets=["mcp:tools"]).collect(60)
        calls = [entry.duration_s * 1000 for entry in result.tool_trace]
        for i in range(samples):
            marker.write_text("")
            llm.on(f"wait {i}", Reply(tool_calls=[ToolCall("mcp_tools__wait_forever",
                                                           {"marker": str(i)})]))
            task = s.delegate(f"wait {i}", toolsets=["mcp:tools"])
            wait_until(lambda: marker.read_text().strip() != "", 30, "the tool to start")
            t0 = time.perf_counter()
            task.cancel()
            task.collect(10)
            cancels.append((time.perf_counter() - t0) * 1000)
    return calls, cancels


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.exists(f"/proc/{pid}")
