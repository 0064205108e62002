"""Cost of a durable journal: delegate and collect with `journal=True` against no journal.

Since issue 12 a task's first row is committed before `delegate` returns and its terminal row
before its result is visible (SQLite WAL, synchronous=NORMAL: a commit survives a killed
process, not a power cut). Measured against a fake model in its own process: `delegate()`
latency, one task at a time end to end (delegate + collect), and throughput of a batch.
Run this file's `run()` on an older tree for the "before" of batched rows.

Since issue 17 the journal also keeps each task's conversation at every completed step (for
`Session.resume`), batched with progress on the writer thread: tasks of `TURNS` tool turns
each, with the conversation kept against the same journal without it; and the writer alone,
appending each step's new messages against rewriting the whole transcript at every step.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ._common import Row, ServerProcess, pct, session

SIZES = {
    "full": {"tasks": 400, "batch": 200, "talks": 60},
    "quick": {"tasks": 150, "batch": 100, "talks": 30},
    "tiny": {"tasks": 5, "batch": 5, "talks": 3},
}
FIGURE = "journal"
TURNS = 10  # tool turns per task in the conversation figures
STEPS = 30  # turns per task when the writer is measured alone
ROUNDS = 3


def run(tasks: int, batch: int, talks: int) -> list[Row]:
    rows: list[Row] = []
    with ServerProcess() as server:
        plain = _measure(server.base_url, tasks, batch, journal=False)
        kept = _measure(server.base_url, tasks, batch, journal=True)
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with ServerProcess(tool_rounds=TURNS) as server:
        for _ in range(ROUNDS):  # alternated, medians kept: the machine's load drifts
            for keep in (False, True):
                runs[keep].append(_talks(server.base_url, talks, keep=keep))
    without, talked = _medians(runs[False]), _medians(runs[True])
    for label, unit, key, note in (
        ("delegate() returns, p50", "ms", "delegate_p50", f"{tasks} calls"),
        ("delegate() returns, p99", "ms", "delegate_p99", f"{tasks} calls"),
        ("delegate + collect, one task at a time, p50", "ms", "e2e_p50", f"{tasks} tasks"),
        ("delegate + collect, one task at a time, p99", "ms", "e2e_p99", f"{tasks} tasks"),
        (f"throughput, {batch} tasks at once", "tasks/s", "throughput", "max_concurrent=8"),
    ):
        rows.append(Row(FIGURE, f"{label}, durable journal", kept[key], unit, plain[key],
                        "no journal", note=note))
    note = f"{TURNS} tool turns a task, journal on in both; median of {ROUNDS} alternated runs"
    for label, unit, key in (
        ("delegate + collect, one task at a time, p50", "ms", "e2e_p50"),
        ("delegate + collect, one task at a time, p99", "ms", "e2e_p99"),
        (f"throughput, {talks} tasks at once", "tasks/s", "throughput"),
    ):
        rows.append(Row(FIGURE, f"{label}, conversation kept", talked[key], unit, without[key],
                        "journal without conversation", note=note))
    appended, whole = _writer(talks, append=True), _writer(talks, append=False)
    note = f"{talks} tasks x {STEPS} turns (an assistant message and a 1 kB tool result each)"
    for label, unit, key in (("per step, the loop thread's cost", "µs", "call_us"),
                             ("steps written per second by the writer", "steps/s", "rate"),
                             ("bytes handed to SQLite per task", "kB", "kb")):
        rows.append(Row(FIGURE, f"{label}, appending each step", appended[key], unit,
                        whole[key], "whole transcript each step", note=note))
    return rows


def _talks(base_url: str, tasks: int, *, keep: bool) -> dict[str, float]:
    """Tasks of TURNS tool turns against a journal that keeps conversations or not."""
    def lookup() -> str:
        """Look something up."""
        return "result " * 40

    with tempfile.TemporaryDirectory() as folder, \
            session(base_url, workspace=folder, journal=True) as s:
        if not keep:  # the same journal, its conversation rows switched off
            s.journal.kept = lambda *args, **kwargs: None  # type: ignore[method-assign]
        s.delegate("warm up", tools=[lookup]).collect(60)
        e2e_ms = []
        for i in range(tasks):
            t0 = time.perf_counter()
            s.delegate(f"one {i}", tools=[lookup]).collect(60)
            e2e_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        started = [s.delegate(f"many {i}", tools=[lookup]) for i in range(tasks)]
        for task in started:
            task.collect(120)
        elapsed = time.perf_counter() - t0  # results are durable; steps may lag by ≤ 0.2 s
    return {"e2e_p50": pct(e2e_ms, 50), "e2e_p99": pct(e2e_ms, 99),
            "throughput": tasks / elapsed}


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: pct([r[key] for r in runs], 50) for key in runs[0]}


def _writer(tasks: int, *, append: bool) -> dict[str, float]:
    """The journal's writer alone: each task's STEPS turns, as the loop hands them over."""
    from hermes_jupyter.engine.journal import Journal

    turn = [{"role": "assistant", "content": "thinking " * 30,
             "tool_calls": [{"id": "c", "type": "function",
                             "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "r" * 1000}]
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal(Path(folder) / "tasks.sqlite")
        facts = [SimpleNamespace(id=f"t{i}") for i in range(tasks)]
        talks: list[list[dict[str, Any]]] = [[] for _ in facts]
        handed = 0
        call_s = 0.0
        t0 = time.perf_counter()
        for _ in range(STEPS):
            for task, talk in zip(facts, talks, strict=True):
                start = len(talk) if append else 0
                talk += turn
                t1 = time.perf_counter()
                journal.kept(task, start, talk[start:])  # type: ignore[arg-type]
                call_s += time.perf_counter() - t1
                handed += len(json.dumps(talk[start:]))
        journal.flush(120)
        elapsed = time.perf_counter() - t0
        journal.close()
    steps = tasks * STEPS
    return {"call_us": call_s / steps * 1e6, "rate": steps / elapsed,
            "kb": handed / tasks / 1000}


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
