"""Tasks on a Dask cluster: delegate, start and cancel latency against the in-process engine.

A `LocalCluster` of 2 worker processes (2 threads each). `delegate`: the caller's time in
`Session.delegate`. `start`: from `delegate` to the task's first request at the model server
(the worker has the task and calls the model). `cancel`: from `cancel()` mid-stream to
`collect()` returning. The actor rows are what chose the design: starting a task by creating
an actor for it, against one call to the worker's engine actor. The kernel rows: a real
kernel's `1+1` round trip (as in `bench/kernel.py`) while 64 tasks stream 100 chunks/s each,
their loops in the kernel or on the cluster, and as a control the same load on the cluster
followed from this process (the machine as busy, the kernel not involved: on this 2-core box
the workers share the kernel's cores, which a real cluster does not). The 1,000 rows: that
many tasks at once (one model call each, 50 ms latency) on the 2 workers against one
in-process session, then that many streaming tasks on the cluster cancelled one by one.
"""

from __future__ import annotations

import time
from typing import Any

import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM, Reply

from ._common import KEY, Row, ServerProcess, cpu_seconds, pct, session, wait_until

SIZES = {
    "full": {"samples": 200, "streams": 64, "ticks": 300, "cells": 300, "tasks": 1000,
             "kernel_streams": 64},
    "quick": {"samples": 50, "streams": 32, "ticks": 150, "cells": 150, "tasks": 1000,
              "kernel_streams": 64},
    "tiny": {"samples": 3, "streams": 2, "ticks": 10, "cells": 3, "tasks": 6,
             "kernel_streams": 2},
}
DELEGATE_GOAL_MS = 5.0
CANCEL_GOAL_MS = 1000.0
CELL_GOAL = 1.2  # a trivial cell's p99 with the streams on the cluster, against idle


def run(samples: int, streams: int, ticks: int, cells: int, tasks: int,
        kernel_streams: int) -> list[Row]:
    """`kernel_streams`: the tasks streaming during the real kernel's rows (the goal's 64)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=2,
                      dashboard_address=None) as cluster, Client(cluster) as client, \
            FakeLLM() as llm:
        llm.default = Reply(text="x" * 20_000, chunk_size=4, delay=0.002)
        local = _measure(llm, samples)
        remote = _measure(llm, samples, cluster=client)
        actor = _actor_choice(client, samples)
        busy = _responsiveness(client, streams, ticks)
        kernel = _cells(client, kernel_streams, cells)
        many = _many(client, tasks)
    rows = [*kernel, *many]
    for what, goal in (("delegate", DELEGATE_GOAL_MS), ("start", None),
                       ("cancel", CANCEL_GOAL_MS)):
        for q in (50, 99):
            value = pct(remote[what], q)
            goal_here = goal if q == 99 else None
            rows.append(Row("dask", f"{what} on the cluster, p{q}", value, "ms",
                            pct(local[what], q), f"in-process p{q}",
                            goal=f"p99 ≤ {goal:g} ms" if goal_here else "—",
                            met=value <= goal_here if goal_here else None,
                            note=f"{samples} samples, max {max(remote[what]):.1f} ms"))
    idle = busy.pop("idle")
    for label, (data, cpu) in busy.items():
        rows.append(Row("dask", f"main-thread lateness, {streams} tasks streaming ({label}), "
                        "p99", pct(data, 99), "ms", pct(idle[0], 99), "idle p99",
                        note=f"{ticks} 10 ms sleeps + a trivial step; this process used "
                             f"{cpu:.0%} of a core meanwhile"))
    for label, data in actor.items():
        rows += [Row("dask", f"{label}, p{q}", pct(data, q), "ms", note=f"{len(data)} samples")
                 for q in (50, 99)]
    return rows


def _measure(llm: FakeLLM, samples: int, **options: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"delegate": [], "start": [], "cancel": []}
    with session(llm.base_url, max_concurrent=4, **options) as s:
        for i in range(samples):
            before = len(llm.requests)
            since = time.monotonic()  # the server stamps requests with this clock
            t0 = time.perf_counter()
            task = s.delegate(f"stream {i}")
            out["delegate"].append((time.perf_counter() - t0) * 1000)
            wait_until(lambda b=before: len(llm.requests) > b, 10, "the first request")
            out["start"].append((llm.requests[before].received_at - since) * 1000)
            wait_until(lambda t=task: bool(t.check().recent_output), 10, "streamed text")
            t1 = time.perf_counter()
            task.cancel()
            result = task.collect(10)
            out["cancel"].append((time.perf_counter() - t1) * 1000)
            if result.state is not hj.TaskState.CANCELLED:
                raise RuntimeError(f"bench: task ended {result.state} instead of cancelled")
        llm.wait_idle(10)
    return out


def _actor_choice(client: Any, samples: int) -> dict[str, list[float]]:
    """Start cost of the two designs: a new actor per task, or a call to a worker's engine."""
    from hermes_jupyter.engine.dask_backend import DaskBackend
    from hermes_jupyter.engine.dask_worker import EngineConfig, WorkerEngine

    config = EngineConfig(None, ".", "", None, None, 4)
    per_task = []
    for i in range(max(3, samples // 4)):
        t0 = time.perf_counter()
        future = client.submit(WorkerEngine, config, actor=True, pure=False,
                               key=f"bench-actor-{i}")
        future.result(30)
        per_task.append((time.perf_counter() - t0) * 1000)
        future.release()
    backend = DaskBackend(client, keys=[KEY], base_url=None, workspace=".", system_prompt="",
                          retry=None, prices=None, max_concurrent=4)
    engine = backend.engines[0]
    per_call = []
    try:
        for _ in range(samples):
            t0 = time.perf_counter()
            backend._call_sync(engine.address, engine.key, "drain")
            per_call.append((time.perf_counter() - t0) * 1000)
    finally:
        backend.close()
    return {"start by a new actor per task": per_task,
            "start by a call to the worker's engine actor": per_call}


def _responsiveness(client: Any, streams: int, ticks: int) -> dict[str, tuple[list[float], float]]:
    """How late a trivial step on the main thread (a notebook cell's stand-in) finishes,
    idle and while `streams` tasks stream ~100 chunks/s each from a server in its own
    process, with the loops in this process or on the cluster; and this process's CPU."""
    out = {"idle": _ticks(ticks)}
    with ServerProcess(chunks=3000, chunk_delay=0.01) as server:
        for label, options in (("in-process", {}), ("on the cluster", {"cluster": client})):
            with session(server.base_url, max_concurrent=streams, **options) as s:
                load = [s.delegate(f"stream {i}") for i in range(streams)]
                wait_until(lambda load=load: all(t.check().recent_output for t in load), 60,
                           "streams to start")
                out[label] = _ticks(ticks)
                s.cancel_all()
    return out


def _ticks(ticks: int) -> tuple[list[float], float]:
    samples = []
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    for _ in range(ticks):  # a 10 ms sleep, then a trivial step: how late does it finish?
        t0 = time.perf_counter()
        time.sleep(0.01)
        sum(range(1000))
        samples.append((time.perf_counter() - t0 - 0.01) * 1000)
    return samples, (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)


def _cells(client: Any, streams: int, cells: int) -> list[Row]:
    """A real kernel's `1+1` round trip: idle, with `streams` tasks streaming 100 chunks/s
    each in the kernel, and with the same tasks' loops on the cluster (idle and busy phases
    alternate twice, so drifting load hits each alike)."""
    from .kernel import STOP, _times, run_code, streaming_kernel

    idle: list[float] = []
    control = "on the cluster, run from another process (control)"
    busy: dict[str, list[float]] = {"in the kernel": [], "on the cluster": [], control: []}
    address = client.scheduler.address
    with streaming_kernel(streams, (100,)) as k:
        starts = {"in the kernel": k.start[100], "on the cluster": k.start[100].replace(
            "max_concurrent=", f"cluster={address!r}, max_concurrent=")}
        _times(k.client, 20)  # warm up
        for _ in range(2):
            idle += _times(k.client, max(1, cells // 2))
            for label, start in starts.items():
                run_code(k.client, start)
                busy[label] += _times(k.client, max(1, cells // 2))
                run_code(k.client, STOP)
            # The same load on the same workers, followed by this process, not the kernel:
            # what the machine's contention alone costs the kernel.
            with session(k.base_url[100], max_concurrent=streams, cluster=client) as s:
                load = [s.delegate(f"stream {i}") for i in range(streams)]
                wait_until(lambda load=load: all(t.check().recent_output for t in load), 60,
                           "streams to start")
                busy[control] += _times(k.client, max(1, cells // 2))
    rows = []
    for label, data in (("idle kernel", idle), *busy.items()):
        what = label if label == "idle kernel" else \
            f"{streams} tasks x 100 chunks/s, loops {label}"
        for q in (50, 99):
            row = Row("dask", f"`1+1` round trip in a real kernel, {what}, p{q}", pct(data, q),
                      "ms", pct(idle, q), "same kernel idle",
                      note=f"{len(data)} samples, max {max(data):.1f} ms")
            if q == 99 and label == "on the cluster":
                row.goal, row.met = f"p99 ≤ {CELL_GOAL:g}x idle", (row.ratio or 0) <= CELL_GOAL
            rows.append(row)
    return rows


def _many(client: Any, tasks: int) -> list[Row]:
    """`tasks` tasks at once (one 50 ms model call each): wall time and delegate times on the
    cluster against one in-process session; then `tasks` streaming tasks on the cluster
    cancelled one by one (cancel() to collect() returning)."""
    wall: dict[str, float] = {}
    delegate: dict[str, list[float]] = {}
    with ServerProcess(latency=0.05, chunks=8) as server:
        for label, options in (("in-process", {}), ("cluster", {"cluster": client})):
            with session(server.base_url, max_concurrent=tasks, **options) as s:
                s.delegate("warm up").collect(60)
                times, handles = [], []
                t0 = time.perf_counter()
                for i in range(tasks):
                    t1 = time.perf_counter()
                    handles.append(s.delegate(f"task {i}"))
                    times.append((time.perf_counter() - t1) * 1000)
                ended = [h.collect(600) for h in handles]
                wall[label], delegate[label] = time.perf_counter() - t0, times
                failed = [r for r in ended if not r.ok]
                if failed:
                    raise RuntimeError(f"bench: {len(failed)} of {tasks} tasks failed "
                                       f"({label}): {failed[0].error}")
    cancel = []
    with ServerProcess(chunks=1200, chunk_delay=0.5) as server, \
            session(server.base_url, max_concurrent=tasks, cluster=client) as s:
        handles = [s.delegate(f"stream {i}") for i in range(tasks)]
        wait_until(lambda: all(h.check().recent_output for h in handles), 300,
                   "every stream to start")
        for handle in handles:
            t0 = time.perf_counter()
            handle.cancel()
            if handle.collect(10).state is not hj.TaskState.CANCELLED:
                raise RuntimeError("bench: a cancelled task did not end cancelled")
            cancel.append((time.perf_counter() - t0) * 1000)
    note = f"{tasks} tasks, 2 worker processes"
    return [
        Row("dask", f"{tasks} tasks at once on the cluster, wall", wall["cluster"], "s",
            wall["in-process"], "one in-process session", note=note + ", 50 ms model latency"),
        *(Row("dask", f"delegate with {tasks} tasks on the cluster, p{q}",
              pct(delegate["cluster"], q), "ms", pct(delegate["in-process"], q),
              f"in-process p{q}", note=note) for q in (50, 99)),
        *(Row("dask", f"cancel with {tasks} tasks streaming on the cluster, p{q}",
              pct(cancel, q), "ms", goal=f"p99 ≤ {CANCEL_GOAL_MS:g} ms" if q == 99 else "—",
              met=pct(cancel, q) <= CANCEL_GOAL_MS if q == 99 else None,
              note=f"{note}, each cancelled while the others stream")
          for q in (50, 99)),
    ]
