"""Cancel latency: from `session.cancel(task)` to `task.collect()` returning.

Three places a task can be stopped: mid-stream, mid-backoff (429 with Retry-After: 30) and
mid-`python`-tool (a subprocess sleeping 60 s). Each sample also checks the aftermath: no
request reaches the server after the cancel, and the tool's subprocess is gone.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil

import hermes_jupyter as hj
from hermes_jupyter.testing import Fail, FakeLLM, Reply, ToolCall

from ._common import KEY, Row, session, tail_rows, wait_until

SIZES = {
    "full": {"samples": 200},
    "quick": {"samples": 50},
    "tiny": {"samples": 2},
}
GOAL_MS = 100.0


def run(samples: int) -> list[Row]:
    rows = []
    for label, fn in (("mid-stream", _mid_stream), ("mid-backoff (429, Retry-After: 30)",
                                                    _mid_backoff),
                      ("mid-python-tool (60 s sleep)", _mid_tool)):
        data, checked = fn(samples)
        rows += tail_rows("cancel", label, data, GOAL_MS, goal=f"p99 ≤ {GOAL_MS:g} ms",
                          note=f"{len(data)} samples, max {max(data):.1f} ms; {checked}")
    return rows


def _timed_cancel(task: hj.Task) -> float:
    t0 = time.perf_counter()
    task.cancel()
    result = task.collect(10)
    elapsed = (time.perf_counter() - t0) * 1000
    if result.state is not hj.TaskState.CANCELLED:
        raise RuntimeError(f"bench: task ended {result.state} instead of cancelled")
    return elapsed


def _mid_stream(samples: int) -> tuple[list[float], str]:
    out = []
    with FakeLLM() as llm, session(llm.base_url) as s:
        llm.default = Reply(text="x" * 20_000, chunk_size=4, delay=0.002)
        for i in range(samples):
            task = s.delegate(f"stream {i}")
            wait_until(lambda t=task: bool(t.check().recent_output), 10, "streamed text")
            out.append(_timed_cancel(task))
        time.sleep(0.3)  # anything sent after the cancel would arrive by now
        llm.wait_idle(5)
        per_task = len(llm.requests) / samples
    if per_task != 1:
        raise RuntimeError(f"bench: {per_task} requests per cancelled stream, expected 1")
    return out, "1 request per task, none after cancel"


def _mid_backoff(samples: int) -> tuple[list[float], str]:
    out = []
    with FakeLLM() as llm:
        for i in range(samples):
            key = f"{KEY}-{i}"  # a fresh key and session: each sample gets its own 429
            llm.key_rules[key] = Fail(429, retry_after=30)
            with session(llm.base_url, api_keys=[key]) as s:
                cooling = threading.Event()
                s.subscribe(lambda e, c=cooling: c.set() if e.kind == "key_cooldown" else None)
                task = s.delegate(f"backoff {i}")
                if not cooling.wait(10):
                    raise TimeoutError("bench: no 429 cooldown seen")
                before = len(llm.requests)
                out.append(_timed_cancel(task))
            time.sleep(0.01)
            if len(llm.requests) != before:
                raise RuntimeError("bench: a request arrived after cancelling a backoff")
    return out, "no request after cancel"


def _mid_tool(samples: int) -> tuple[list[float], str]:
    out = []
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as llm, session(
        llm.base_url, workspace=tmp
    ) as s:
        for i in range(samples):
            marker = Path(tmp, f"started-{i}")
            code = (f"import os, pathlib, time; pathlib.Path({str(marker)!r}).write_text("
                    "os.readlink('/proc/self/ns/pid') + ' ' + str(os.getpid())); time.sleep(60)")
            llm.on(f"sleepy {i}", Reply(tool_calls=[ToolCall("run_python", {"code": code})]))
            task = s.delegate(f"sleepy {i}", toolsets=["python"])
            wait_until(lambda m=marker: m.exists() and m.read_text() != "", 30,
                       "the tool's subprocess")
            ns, pid = marker.read_text().split()
            before = len(llm.requests)
            out.append(_timed_cancel(task))
            wait_until(lambda n=ns, p=int(pid): not _alive(n, p), 5, f"subprocess {pid} to end")
            if len(llm.requests) != before:
                raise RuntimeError("bench: a request arrived after cancelling a tool")
    return out, "subprocess gone, no request after cancel"


def _alive(ns: str, pid: int) -> bool:
    """Whether the tool's process lives: `pid` as the tool saw it, in its PID namespace `ns`
    (tool processes run isolated: then any process left in that namespace counts)."""
    if ns != os.readlink("/proc/self/ns/pid"):
        for entry in os.listdir("/proc"):
            with contextlib.suppress(OSError):
                if entry.isdigit() and os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    return True
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return os.path.exists(f"/proc/{pid}")
