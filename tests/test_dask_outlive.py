"""Tasks that outlive their kernel on a Dask cluster: detach, re-attach from a new session on
the same journal and cluster, detach_timeout, close, and the state kept on the scheduler. The
shared LocalCluster of two worker processes (conftest `client`) runs them; FakeLLM serves on
loopback in this process."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.models import ExitReason, TaskState
from hermes_jupyter.engine.journal import Journal
from hermes_jupyter.testing import FakeLLM, Reply

from . import dask_fixtures
from .conftest import SECRET
from .dask_fixtures import cluster_session
from .replays import wait_until
from .test_dask import _scheduler_dump

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.dask
model_server, llm = dask_fixtures.model_server, dask_fixtures.llm  # the shared fixtures


def _session(client: object, llm: FakeLLM, workspace: object, **options: object) -> hj.Session:
    return cluster_session(client, llm, workspace, journal=True, **options)


def _held(client: object) -> list[str]:
    return [str(n) for n in client.list_datasets() if str(n).startswith("hermes-")]  # type: ignore[attr-defined]


def test_a_detached_task_goes_on_and_a_new_session_steers_and_collects_it(client, llm,
                                                                          tmp_path):
    gate = threading.Event()
    llm.on(lambda r: gate.wait(20) and len(r.messages) == 2, Reply("first turn"))
    llm.on(lambda r: "[steer from parent] cite sources" in str(r.messages), Reply("steered"))
    first = _session(client, llm, tmp_path)
    task = first.delegate("a long job", name="job")
    llm.wait_for_requests(1)
    running_by = time.time()  # the task started on its worker before this
    assert first.detach() == 1
    assert task.result is not None and task.result.exit_reason is ExitReason.DETACHED
    assert first.check(task).error.startswith("detached: it goes on on the cluster")
    (row,) = Journal(tmp_path / ".hermes" / "tasks.sqlite").records()  # opening it: no orphan
    assert row.state is TaskState.RUNNING and '"kind": "dask"' in (row.owner or "")

    with _session(client, llm, tmp_path) as second:
        (again,) = second.tasks()
        assert (again.id, again.name, again.state) == ("t1", "job", TaskState.RUNNING)
        assert [s.id for s in second.list_tasks()] == ["t1"]
        assert second.check("job").api_calls == 1  # what happened before, replayed
        now = time.time()  # its time goes on from its start, not from the re-attach
        assert second.check("job").elapsed_s >= round(now - running_by, 3)
        second.steer("job", "cite sources")
        gate.set()
        result = second.collect("job", timeout=10)
        assert result.summary == "steered" and result.usage.api_calls == 2
        assert second.delegate("a new one").id == "t2"  # ids go on after the adopted ones
        assert second.history() == []  # live here, so not among earlier kernels' tasks
        (kept,) = [r for r in second.journal.records() if r.id == "t1"]
        assert kept.state is TaskState.SUCCEEDED and kept.summary == "steered"
    assert _held(client) == []  # closing let go of everything on the scheduler


def test_a_reattached_task_can_be_cancelled_and_close_cancels_cluster_tasks(client, llm,
                                                                          tmp_path):
    llm.default = Reply("word " * 5000, chunk_size=5, delay=0.01)
    first = _session(client, llm, tmp_path)
    first.delegate("stream a lot", name="long")
    llm.wait_for_chunks(3)
    first.detach()
    second = _session(client, llm, tmp_path)
    assert second.task("long").cancel() is True
    result = second.collect("long", timeout=5)
    assert result.exit_reason is ExitReason.CANCELLED and result.summary.startswith("word")
    llm.wait_idle(5)  # the worker's stream closed: the cancel reached it

    other = second.delegate("stream again", name="other")
    llm.wait_for_chunks(3)
    second.close()
    assert other.result is not None and other.result.state is TaskState.CANCELLED
    llm.wait_idle(5)  # close cancelled it on its worker too
    with _session(client, llm, tmp_path) as third:
        assert third.tasks() == []  # nothing left to re-attach to
        records = {r.name: r for r in third.history()}
        assert records["long"].state is TaskState.CANCELLED
        assert records["other"].state is TaskState.CANCELLED


def test_an_unattended_task_is_cancelled_after_detach_timeout(client, llm, tmp_path):
    llm.default = Reply("word " * 5000, chunk_size=5, delay=0.01)
    first = _session(client, llm, tmp_path, detach_timeout=0.5)
    first.delegate("stream past the lease", name="lease")
    llm.wait_for_chunks(3)
    first.detach()
    llm.wait_idle(15)  # no one re-attached: the worker cancelled it
    with _session(client, llm, tmp_path) as second:
        result = second.collect("lease", timeout=5)
        assert result.exit_reason is ExitReason.CANCELLED and result.truncated
        assert result.error is not None and "within detach_timeout" in result.error
        assert "\n" not in result.error


def test_a_session_opened_beside_a_live_one_leaves_its_tasks_alone(client, llm, tmp_path):
    gate = threading.Event()
    llm.on(lambda r: gate.wait(20) and True, Reply("still mine"))
    with _session(client, llm, tmp_path) as first:
        task = first.delegate("followed by a live kernel")
        llm.wait_for_requests(1)
        with _session(client, llm, tmp_path) as beside:  # another kernel, same folder
            assert beside.tasks() == []
            assert [r.state for r in beside.history()] == [TaskState.RUNNING]
        gate.set()
        assert task.collect(10).summary == "still mine"


def test_detach_needs_a_cluster_and_a_journal(llm, tmp_path):
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET],
                    workspace=tmp_path, journal=True) as session:
        with pytest.raises(hj.ConfigurationError, match=r"detach\(\) needs Session\(cluster"):
            session.detach()
        session.delegate("still usable")  # the refused call changed nothing


def test_the_state_is_kept_on_the_scheduler_without_a_key_and_outlives_its_worker(
        client, llm, tmp_path):
    # Last in the module: it kills a worker process (its nanny starts a new one).
    gate = threading.Event()
    llm.on(lambda r: gate.wait(20) and True, Reply(f"done; the key was {SECRET}"))
    first = _session(client, llm, tmp_path)
    first.delegate("finish while detached", name="kept")
    llm.wait_for_requests(1)
    (engine,) = [e for e in first._backend.engines if e.running]
    first.detach()
    gate.set()
    name = f"hermes-{first._backend.token}-{engine.index}-tasks"

    def ended_on_scheduler() -> bool:
        records = client.get_dataset(name, default={})
        return any(op[0] == "end" for _facts, ops in records.values() for op in ops)

    wait_until(ended_on_scheduler, 15, "the ended task on the scheduler")
    held = client.run_on_scheduler(_scheduler_dump)
    assert name.encode() in held and b"finish while detached" in held
    assert SECRET.encode() not in held  # the answer echoed the key: kept masked
    os.kill(engine.pid, signal.SIGKILL)
    wait_until(lambda: engine.address not in client.scheduler_info()["workers"], 30,
               "the scheduler to see the worker gone")
    with _session(client, llm, tmp_path) as second:
        result = second.collect("kept", timeout=5)
        assert result.state is TaskState.SUCCEEDED
        assert result.summary == "done; the key was ***"


@pytest.mark.kernel
def test_a_kernel_restart_leaves_the_task_running_and_the_new_kernel_collects_it(
        client, llm, tmp_path):
    from jupyter_client.manager import start_new_kernel

    from .test_kernel import ENV, ROOT, execute, text

    gate = threading.Event()
    llm.on(lambda r: gate.wait(60) and True, Reply("answered after the restart"))
    setup = ("%load_ext hermes_jupyter\n"
             f"%config HermesJupyter.base_url = '{llm.base_url}'\n"
             f"%config HermesJupyter.api_keys = ['{SECRET}']\n"
             "%config HermesJupyter.model = 'worker-model'\n"
             f"%config HermesJupyter.cluster = '{client.scheduler.address}'\n"
             "%config HermesJupyter.journal = True\n")
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60, cwd=str(tmp_path),
                              env=env)
    try:
        reply, outputs = execute(kc, setup + "t = %delegate -n survivor outlive this kernel",
                                 timeout=60)
        assert reply["content"]["status"] == "ok", outputs
        llm.wait_for_requests(1)  # it runs on a worker, waiting on the model
        pid = execute(kc, "import os; print(os.getpid())")[1]
        km.restart_kernel(now=True)  # the kernel is killed: no close, no detach
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "import os; print(os.getpid())")[1] != pid
        reply, outputs = execute(kc, setup + "%list_tasks", timeout=60)
        assert reply["content"]["status"] == "ok", outputs
        listed = text(outputs)
        assert "survivor" in listed and "running" in listed
        gate.set()
        reply, outputs = execute(kc, "r = %collect_task survivor\nprint(r.summary)",
                                 timeout=60)
        assert "answered after the restart" in text(outputs, "stdout"), outputs
    finally:
        gate.set()
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    (row,) = Journal(tmp_path / ".hermes" / "tasks.sqlite").records()
    assert row.state is TaskState.SUCCEEDED and row.summary == "answered after the restart"
