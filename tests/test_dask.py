"""Sessions on a Dask cluster: a real LocalCluster of two worker processes runs the agent
loops and tools; the kernel (this process) keeps the registry. FakeLLM serves on loopback in
this process, which the worker processes reach like any model server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.errors import HermesError
from hermes_jupyter.core.models import Event, ExitReason, TaskState
from hermes_jupyter.engine.journal import Journal
from hermes_jupyter.testing import Fail, FakeLLM, Reply, ToolCall

from . import dask_fixtures
from .conftest import FAST_RETRY, SECRET
from .dask_fixtures import cluster_session as _session

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.dask
model_server, llm = dask_fixtures.model_server, dask_fixtures.llm  # the shared fixtures


@pytest.fixture
def session(client: object, llm: FakeLLM, tmp_path) -> Iterator[hj.Session]:
    s = _session(client, llm, tmp_path)
    yield s
    s.close()


def _first_text(session: hj.Session) -> threading.Event:
    seen = threading.Event()
    session.subscribe(lambda event: seen.set() if event.kind == "text" else None)
    return seen


def test_delegate_check_collect_run_the_loop_and_a_shipped_tool_on_a_worker(session, llm):
    kernel_calls: list[str] = []

    def where() -> str:
        """Say which process runs this tool."""
        kernel_calls.append("ran")  # a copy runs on the worker: this list stays empty
        return f"pid {os.getpid()}"

    gate = threading.Event()
    llm.on(lambda r: gate.wait(10) and len(r.messages) == 2,
           Reply(tool_calls=[ToolCall("where", {})]))
    llm.script(Reply("the answer is " + "x" * 400, chunk_size=8, delay=0.005))
    writing = _first_text(session)
    task = session.delegate("find where tools run", tools=[where])
    assert task.state is TaskState.RUNNING  # delegate returned before any model call ended
    assert [s.id for s in session.list_tasks()] == [task.id]
    gate.set()
    assert writing.wait(10)
    status = session.check(task)
    assert status.state is TaskState.RUNNING and status.api_calls == 2
    assert status.last_tool == "where" and status.recent_output

    result = session.collect(task, timeout=10)
    assert result.state is TaskState.SUCCEEDED
    assert result.summary == "the answer is " + "x" * 400
    ran_at = int(result.tool_trace[0].result_preview.split()[1])
    assert ran_at != os.getpid() and kernel_calls == []
    assert llm.requests[0].api_key == SECRET  # the key reached the worker
    assert result.usage.api_calls == 2 and result.transcript[-1]["role"] == "assistant"


def test_a_tool_that_cannot_travel_is_said_in_one_line(session, llm):
    lock = threading.Lock()

    def guarded() -> str:
        """Use the kernel's lock."""
        with lock:
            return "never here"

    result = session.delegate("use the lock", tools=[guarded]).collect(10)
    assert result.exit_reason is ExitReason.ERROR and "\n" not in result.error
    assert result.error.startswith("A tool of this task cannot be sent to a Dask worker "
                                   "(TypeError: cannot pickle '_thread.lock'")
    assert llm.requests == []


def test_steer_reaches_the_worker_before_its_next_model_call(session, llm):
    gate = threading.Event()
    llm.on(lambda r: gate.wait(10) and len(r.messages) == 2,
           Reply(tool_calls=[ToolCall("noop", {})]))
    llm.script(Reply("fin"))
    task = session.delegate("work slowly")
    llm.wait_for_requests(1)
    session.steer(task, "answer in French")
    gate.set()
    result = task.collect(10)
    sent = [m["content"] for m in llm.requests[1].messages if m["role"] == "user"]
    assert "[steer from parent] answer in French" in sent
    (record,) = task.check().steering
    assert record.delivered_at is not None
    with pytest.raises(HermesError, match="steering needs a live task"):
        session.steer(task, "too late")
    assert result.state is TaskState.SUCCEEDED


def test_cancel_reaches_the_worker_and_stops_its_stream(session, llm):
    llm.script(Reply("word " * 2000, chunk_size=5, delay=0.01))
    writing = _first_text(session)
    task = session.delegate("write a lot")
    assert writing.wait(10)
    assert task.cancel() is True
    result = task.collect(5)
    assert result.exit_reason is ExitReason.CANCELLED
    assert result.summary.startswith("word") and result.truncated
    llm.wait_idle(5)  # the worker's stream was closed: the cancel reached it
    assert task.cancel() is False


def test_the_kernel_keeps_the_cap_cancels_and_steers_queued_tasks(client, llm, tmp_path):
    gate = threading.Event()
    llm.on(lambda r: gate.wait(10) and "first" in r.first_user_text, Reply("one"))
    llm.script(Reply("two"))
    with _session(client, llm, tmp_path, max_concurrent=1) as session:
        first = session.delegate("first")
        second = session.delegate("second")
        third = session.delegate("third")
        llm.wait_for_requests(1)
        assert [s.state for s in session.list_tasks()] == [TaskState.RUNNING,
                                                           TaskState.QUEUED, TaskState.QUEUED]
        assert second.cancel() is True
        assert second.state is TaskState.CANCELLED
        session.steer(third, "be brief")  # queued in the kernel: sent when it starts
        gate.set()
        assert first.collect(10).summary == "one"
        assert third.collect(10).summary == "two"
        assert len(llm.requests) == 2
        sent = [m["content"] for m in llm.requests[1].messages if m["role"] == "user"]
        assert sent[-1] == "[steer from parent] be brief"
        assert third.check().steering[0].delivered_at is not None


def test_streamed_text_comes_back_coalesced_not_per_chunk(session, llm):
    llm.script(Reply("y" * 800, chunk_size=2, delay=0.003))
    texts: list[Event] = []
    ended = threading.Event()

    def hear(event: Event) -> None:
        if event.kind == "text":
            texts.append(event)
        elif event.kind == "finished":
            ended.set()

    session.subscribe(hear)
    task = session.delegate("stream")
    result = task.collect(20)
    assert ended.wait(5)  # events reach subscribers on the bus thread, after the end
    chunks = 400
    assert result.summary == "y" * 800
    assert "".join(e.data["text"] for e in texts) == result.summary
    assert len(texts) < chunks / 4
    assert session._backend.batches < chunks / 4  # kernel-side messages from the workers


def test_the_workers_pool_rotates_keys_and_its_events_reach_the_kernel(client, llm, tmp_path):
    limited, spare = SECRET + "-one", SECRET + "-two"
    llm.key_rules[limited] = Fail(429, retry_after=30)
    llm.default = Reply("rotated")
    heard: list[Event] = []
    try:
        with hj.Session(model="worker-model", base_url=llm.base_url, workspace=tmp_path,
                        api_keys=[limited, spare], retry=FAST_RETRY, cluster=client) as s:
            s.subscribe(lambda event: heard.append(event) if event.kind == "key_cooldown"
                        else None)
            results = [s.delegate(f"job {i}").collect(10) for i in range(3)]
    finally:
        llm.default = None
    assert [r.summary for r in results] == ["rotated"] * 3
    # Each worker's pool learns the cooldown once (pools are per worker): 1 or 2 429s, not 3.
    assert 1 <= [r.api_key for r in llm.requests].count(limited) <= 2
    assert heard and all(limited not in repr(e.data) for e in heard)


def _scheduler_dump(dask_scheduler: object) -> bytes:
    """What the scheduler holds about tasks (keys, states, run specs), the datasets published
    on it (the state of tasks that outlive their kernel), its log and its transition log,
    as bytes."""
    from distributed.protocol.pickle import dumps

    parts = []
    for key, ts in dask_scheduler.tasks.items():  # type: ignore[attr-defined]
        parts += [repr(key).encode(), repr(ts).encode(), dumps(ts.run_spec)]
    for name, dataset in dask_scheduler.extensions["publish"].datasets.items():  # type: ignore[attr-defined]
        data = dataset["data"]
        parts += [repr(name).encode(), repr(getattr(data, "header", data)).encode(),
                  *(bytes(frame) for frame in getattr(data, "frames", ()))]
    parts.append(repr(dask_scheduler.get_logs()).encode())  # type: ignore[attr-defined]
    parts.append(repr(list(dask_scheduler.transition_log)).encode())  # type: ignore[attr-defined]
    return b"\n".join(parts)


def test_no_key_is_held_by_the_scheduler(client, session, llm):
    llm.script(Reply("done"))
    assert session.delegate("use the key").collect(10).state is TaskState.SUCCEEDED
    assert llm.requests[-1].api_key == SECRET
    held = client.run_on_scheduler(_scheduler_dump) + repr(client.get_events()).encode()
    assert b"hermes-engine" in held  # the engines' actors are there...
    assert SECRET.encode() not in held  # ...but not the key
    worker_logs = repr(client.get_worker_logs()).encode()
    assert SECRET.encode() not in worker_logs
    # The inspection finds a key passed the wrong way, as a task argument:
    leaked = client.submit(len, SECRET, key="leak-check")
    assert leaked.result() == len(SECRET)
    assert SECRET.encode() in client.run_on_scheduler(_scheduler_dump)
    leaked.release()


def test_a_workspace_missing_on_the_workers_is_said_in_one_line(client, llm, tmp_path):
    # The kernel needs the workspace (Session checks it); a worker checks it when each task
    # starts there: here it is gone by then, as an unmounted share would be.
    missing = tmp_path / "not-mounted"
    missing.mkdir()
    llm.script(Reply("fine"))
    with _session(client.scheduler.address, llm, missing) as session:  # an address works too
        missing.rmdir()
        result = session.delegate("run code", toolsets=["python"]).collect(10)
        assert result.exit_reason is ExitReason.ERROR
        assert result.error is not None and "\n" not in result.error
        assert f"The workspace {missing} is not on worker" in result.error
        assert session.delegate("no files needed").collect(10).summary == "fine"


def test_an_unreachable_scheduler_is_said_in_one_line(llm, tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "0.3s"}), pytest.raises(
            hj.ConfigurationError, match=r"Cannot use cluster='tcp://127.0.0.1:9' \(") as err:
        hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                   cluster="tcp://127.0.0.1:9")
    assert "\n" not in str(err.value)


NOTEBOOK_TOOL = '''
import os
seen = []
def where() -> str:
    """Say which process runs this tool."""
    seen.append(1)
    return str(os.getpid())
'''


def test_a_task_resumed_on_the_cluster_goes_on_from_its_journaled_conversation(
        client, llm, tmp_path):
    path = tmp_path / ".hermes" / "tasks.sqlite"
    path.parent.mkdir()
    Journal(path).close()  # the current schema; then a row a dead kernel left running
    talk = [{"role": "system", "content": "old prompt"},
            {"role": "user", "content": "Goal:\ncount"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c1", "type": "function", "function": {"name": "tally", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "tally is 3"}]
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO tasks (session, id, goal, model, state, created_at, context) "
                   "VALUES ('old', 't1', 'count', 'worker-model', 'running', 1.0, '')")
        db.execute("INSERT INTO turns VALUES ('old', 't1', 0, ?)", (json.dumps(talk),))
    db.close()
    llm.script(Reply("three, as counted"))
    with _session(client, llm, tmp_path, journal=True) as session:
        task = session.resume("old/t1")
        assert task.collect(10).summary == "three, as counted"
    sent = llm.requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert sent[3]["content"] == "tally is 3" and sent[0]["content"] != "old prompt"


def test_the_magics_run_notebook_tools_on_the_cluster_set_in_the_config(live, client, llm,
                                                                        capsys):
    live.run_line_magic("config", f'HermesJupyter.cluster = "{client.scheduler.address}"')
    assert live.run_cell(NOTEBOOK_TOOL).success
    llm.script(Reply(tool_calls=[ToolCall("where", {})]), Reply("found it"))
    ran = live.run_cell("t = %delegate -n look -t where where do tools run?\n"
                        "r = %collect_task look")
    assert ran.success, capsys.readouterr()
    result = live.user_ns["r"]
    assert result.summary == "found it"
    assert int(result.tool_trace[0].result_preview) != os.getpid()
    assert live.user_ns["seen"] == []  # the notebook's function ran as a copy on a worker
    listed = live.run_line_magic("list_tasks", "")
    assert [s.id for s in listed] == [live.user_ns["t"].id]



def test_a_shell_call_the_policy_allows_runs_on_the_worker_and_is_redacted(session, llm):
    llm.script(Reply(tool_calls=[ToolCall("run_shell", {"command": f"echo {SECRET}; echo $$"})]),
               Reply("ran"))
    result = session.delegate("echo", toolsets=["shell"], approval="auto").collect(10)
    assert result.state is TaskState.SUCCEEDED
    (entry,) = result.tool_trace
    assert entry.name == "run_shell" and entry.ok
    assert SECRET not in entry.result_preview  # the session's secrets travelled with the tool
    (tool_message,) = [m for m in llm.requests[1].messages if m["role"] == "tool"]
    assert SECRET not in tool_message["content"]


def test_typed_output_travels_and_comes_back_as_the_kernels_class(session, llm):
    import dataclasses

    import pydantic

    class Verdict(pydantic.BaseModel):  # local classes go to the workers by value
        label: str
        stars: int

    @dataclasses.dataclass
    class Pair:
        left: str
        right: str

    llm.script(Reply.json({"label": "good", "stars": "many"}),
               Reply.json({"label": "good", "stars": 4}))
    result = session.delegate("judge", output_type=Verdict).collect(20)
    assert result.ok, result.error
    assert type(result.data) is Verdict and result.data.stars == 4
    assert "stars" in llm.requests[1].messages[-1]["content"]  # corrected on the worker
    llm.script(Reply.json({"left": "a", "right": "b"}))
    pair = session.delegate("pair", output_type=Pair).collect(20)
    assert type(pair.data) is Pair and pair.data == Pair("a", "b")


def test_a_kernel_side_validator_the_schema_cannot_express_still_holds(session, llm):
    import pydantic

    class Rating(pydantic.BaseModel):
        stars: int

        @pydantic.field_validator("stars")
        @classmethod
        def at_most_five(cls, value: int) -> int:
            if value > 5:
                raise ValueError("at most 5 stars")
            return value

    llm.script(Reply.json({"stars": 9}))
    result = session.delegate("rate", output_type=Rating).collect(20)
    assert result.state is TaskState.FAILED and result.exit_reason is ExitReason.INVALID_OUTPUT
    assert "at most 5 stars" in result.error and result.summary == '{"stars": 9}'


def test_a_task_whose_worker_dies_is_retried_once_from_its_conversation_then_fails(
        client, llm, tmp_path):
    # The last test on the cluster: it kills both worker processes (nannies start new ones).
    # On main the first death ended the task.
    def note(text: str) -> str:
        """Write a note down (the workspace is shared with the workers)."""
        with (tmp_path / "notes.txt").open("a") as f:
            f.write(text + "\n")
        return f"noted {text}"

    llm.on(lambda r: len(r.messages) == 2, Reply(tool_calls=[ToolCall("note", {"text": "one"})]))
    llm.default = Reply("word " * 5000, chunk_size=5, delay=0.01)
    texts: list[threading.Event] = [threading.Event(), threading.Event()]
    retried: list[Event] = []

    def watch(event: Event) -> None:
        if event.kind == "retried":
            retried.append(event)
        elif event.kind == "text":
            texts[len(retried)].set()

    with _session(client, llm, tmp_path) as session:
        session.subscribe(watch)
        task = session.delegate("note, then stream on a worker that dies", tools=[note])
        assert texts[0].wait(10)  # streaming its second call: the first turn is in the kernel
        (first,) = [e for e in session._backend.engines if e.running]
        os.kill(first.pid, signal.SIGKILL)
        assert texts[1].wait(30)  # streaming again, on the other worker
        (second,) = [e for e in session._backend.engines if e.running]
        assert second is not first
        [event] = retried
        assert event.data == {"lost": first.address, "worker": second.address, "messages": 4}
        status = task.check()
        assert status.state is TaskState.RUNNING
        line = next(line for line in status.recent_output if line.startswith("↻"))
        assert f"the Dask worker {first.address} running it was lost" in line
        assert f"retrying once on {second.address} from its last conversation" in line
        sent = llm.requests[-1].messages  # the retried call went on from the conversation
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
        assert sent[3]["content"] == "noted one"
        assert (tmp_path / "notes.txt").read_text() == "one\n"  # the tool did not run again

        os.kill(second.pid, signal.SIGKILL)
        result = task.collect(30)
        assert result.exit_reason is ExitReason.ERROR
        assert f"the Dask worker {second.address} running it was lost" in result.error
        assert "after one retry on another worker" in result.error
        assert "\n" not in result.error
        assert len(retried) == 1
    llm.default = None


def test_the_steps_of_one_drain_reach_the_kernel_as_one_redacted_messages_op():
    # No cluster needed: the worker's op log and the kernel's replay, side by side.
    from hermes_jupyter.core.secrets import Secrets
    from hermes_jupyter.engine.dask_attach import replay as _replay
    from hermes_jupyter.engine.dask_remote import NoHost as _NoHost
    from hermes_jupyter.engine.dask_remote import RemoteControl
    from hermes_jupyter.engine.task import Task
    from hermes_jupyter.tools import ToolRegistry

    secrets = Secrets([SECRET])

    def control() -> RemoteControl:
        task = Task(_NoHost(), "t1", None, "g", "", "m", ToolRegistry([]), 5, None,
                    lambda *a, **k: None, lambda _id, _text: None, secrets)
        return RemoteControl(task, secrets)

    worker, kernel = control(), control()
    talk = [{"role": "system", "content": "s"}, {"role": "user", "content": "g"}]
    talk.append({"role": "assistant", "content": f"key {SECRET}"})
    worker.conversation.step(talk)
    talk.append({"role": "tool", "tool_call_id": "c", "content": "r"})
    worker.conversation.step(talk)
    ops = worker.drain()
    assert [op[0] for op in ops] == ["messages"]  # two steps, one op
    assert ops[0][1] == 0 and len(ops[0][2]) == 4 and SECRET not in str(ops[0])
    talk.append({"role": "user", "content": "more"})
    worker.conversation.step(talk)
    for op in [*ops, *worker.drain()]:
        _replay(kernel, op)
    assert kernel.conversation.messages() == worker.conversation.messages()
    assert len(kernel.conversation) == 5
