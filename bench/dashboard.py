"""Dashboard cost: comm messages per second and kernel CPU while 64 tasks stream.

In a real kernel, 64 tasks stream ~100 chunks/s each; we read the kernel's IOPub channel for
`window` seconds without and then with `dashboard(session)` displayed, counting `comm_msg`s and
the kernel's CPU. In-process, the refresher's sink calls/s are measured too (what drives any
live view). Skipped parts say so in their note.
"""

from __future__ import annotations

import contextlib
import datetime
import queue
import time
from typing import Any

import psutil

from ._common import Row, ServerProcess, cpu_seconds, session, wait_until
from .kernel import STOP, run_code, streaming_kernel

SIZES = {
    "full": {"streams": 64, "window": 10.0},
    "quick": {"streams": 64, "window": 4.0},
    "tiny": {"streams": 2, "window": 0.5},
}
GOAL = 10.0
SHOW = """
from hermes_jupyter.notebook.widgets.dashboard import dashboard
from IPython.display import display
display(dashboard(_bench_s))
"""
HIDE = "dashboard(_bench_s).close()"


def run(streams: int, window: float) -> list[Row]:
    rows = _refresher(streams, window)
    try:
        import hermes_jupyter.notebook.widgets.dashboard  # noqa: F401
    except ImportError as err:
        rows[0].note += f"; widget not measured ({err})"
        return rows
    return rows + _widget(streams, window)


def _refresher(streams: int, window: float) -> list[Row]:
    from hermes_jupyter.engine.refresher import get_refresher

    calls: list[int] = []
    with ServerProcess(chunks=int(100 * (window + 30)), chunk_delay=0.01) as server, session(
        server.base_url, max_concurrent=streams
    ) as s:
        tasks = [s.delegate(f"stream {i}") for i in range(streams)]
        wait_until(lambda: all(t.check().recent_output for t in tasks), 30, "streams to start")
        idle_cpu = _cpu_over(window / 2)
        remove = get_refresher(s).add_sink(lambda changed, totals: calls.append(len(changed)))
        c0, t0 = cpu_seconds(), time.monotonic()
        time.sleep(window)
        rate = len(calls) / (time.monotonic() - t0)
        busy_cpu = (cpu_seconds() - c0) / (time.monotonic() - t0) * 100
        remove()
        s.cancel_all()
    return [
        Row("dashboard", "refresher sink calls/s (in-process)", rate, "calls/s",
            goal=f"≤ {GOAL:g}/s", met=rate <= GOAL,
            note=f"{streams} tasks at ~100 chunks/s each; "
                 f"{sum(calls) / max(1, len(calls)):.0f} tasks per call"),
        Row("dashboard", "process CPU with a refresher sink", busy_cpu, "% of a core",
            idle_cpu, "same streams, no sink"),
    ]


def _widget(streams: int, window: float) -> list[Row]:
    with streaming_kernel(streams) as k:
        proc = psutil.Process(k.pid)
        run_code(k.client, k.start[100])
        base_msgs, before = _watch(k.client, proc, window / 2)
        run_code(k.client, SHOW)
        time.sleep(0.5)  # the opening snapshot is not a delta
        msgs, cpu = _watch(k.client, proc, window)
        run_code(k.client, HIDE)
        _, after = _watch(k.client, proc, window / 2)
        run_code(k.client, STOP)
    base_cpu = (before + after) / 2  # before and after: the load may drift meanwhile
    return [
        Row("dashboard", "dashboard comm messages/s (real kernel)", msgs, "msg/s",
            goal=f"≤ {GOAL:g} msg/s", met=msgs <= GOAL,
            note=f"{streams} tasks at ~100 chunks/s each; {base_msgs:.1f}/s without it"),
        Row("dashboard", "kernel CPU with the dashboard shown", cpu, "% of a core",
            base_cpu, "same kernel, no dashboard (before and after)"),
    ]


def _watch(kc: Any, proc: psutil.Process, window: float) -> tuple[float, float]:
    """comm_msg per second on IOPub, and the kernel's CPU %, over `window` seconds.

    Messages count by the kernel's send time (`header.date`), not by when we read them: what
    queued up before the window is drained first, what was sent in it is read a bit after.
    """
    with contextlib.suppress(queue.Empty):
        while True:
            kc.get_iopub_msg(timeout=0)
    start = datetime.datetime.now(datetime.timezone.utc)
    stop = start + datetime.timedelta(seconds=window)
    c0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
    cpu = None
    count = 0
    while time.monotonic() < t0 + window + 0.3:
        if cpu is None and time.monotonic() >= t0 + window:
            cpu = (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0) * 100
        with contextlib.suppress(queue.Empty):
            msg = kc.get_iopub_msg(timeout=0.05)
            sent = msg["header"]["date"]
            count += msg["msg_type"] == "comm_msg" and start <= sent < stop
    assert cpu is not None
    return count / window, cpu


def _cpu_over(seconds: float) -> float:
    c0, t0 = cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds() - c0) / (time.monotonic() - t0) * 100
