"""Parallel wall time: N tasks x 5 tool rounds x 100 ms model latency take the time of one.

Each task is a real agent loop: 5 model calls that each ask for a (sync) tool, then a final
streamed answer; 6 requests of 100 ms each. The server runs in its own process. Baselines:
one task alone on the same engine, and `rawclient` making the same requests at the same N.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from ._common import Row, ServerProcess, cpu_seconds, session
from .rawclient import run_agents

SIZES = {
    "full": {"ns": (1, 8, 64, 256), "repeats": 5, "rounds": 5, "latency": 0.1},
    "quick": {"ns": (1, 8, 64), "repeats": 1, "rounds": 5, "latency": 0.1},
    "tiny": {"ns": (1, 2), "repeats": 1, "rounds": 1, "latency": 0.0},
}
GOAL_N = 64


def lookup(query: str = "") -> str:
    """Look something up."""
    return "result"


def run(ns: tuple[int, ...], repeats: int, rounds: int, latency: float) -> list[Row]:
    engine: dict[int, float] = {}
    raw: dict[int, float] = {}
    cpu: dict[int, tuple[float, float]] = {}  # CPU ms per request: engine, raw
    with ServerProcess(latency=latency, chunks=20, tool_rounds=rounds) as server:
        for n in ns:
            runs = [_engine_wall(server.base_url, n) for _ in range(repeats)]
            raws = [_raw_wall(server.base_url, n) for _ in range(repeats)]
            engine[n] = statistics.median(w for w, _ in runs)
            raw[n] = statistics.median(w for w, _ in raws)
            requests = n * (rounds + 1)
            cpu[n] = (statistics.median(c for _, c in runs) / requests * 1000,
                      statistics.median(c for _, c in raws) / requests * 1000)
    one = engine[min(ns)]
    ideal = (rounds + 1) * latency
    rows = []
    for n in ns:
        at_goal = n == GOAL_N
        rows.append(Row(
            "parallel", f"N={n}, wall vs one task", engine[n], "s", one, f"N={min(ns)} alone",
            goal="≤ 1.10x" if at_goal else "—",
            met=engine[n] / one <= 1.10 if at_goal else None,
            note=f"{rounds + 1} requests per task, ideal {ideal:.2f} s; median of {repeats}",
        ))
        rows.append(Row(
            "parallel", f"N={n}, wall vs raw asyncio client", engine[n], "s", raw[n],
            f"raw client, N={n}",
            goal="≤ 1.25x" if at_goal else "—",
            met=engine[n] / raw[n] <= 1.25 if at_goal else None,
        ))
        rows.append(Row(
            "parallel", f"N={n}, CPU per request", cpu[n][0], "ms", cpu[n][1],
            "raw client", note="this process, all threads; steadier than wall on a busy machine",
        ))
    return rows


def _engine_wall(base_url: str, n: int) -> tuple[float, float]:
    """Wall and CPU seconds for `n` tasks on a fresh session (after one warm-up task)."""
    with session(base_url, max_concurrent=n) as s:
        s.delegate("warm up", tools=[lookup]).collect(60)
        c0, t0 = cpu_seconds(), time.perf_counter()
        tasks = [s.delegate(f"parallel task {i}", tools=[lookup]) for i in range(n)]
        results = [t.collect(300) for t in tasks]
        wall, used = time.perf_counter() - t0, cpu_seconds() - c0
    failed = [r for r in results if r.state.value != "succeeded"]
    if failed:
        raise RuntimeError(f"bench: {len(failed)} parallel tasks failed: {failed[0].error}")
    return wall, used


def _raw_wall(base_url: str, n: int) -> tuple[float, float]:
    c0, t0 = cpu_seconds(), time.perf_counter()
    asyncio.run(run_agents(base_url, n))
    return time.perf_counter() - t0, cpu_seconds() - c0
