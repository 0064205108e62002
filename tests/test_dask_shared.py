"""What the workers of one session share through the kernel: key cooldowns (a 429 seen on one
worker stops the others using that key), and approvals (decided in the kernel, waited for on
the worker). The shared LocalCluster of two worker processes (conftest `client`) runs them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.errors import HermesError
from hermes_jupyter.core.models import Event, TaskState
from hermes_jupyter.testing import Fail, Reply, ToolCall

from . import dask_fixtures
from .conftest import SECRET
from .dask_fixtures import cluster_session as _session

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.dask
model_server, llm = dask_fixtures.model_server, dask_fixtures.llm  # the shared fixtures


def test_a_429_on_one_worker_stops_the_other_using_that_key(client, llm, tmp_path):
    limited, spare = SECRET + "-one", SECRET + "-two"
    gate = threading.Event()
    llm.on(lambda r: "job X" in r.first_user_text and (len(r.messages) > 2 or gate.wait(20)),
           Reply(tool_calls=[ToolCall("noop", {})]), Reply(tool_calls=[ToolCall("noop", {})]),
           Reply("x done"))
    llm.on("job Y", Reply("y done"))
    cooled: list[Event] = []
    with _session(client, llm, tmp_path, api_keys=[limited, spare]) as session:
        session.subscribe(lambda e: cooled.append(e) if e.kind == "key_cooldown" else None)
        x = session.delegate("job X")  # its worker's pool: the limited key first, then both
        (first,) = llm.wait_for_requests(1)
        assert first.api_key == limited
        llm.key_rules[limited] = Fail(429, retry_after=30)
        y = session.delegate("job Y")  # the other worker (the first one is busy with X)
        assert y.collect(10).summary == "y done"  # after a 429 on the limited key there
        gate.set()
        assert x.collect(10).summary == "x done"  # never sent the limited key again
        assert len(session._backend.engines) == 2
    keys = [r.api_key for r in llm.requests]
    assert keys.count(limited) == 2, keys  # X's first call (before the limit) and Y's 429
    assert keys.count(spare) == 3
    assert len(cooled) == 1 and all(limited not in repr(e.data) for e in cooled)


def _asked(session: hj.Session) -> threading.Semaphore:
    asked = threading.Semaphore(0)
    session.subscribe(lambda e: asked.release() if e.kind == "approval_requested" else None)
    return asked


def test_a_call_on_a_worker_waits_for_the_kernels_approval_and_runs_there(client, llm,
                                                                          tmp_path):
    llm.script(Reply(tool_calls=[ToolCall("run_shell", {"command": "touch made"})]),
               Reply("made it"))
    with _session(client, llm, tmp_path) as session:
        asked = _asked(session)
        task = session.delegate("make a file", toolsets=["shell"])
        assert asked.acquire(timeout=10)
        assert task.state is TaskState.AWAITING_APPROVAL
        (pending,) = task.check().pending_approvals
        assert pending.tool == "run_shell" and "touch made" in pending.arguments
        assert not (tmp_path / "made").exists()
        decided = session.approve(task)
        assert decided.call_id == pending.call_id
        assert task.state is TaskState.RUNNING  # at once, not at the next drain
        result = task.collect(10)
        assert result.summary == "made it" and (tmp_path / "made").exists()
        (entry,) = result.tool_trace
        assert entry.ok and entry.name == "run_shell"
        with pytest.raises(HermesError, match="has no tool call awaiting approval"):
            session.approve(task)


def test_a_call_denied_in_the_kernel_is_not_run_on_the_worker(client, llm, tmp_path):
    llm.script(Reply(tool_calls=[ToolCall("run_shell", {"command": "touch made"})]),
               Reply("did without"))
    with _session(client, llm, tmp_path) as session:
        asked = _asked(session)
        task = session.delegate("make a file", toolsets=["shell"])
        assert asked.acquire(timeout=10)
        session.deny(task, reason="not in this folder")
        result = task.collect(10)
    assert result.summary == "did without" and not (tmp_path / "made").exists()
    (tool_message,) = [m for m in llm.requests[1].messages if m["role"] == "tool"]
    assert "a person denied this call: not in this folder" in tool_message["content"]


def test_a_remembered_pattern_approves_the_waiting_call_on_the_other_worker(client, llm,
                                                                            tmp_path):
    for name in ("one", "two"):
        llm.on(name, Reply(tool_calls=[ToolCall("run_shell", {"command": f"touch {name}"})]),
               Reply(f"{name} made"))
    with _session(client, llm, tmp_path) as session:
        asked = _asked(session)
        first = session.delegate("one", toolsets=["shell"])
        second = session.delegate("two", toolsets=["shell"])  # the other worker
        assert asked.acquire(timeout=10) and asked.acquire(timeout=10)
        engines = {session._backend._live[t.id].engine.address for t in (first, second)}
        assert len(engines) == 2
        session.approve(first, remember="touch *")
        assert first.collect(10).summary == "one made"
        assert second.collect(10).summary == "two made"
    assert (tmp_path / "one").exists() and (tmp_path / "two").exists()


def test_mcp_servers_start_on_the_worker_once_per_session_and_stop_with_it(client, llm,
                                                                          tmp_path):
    from .test_mcp import server_pids, stdio_server, wait_gone

    calls = [Reply(tool_calls=[ToolCall("mcp_tools__add", {"a": 2, "b": 40})]), Reply("42")]
    llm.script(*calls, *calls)
    with _session(client, llm, tmp_path, max_concurrent=1,
                  mcp_servers={"tools": stdio_server(tmp_path)}) as session:
        session.mcp_status(connect=True)  # started here too: the task's tools still travel
        here = server_pids(tmp_path)
        first = session.delegate("add", toolsets=["mcp:tools"]).collect(30)
        there = server_pids(tmp_path)
        second = session.delegate("add again", toolsets=["mcp:tools"]).collect(30)
        assert [first.summary, second.summary] == ["42", "42"], (first.error, second.error)
        assert [e.result_preview for e in (*first.tool_trace, *second.tool_trace)] == ["42"] * 2
        assert server_pids(tmp_path) == there  # one server per worker, shared by the tasks
        above = _ancestors(there[0])
        (ran,) = [e for e in session._backend.engines if e.pid in above]  # a worker started it
        assert there != here and os.getpid() not in above[:above.index(ran.pid)]
    assert all(wait_gone(pid) for pid in [*here, *there])  # closing stopped them everywhere


def _ancestors(pid: int) -> list[int]:
    """The process's parent, its parent's parent, ... up to pid 1."""
    out = []
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("PPid")))
        out.append(pid)
    return out
