"""Memory kept per finished task, and `list_tasks` / `check` times with 1,000 tasks.

Each task is a small real run (one tool round, a 50-chunk answer) against an in-process fake
model. Memory is what `tracemalloc` still holds after the tasks ended and `gc.collect()`,
divided by the task count; RSS growth is reported alongside. Then the session forgets them
(`forget(finished=True)`): what tracemalloc still holds of a second round run and forgotten
the same way, and how RSS moves, show that a session's memory stays bounded.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from typing import Any

import psutil

from hermes_jupyter.testing import FakeLLM, ScriptedAgent

from ._common import Row, session, tail_rows

SIZES = {
    "full": {"tasks": 1000, "samples": 300},
    "quick": {"tasks": 1000, "samples": 100},
    "tiny": {"tasks": 10, "samples": 5},
}
GOAL_KB = 50.0
GOAL_MS = 10.0


def lookup(query: str = "") -> str:
    """Look something up."""
    return "result " * 20


def run(tasks: int, samples: int, batch: int = 50) -> list[Row]:
    proc = psutil.Process()
    with FakeLLM() as llm, session(llm.base_url, max_concurrent=batch) as s:
        llm.responder = ScriptedAgent(rounds=1, chunks=50)
        for _ in range(2):
            s.delegate("warm up", tools=[lookup]).collect(60)
        gc.collect()
        rss0 = proc.memory_info().rss
        tracemalloc.start()
        for start in range(0, tasks, batch):
            started = [s.delegate(f"remember {i}", tools=[lookup])
                       for i in range(start, min(tasks, start + batch))]
            for t in started:
                t.collect(60)
        llm.reset()  # the fake model's own record of requests is not the engine's memory
        gc.collect()
        traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = proc.memory_info().rss - rss0
        every = s.tasks()
        lists = _times(s.list_tasks, samples)
        checks = _times(lambda: s.check(random.choice(every)), samples * 10)
        n = len(every) - 2
        every.clear()
        forget_rows = _forget_rows(s, llm, proc, tasks, batch, rss0, n)
    per_task_kb = traced / n / 1024
    rows = [
        Row("memory", "memory per finished task (tracemalloc)", per_task_kb, "KB",
            goal=f"≤ {GOAL_KB:g} KB", met=per_task_kb <= GOAL_KB,
            note=f"{n} tasks, 1 tool round + 50-chunk answer each"),
        Row("memory", "RSS growth per finished task", rss / n / 1024, "KB",
            note="includes allocator slack; informational"),
    ]
    for label, data in ((f"list_tasks() at {n} tasks", lists),
                        (f"check(task) at {n} tasks", checks)):
        rows += tail_rows("memory", label, data, GOAL_MS, goal=f"≤ {GOAL_MS:g} ms",
                          note=f"{len(data)} calls")
    return rows + forget_rows


def _forget_rows(s: Any, llm: FakeLLM, proc: psutil.Process, tasks: int, batch: int,
                 rss0: int, n: int) -> list[Row]:
    """Forget the first round; run and forget a second (RSS) and a third (tracemalloc)."""
    s.forget(finished=True)
    gc.collect()
    rss_forgot = proc.memory_info().rss
    _round(s, tasks, batch)
    llm.reset()
    s.forget(finished=True)
    gc.collect()
    rss_second = proc.memory_info().rss
    tracemalloc.start()
    _round(s, tasks, batch)
    llm.reset()
    s.forget(finished=True)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held = traced / tasks / 1024
    return [
        Row("memory", "memory held per task after forget(finished=True) (tracemalloc)", held,
            "KB", goal="≤ 1 KB", met=held <= 1.0,
            note=f"a third round of {tasks} tasks, run then forgotten"),
        Row("memory", "RSS above the start after forgetting the first round, per task",
            (rss_forgot - rss0) / n / 1024, "KB",
            note="freed memory stays with the allocator for reuse; informational"),
        Row("memory", "RSS growth per task of a second round, forgotten", (rss_second -
            rss_forgot) / tasks / 1024, "KB", note="reuses what the first round freed"),
    ]


def _round(s: Any, tasks: int, batch: int) -> None:
    for start in range(0, tasks, batch):
        started = [s.delegate(f"again {i}", tools=[lookup])
                   for i in range(start, min(tasks, start + batch))]
        for t in started:
            t.collect(60)


def _times(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out
