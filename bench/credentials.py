"""Credential pool: 64 tasks over 3 keys, 2 of them answering 429 (Retry-After: 30).

Every task must succeed, and the wall time must stay close to the same work on one good key
alone: a rate-limited key costs one quick refused request, then cools down for everyone.
The server runs in its own process (`bench._server`, which adds the key rules).
"""

from __future__ import annotations

import statistics
import time

from ._common import KEY, Row, ServerProcess, session

SIZES = {
    "full": {"tasks": 64, "rounds": 2, "latency": 0.1, "repeats": 5},
    "quick": {"tasks": 64, "rounds": 2, "latency": 0.1, "repeats": 1},
    "tiny": {"tasks": 3, "rounds": 1, "latency": 0.0, "repeats": 1},
}
GOAL = 1.2


def lookup(query: str = "") -> str:
    """Look something up."""
    return "result"


def run(tasks: int, rounds: int, latency: float, repeats: int) -> list[Row]:
    good, bad = f"{KEY}-good", [f"{KEY}-limited-1", f"{KEY}-limited-2"]
    pooled, alone, failures, refused = [], [], 0, 0
    with ServerProcess(latency=latency, chunks=20, tool_rounds=rounds,
                       rate_limited=bad) as server:
        for _ in range(repeats):
            alone.append(_wall(server.base_url, [good], tasks)[0])
            wall, failed, cooled = _wall(server.base_url, [bad[0], good, bad[1]], tasks)
            pooled.append(wall)
            failures += failed
            refused += cooled
    value, baseline = statistics.median(pooled), statistics.median(alone)
    return [
        Row("credentials", f"{tasks} tasks, 2 of 3 keys rate-limited: wall", value, "s",
            baseline, "one good key alone", goal=f"≤ {GOAL:g}x", met=value / baseline <= GOAL,
            note=f"{rounds} tool rounds, {latency * 1000:g} ms latency; median of {repeats}; "
                 f"{refused / repeats:.0f} requests refused (429) per run"),
        Row("credentials", "tasks failed", failures, "tasks", goal="0",
            met=failures == 0, note=f"over {repeats} runs of {tasks}"),
    ]


def _wall(base_url: str, keys: list[str], n: int) -> tuple[float, int, int]:
    """Wall time, failed tasks, and how many 429s the pool saw."""
    cooled: list[object] = []
    with session(base_url, api_keys=keys, max_concurrent=n) as s:
        s.subscribe(lambda e: cooled.append(e) if e.kind == "key_cooldown" else None)
        t0 = time.perf_counter()
        tasks = [s.delegate(f"pooled {i}", tools=[lookup]) for i in range(n)]
        results = [t.collect(120) for t in tasks]
        wall = time.perf_counter() - t0
    return wall, sum(r.state.value != "succeeded" for r in results), len(cooled)
