"""`delegate` latency: the time the caller's thread spends in `Session.delegate`.

Idle, and while `streams` tasks stream at ~100 chunks/s each from a server in its own process.
Samples are spaced a few milliseconds apart so each one pays its own wake-up of the engine.
Baseline: what delegate replaces, one blocking completion (100 ms model latency) with `openai`.
"""

from __future__ import annotations

import time
from typing import Any

import openai

from ._common import KEY, Row, ServerProcess, pct, session, tail_rows, wait_until

SIZES = {
    "full": {"samples": 400, "streams": 64, "baseline_calls": 20},
    "quick": {"samples": 150, "streams": 64, "baseline_calls": 5},
    "tiny": {"samples": 5, "streams": 2, "baseline_calls": 1},
}
GOAL_MS = 5.0


def run(samples: int, streams: int, baseline_calls: int, spacing: float = 0.004) -> list[Row]:
    baseline = _blocking_completion_ms(baseline_calls)
    # 3000 chunks at 10 ms: the load outlasts the measurement by far; cancelled after it.
    with ServerProcess(chunks=3000, chunk_delay=0.01) as server, session(
        server.base_url, max_concurrent=streams
    ) as s:
        s.delegate("warm up").cancel()  # queued: settles at once
        _warm(s)
        idle = _sample(s, samples, spacing)
        load = [s.delegate(f"stream {i}") for i in range(streams)]
        wait_until(lambda: all(t.check().recent_output for t in load), 30, "streams to start")
        busy = _sample(s, samples, spacing)
        s.cancel_all()
    rows = []
    for label, data in (("idle", idle), (f"while {streams} tasks stream", busy)):
        rows += tail_rows("delegate", label, data, GOAL_MS, goal=f"p99 ≤ {GOAL_MS:g} ms",
                          note=f"{len(data)} samples, max {max(data):.2f} ms",
                          baseline=baseline, baseline_label="one blocking completion (median)")
    return rows


def _sample(s: Any, n: int, spacing: float) -> list[float]:
    """Milliseconds per `delegate` call.

    Each sampled task is cancelled once measured and waited for, so the engine is back at rest
    before the next sample (under load, they wait in the queue behind the streams).
    """
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        task = s.delegate(f"sample {i}")
        out.append((time.perf_counter() - t0) * 1000)
        task.cancel()
        task.collect(10)
        time.sleep(spacing)
    return out


def _blocking_completion_ms(calls: int) -> float:
    with ServerProcess(latency=0.1, chunks=20) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
        times = []
        for _ in range(calls + 1):  # the first call opens the connection: not counted
            t0 = time.perf_counter()
            client.chat.completions.create(
                model="bench-model", messages=[{"role": "user", "content": "hi"}]
            )
            times.append((time.perf_counter() - t0) * 1000)
        client.close()
    return pct(times[1:], 50)


def _warm(s: Any) -> None:
    """One task streamed to the end: the client, its connection and imports exist after."""
    task = s.delegate("warm up, streamed")
    wait_until(lambda: bool(task.check().recent_output), 30, "the warm-up stream")
    task.cancel()
    task.collect(10)
