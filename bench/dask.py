"""Tasks on a Dask cluster: delegate, start and cancel latency against the in-process engine.

A `LocalCluster` of 2 worker processes (2 threads each). `delegate`: the caller's time in
`Session.delegate`. `start`: from `delegate` to the task's first request at the model server
(the worker has the task and calls the model). `cancel`: from `cancel()` mid-stream to
`collect()` returning. The actor rows are what chose the design: starting a task by creating
an actor for it, against one call to the worker's engine actor.
"""

from __future__ import annotations

import time
from typing import Any

import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM, Reply

from ._common import KEY, Row, ServerProcess, cpu_seconds, pct, session, wait_until

SIZES = {
    "full": {"samples": 200, "streams": 64, "ticks": 300},
    "quick": {"samples": 50, "streams": 32, "ticks": 150},
    "tiny": {"samples": 3, "streams": 2, "ticks": 10},
}
DELEGATE_GOAL_MS = 5.0
CANCEL_GOAL_MS = 1000.0


def run(samples: int, streams: int, ticks: int) -> list[Row]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=2,
                      dashboard_address=None) as cluster, Client(cluster) as client, \
            FakeLLM() as llm:
        llm.default = Reply(text="x" * 20_000, chunk_size=4, delay=0.002)
        local = _measure(llm, samples)
        remote = _measure(llm, samples, cluster=client)
        actor = _actor_choice(client, samples)
        busy = _responsiveness(client, streams, ticks)
    rows = []
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
