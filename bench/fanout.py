"""Fan-out: `Session.map` over 1,000 items at max_concurrent=64, against the raw client.

Each item is one task with one tool round (two requests) against the loopback model in its own
process. Baseline: `rawclient` making the same requests with at most 64 agents at once.
Memory per item: RSS growth while the group and its results are held, per item.
"""

from __future__ import annotations

import asyncio
import gc
import time

import psutil

from ._common import Row, ServerProcess, session
from .rawclient import run_agents_limited

SIZES = {
    "full": {"items": 1000, "limit": 64, "latency": 0.05},
    "quick": {"items": 1000, "limit": 64, "latency": 0.05},
    "tiny": {"items": 8, "limit": 4, "latency": 0.0},
}
GOAL_RATIO = 1.25


def lookup(query: str = "") -> str:
    """Look something up."""
    return "result"


def run(items: int, limit: int, latency: float) -> list[Row]:
    proc = psutil.Process()
    with ServerProcess(latency=latency, chunks=8, tool_rounds=1) as server:
        t0 = time.perf_counter()
        done = asyncio.run(run_agents_limited(server.base_url, items, limit))
        raw = time.perf_counter() - t0
        assert done == items
        with session(server.base_url, max_concurrent=limit) as s:
            s.delegate("warm up", tools=[lookup]).collect(60)
            gc.collect()
            rss0 = proc.memory_info().rss
            t0 = time.perf_counter()
            group = s.map("item {item}", list(range(items)), tools=[lookup])
            results = group.collect(600)
            wall = time.perf_counter() - t0
            gc.collect()
            per_item = (proc.memory_info().rss - rss0) / items / 1024
            failed = [r for r in results if not r.ok]
            if failed:
                raise RuntimeError(f"bench: {len(failed)} fan-out tasks failed: "
                                   f"{failed[0].error}")
    return [
        Row("fanout", f"{items} items at max_concurrent={limit}, wall vs raw client", wall, "s",
            raw, f"raw asyncio client, ≤ {limit} at once", goal=f"≤ {GOAL_RATIO:.2f}x",
            met=wall / raw <= GOAL_RATIO, note=f"2 requests per item, {latency * 1000:.0f} ms "
            "model latency each"),
        Row("fanout", "RSS growth per item (group and results held)", per_item, "KB",
            note="results keep transcripts and output tails; forget() releases them"),
    ]
