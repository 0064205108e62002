"""Kernel responsiveness: round trip of a trivial cell in a real kernel while agents stream.

A real ipykernel (started with `jupyter_client`), the fake model in a third process. We time
`execute_interactive("1+1")` (request → reply → idle) with the kernel idle, then while
`streams` tasks started in that kernel stream ~100 chunks/s each; idle and busy phases
alternate `rounds` times so drifting load from other processes hits both alike. A control
runs the same streams in this (the client's) process: the machine is as busy, but the kernel's
interpreter is not, which separates CPU contention from the cost inside the kernel. Two rates:
100 chunks/s per task (6,400/s in all; the goal's row) and 25 chunks/s per task.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import KEY, Row, ServerProcess, pct, session, wait_until

SIZES = {
    "full": {"samples": 450, "streams": 64, "rounds": 3},
    "quick": {"samples": 150, "streams": 64, "rounds": 1},
    "tiny": {"samples": 3, "streams": 2, "rounds": 1, "rates": (100,)},
}
GOAL = 1.5

START = """
import time, hermes_jupyter as hj
_bench_s = hj.Session(model="bench-model", base_url={url!r}, api_keys=[{key!r}],
                      max_concurrent={n})
_bench_tasks = [_bench_s.delegate(f"stream {{i}}") for i in range({n})]
_deadline = time.monotonic() + 30
while not all(t.check().recent_output for t in _bench_tasks):
    assert time.monotonic() < _deadline, "streams did not start"
    time.sleep(0.01)
"""
STOP = """
assert all(t.state.value == "running" for t in _bench_tasks), "a stream ended early"
_bench_s.close()
"""


def run(samples: int, streams: int, rounds: int, rates: tuple[int, ...] = (100, 25)
        ) -> list[Row]:
    """`rates`: chunks per second per task; the first is the one the goal is judged at."""
    idle: list[float] = []
    busy: dict[int, list[float]] = {rate: [] for rate in rates}
    elsewhere: dict[int, list[float]] = {rate: [] for rate in rates}
    per_round = max(1, samples // rounds)
    with streaming_kernel(streams, rates) as k:
        _times(k.client, 20)  # warm up
        for _ in range(rounds):
            idle += _times(k.client, per_round)
            for rate in rates:
                run_code(k.client, k.start[rate])
                busy[rate] += _times(k.client, per_round)
                run_code(k.client, STOP)
                with session(k.base_url[rate], max_concurrent=streams) as s:
                    tasks = [s.delegate(f"stream {i}") for i in range(streams)]
                    wait_until(lambda ts=tasks: all(t.check().recent_output for t in ts), 30,
                               "streams to start")
                    elsewhere[rate] += _times(k.client, per_round)
    rows = [_row("idle kernel", idle, idle, q) for q in (50, 99)]
    for rate in rates:
        label = f"{streams} tasks x {rate} chunks/s"
        for q in (50, 99):
            row = _row(f"{label} streaming in the kernel", busy[rate], idle, q)
            if q == 99:
                row.goal, row.met = f"p99 ≤ {GOAL:g}x idle", (row.ratio or 0) <= GOAL
            rows.append(row)
        rows += [_row(f"control: {label} in another process", elsewhere[rate], idle, q)
                 for q in (50, 99)]
    return rows


def _row(label: str, data: list[float], idle: list[float], q: int) -> Row:
    return Row("kernel", f"`1+1` round trip, {label}, p{q}", pct(data, q), "ms",
               pct(idle, q), "same kernel idle",
               note=f"{len(data)} samples, max {max(data):.1f} ms")


@dataclass
class Kernel:
    """A running kernel: its client, its pid, and per chunk rate the server and start code."""

    client: Any
    pid: int
    start: dict[int, str]
    base_url: dict[int, str]


@contextlib.contextmanager
def streaming_kernel(streams: int, rates: tuple[int, ...] = (100,)) -> Iterator[Kernel]:
    """A fresh kernel, and per rate a fake model streaming that many chunks/s per request."""
    from jupyter_client.manager import KernelManager

    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    km = KernelManager(kernel_name="python3")
    with contextlib.ExitStack() as stack:
        servers = {rate: stack.enter_context(ServerProcess(chunks=60 * rate,
                                                           chunk_delay=1 / rate))
                   for rate in rates}
        km.start_kernel(env=env, cwd=root, stderr=subprocess.DEVNULL)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            pid = int(km.provisioner.pid)  # type: ignore[union-attr]
            urls = {rate: server.base_url for rate, server in servers.items()}
            starts = {rate: START.format(url=url, key=KEY, n=streams)
                      for rate, url in urls.items()}
            yield Kernel(kc, pid, starts, urls)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def _times(kc: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply = kc.execute_interactive("1+1", store_history=False, timeout=30,
                                       output_hook=lambda msg: None)
        out.append((time.perf_counter() - t0) * 1000)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"bench: `1+1` failed in the kernel: {reply['content']}")
        time.sleep(random.uniform(0.001, 0.005))  # no lock-step with the streams' ticks
    return out


def run_code(kc: Any, code: str) -> None:
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "error":
            errors.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
    if reply["content"]["status"] != "ok" or errors:
        raise RuntimeError(f"bench: kernel code failed: {errors or reply['content']}")
