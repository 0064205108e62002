"""Cost of a durable journal: delegate and collect with `journal=True` against no journal.

Since issue 12 a task's first row is committed before `delegate` returns and its terminal row
before its result is visible (SQLite WAL, synchronous=NORMAL: a commit survives a killed
process, not a power cut). Measured against a fake model in its own process: `delegate()`
latency, one task at a time end to end (delegate + collect), and throughput of a batch.
Run this file's `run()` on an older tree for the "before" of batched rows.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from ._common import Row, ServerProcess, pct, session

SIZES = {
    "full": {"tasks": 400, "batch": 200},
    "quick": {"tasks": 150, "batch": 100},
    "tiny": {"tasks": 5, "batch": 5},
}
FIGURE = "journal"


def run(tasks: int, batch: int) -> list[Row]:
    rows: list[Row] = []
    with ServerProcess() as server:
        plain = _measure(server.base_url, tasks, batch, journal=False)
        kept = _measure(server.base_url, tasks, batch, journal=True)
    for label, unit, key, note in (
        ("delegate() returns, p50", "ms", "delegate_p50", f"{tasks} calls"),
        ("delegate() returns, p99", "ms", "delegate_p99", f"{tasks} calls"),
        ("delegate + collect, one task at a time, p50", "ms", "e2e_p50", f"{tasks} tasks"),
        ("delegate + collect, one task at a time, p99", "ms", "e2e_p99", f"{tasks} tasks"),
        (f"throughput, {batch} tasks at once", "tasks/s", "throughput", "max_concurrent=8"),
    ):
        rows.append(Row(FIGURE, f"{label}, durable journal", kept[key], unit, plain[key],
                        "no journal", note=note))
    return rows


def _measure(base_url: str, tasks: int, batch: int, *, journal: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder, \
            session(base_url, workspace=folder, journal=journal) as s:
        for _ in range(3):
            s.delegate("warm up").collect(60)
        delegate_ms, e2e_ms = [], []
        for i in range(tasks):
            t0 = time.perf_counter()
            task = s.delegate(f"one {i}")
            t1 = time.perf_counter()
            task.collect(60)
            t2 = time.perf_counter()
            delegate_ms.append((t1 - t0) * 1000)
            e2e_ms.append((t2 - t0) * 1000)
        t0 = time.perf_counter()
        started = [s.delegate(f"many {i}") for i in range(batch)]
        for task in started:
            task.collect(120)
        elapsed = time.perf_counter() - t0
    out: dict[str, Any] = {
        "delegate_p50": pct(delegate_ms, 50), "delegate_p99": pct(delegate_ms, 99),
        "e2e_p50": pct(e2e_ms, 50), "e2e_p99": pct(e2e_ms, 99),
        "throughput": batch / elapsed,
    }
    return out
