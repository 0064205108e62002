"""The `hermes_jupyter` comm target: recording-comm unit tests, then a real kernel.

The unit tests drive `hermes_jupyter.comm` with a recording comm (as ipywidgets' tests do) and a
real Session against the loopback FakeLLM; the kernel tests open the comm from a
`BlockingKernelClient` the way JupyterLab does, including over a subshell while a cell is busy.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import hermes_jupyter as hj
from hermes_jupyter.notebook import comm as hcomm
from hermes_jupyter.testing import Reply, ToolCall

from .kernel_frontend import KernelFrontend, parent_id, running_kernel

WAIT = 10.0


class RecordingComm:
    """Stands in for ipykernel's Comm: records what the kernel sends, plays the frontend."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._on_msg: Callable[[dict[str, Any]], None] | None = None
        self._on_close: Callable[[dict[str, Any]], None] | None = None

    # the Comm API comm.py uses
    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._on_msg = callback

    def on_close(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._on_close = callback

    def send(self, data: dict[str, Any]) -> None:
        with self._cond:
            self.sent.append(data)
            self._cond.notify_all()

    def close(self, data: dict[str, Any] | None = None) -> None:
        with self._cond:
            self.closed = data or {}
            self._cond.notify_all()

    # the frontend's side
    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return its reply (handlers answer synchronously)."""
        assert self._on_msg is not None
        request_id = f"r{next(self._ids)}"
        self._on_msg({"content": {"data": {"type": "request", "id": request_id, "op": op,
                                           **fields}}})
        return next(m for m in self.messages("reply") if m["id"] == request_id)

    def frontend_close(self) -> None:
        assert self._on_close is not None
        self._on_close({"content": {"data": {}}})

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [m for m in self.sent if kind is None or m["type"] == kind]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first message satisfying predicate, waiting for it (no sleeps)."""
        with self._cond:
            found: list[dict[str, Any]] = []

            def ready() -> bool:
                found[:] = [m for m in self.sent if predicate(m)]
                return bool(found)

            assert self._cond.wait_for(ready, WAIT), f"no such message in {self.sent!r}"
            return found[0]


def task_in(msg: dict[str, Any], task_id: str, state: str | None = None) -> bool:
    return msg["type"] in ("snapshot", "delta") and any(
        t["id"] == task_id and (state is None or t["state"] == state) for t in msg["tasks"]
    )


class FakeManager:
    """ipykernel's CommManager, as far as `register` uses it."""

    def __init__(self) -> None:
        self.targets: dict[str, Callable[..., None]] = {}

    def register_target(self, name: str, callback: Callable[..., None]) -> None:
        self.targets[name] = callback


class FakeEvents:
    """IPython's `shell.events`: `run_cell()` fires the post_run_cell hooks."""

    def __init__(self) -> None:
        self.hooks: list[tuple[str, Callable[..., None]]] = []

    def register(self, event: str, callback: Callable[..., None]) -> None:
        self.hooks.append((event, callback))

    def run_cell(self) -> None:
        for event, callback in self.hooks:
            if event == "post_run_cell":
                callback(None)


def fake_shell() -> SimpleNamespace:
    return SimpleNamespace(kernel=SimpleNamespace(comm_manager=FakeManager()), user_ns={},
                           events=FakeEvents())


@pytest.fixture
def shell(session: hj.Session) -> SimpleNamespace:
    ip = fake_shell()
    hcomm.register(ip, hcomm.session_tasks(session))
    return ip


def open_comm(ip: SimpleNamespace, client_id: str = "tab-1", protocol: Any = 1) -> RecordingComm:
    comm = RecordingComm()
    target = ip.kernel.comm_manager.targets[hcomm.TARGET]
    target(comm, {"content": {"data": {"protocol": protocol, "client_id": client_id}}})
    return comm


@pytest.fixture
def long_task(session: hj.Session, llm) -> Iterator[hj.Task]:
    """A task that streams for a long while: running until the test cancels it."""
    llm.default = Reply(text="working on it " * 400, chunk_size=4, delay=0.01)
    task = session.delegate("a long job", name="long")
    llm.wait_for_chunks(2)
    yield task
    task.cancel()


# ---- registration -----------------------------------------------------------------------

def test_register_is_a_no_op_in_plain_ipython():
    hcomm.register(SimpleNamespace(user_ns={}))  # no .kernel: nothing to do, no error


def test_register_is_idempotent(session: hj.Session):
    ip = fake_shell()
    hcomm.register(ip, hcomm.session_tasks(session))
    first = ip.kernel.comm_manager.targets[hcomm.TARGET]
    hcomm.register(ip, hcomm.session_tasks(session))
    assert ip.kernel.comm_manager.targets[hcomm.TARGET] == first
    assert list(ip.kernel.comm_manager.targets) == [hcomm.TARGET]
    assert len(ip.events.hooks) == 1


def test_nothing_is_sent_or_started_when_no_frontend_opens_the_comm(shell, session, llm):
    session.delegate("quiet").collect(WAIT)
    assert getattr(session, "_refresher", None) is None  # no sink, no refresher thread


# ---- snapshot and deltas ----------------------------------------------------------------

def test_snapshot_on_open_lists_every_task(shell, session, llm):
    llm.default = Reply(text="done")
    session.delegate("first", name="one").collect(WAIT)
    comm = open_comm(shell)
    snapshot = comm.sent[0]
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 1
    assert snapshot["protocol"] == hcomm.PROTOCOL_VERSION
    [task] = snapshot["tasks"]
    assert task["id"] == "t1" and task["name"] == "one" and task["state"] == "succeeded"
    assert task["summary"] == "done" and task["tokens"] > 0
    assert snapshot["totals"]["counts"]["succeeded"] == 1


def test_deltas_follow_the_task_and_are_coalesced(shell, session, llm):
    comm = open_comm(shell)
    assert comm.sent[0]["tasks"] == []
    llm.default = Reply(text="x" * 600, chunk_size=3, delay=0.005)
    task = session.delegate("stream a lot")
    comm.wait_for(lambda m: task_in(m, task.id, "succeeded"))
    deltas = comm.messages("delta")
    assert [m["seq"] for m in comm.sent] == list(range(1, len(comm.sent) + 1))
    # One delta per refresher tick at most (≤ 10 Hz), far fewer than the 200 chunks streamed.
    assert len(deltas) <= get_ticks(session)
    assert len(deltas) < llm.chunks_sent / 2
    versions = [t["version"] for m in deltas for t in m["tasks"] if t["id"] == task.id]
    assert versions == sorted(set(versions)), "each delta carries a newer version"
    assert all(len(t["recent_output"]) <= hcomm.OUTPUT_TAIL for m in deltas for t in m["tasks"])


def get_ticks(session: hj.Session) -> int:
    return hcomm.get_refresher(session).ticks


def test_long_strings_are_clipped_for_the_wire(shell, session, llm):
    llm.default = Reply(text="a" * 400 + "THE END")  # the engine keeps 500 per line
    session.delegate("g" * 5000).collect(WAIT)
    comm = open_comm(shell)
    [task] = comm.sent[0]["tasks"]
    assert len(task["goal"]) == 500 and task["goal"].endswith("…")
    [line] = task["recent_output"]  # the newest part of a long line is what matters
    assert len(line) == 300 and line.startswith("…") and line.endswith("THE END")


def test_a_header_only_change_goes_out_as_a_delta(shell, session, llm):
    """A parent agent taking in its children's results changes no task, only `waiting`: the
    panel must still hear it (the same kind: any change of the header alone)."""
    llm.on(lambda r: "child goal" in r.first_user_text, Reply(text="child answer"))
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child goal", "name": "kid"})]),
           Reply(text="started"), Reply(text="heard back"))
    agent = hj.Agent(session, name="boss")
    [child] = agent.ask("Plan one thing").children
    child.collect(WAIT)
    assert agent.wait_for_results(1, timeout=WAIT)
    comm = open_comm(shell)
    [boss] = comm.sent[0]["totals"]["agents"]
    assert (boss["name"], boss["owner"], boss["waiting"]) == ("boss", "agent:boss", 1)
    assert comm.sent[0]["tasks"][0]["owner"] == "agent:boss"
    agent.ask()  # takes the result in: waiting 1 → 0, no task changes
    delta = comm.wait_for(lambda m: m["type"] == "delta"
                          and m["totals"]["agents"][0]["waiting"] == 0)
    assert delta["tasks"] == []
    before = len(comm.messages("delta"))
    agent.reset()  # nothing the panel shows moved: no delta
    session.delegate("child goal").collect(WAIT)  # a later change does go out, once
    comm.wait_for(lambda m: m["type"] == "delta" and m["tasks"]
                  and m["tasks"][-1]["state"] == "succeeded" and m["tasks"][-1]["id"] == "t2")
    deltas = comm.messages("delta")[before:]
    assert all(d["tasks"] for d in deltas), deltas


def test_a_waiting_call_goes_out_clipped_and_is_decided_from_the_panel(shell, session, llm):
    """What the person decides on reaches the panel (long arguments clipped like other long
    strings); approve and deny answer in one line, and the model reads the denial's reason."""
    long_command = "echo " + "x" * 9000
    llm.on("go", Reply(tool_calls=[ToolCall("run_shell", {"command": long_command}, id="c1"),
                                   ToolCall("run_shell", {"command": "touch made"}, id="c2")]),
           Reply(text="done"))
    comm = open_comm(shell)
    task = session.delegate("go", toolsets=["shell"])
    waiting = comm.wait_for(lambda m: task_in(m, task.id, "awaiting_approval"))
    [sent] = [t for t in waiting["tasks"] if t["id"] == task.id]
    first, second = sent["pending_approvals"]
    assert (first["call_id"], first["tool"], second["call_id"]) == ("c1", "run_shell", "c2")
    assert len(first["arguments"]) == 4000 and first["arguments"].endswith("…")
    assert "shell command" in first["reason"]
    assert comm.request("approve", task=task.id, call_id="c9")["ok"] is False
    reply = comm.request("deny", task=task.id, call_id="c2", reason="not here")
    assert reply["message"] == f"Denied run_shell (c2) for {task.id}; the model reads why."
    reply = comm.request("approve", task=task.id, call_id="c1")
    assert reply["message"] == f"Approved run_shell (c1) for {task.id}."
    result = task.collect(WAIT)
    denied = next(m["content"] for m in result.transcript
                  if m.get("role") == "tool" and m["tool_call_id"] == "c2")
    assert "not here" in denied
    again = comm.request("deny", task=task.id, call_id="c1")
    assert again["ok"] is False and "\n" not in again["error"]


# ---- requests ---------------------------------------------------------------------------

def test_steer_then_cancel_a_running_task(shell, session, long_task):
    comm = open_comm(shell)
    reply = comm.request("steer", task=long_task.id, message="focus on tests")
    assert reply == {"type": "reply", "protocol": 1, "seq": reply["seq"], "id": reply["id"],
                     "ok": True, "message": f"Steering message queued for {long_task.id}."}
    comm.wait_for(lambda m: any(
        t["id"] == long_task.id and t["steering"] and t["steering"][0]["message"] ==
        "focus on tests" for t in m.get("tasks", ())))

    assert comm.request("cancel", task="long")["message"] == "Cancelling long."
    comm.wait_for(lambda m: task_in(m, long_task.id, "cancelled"))
    again = comm.request("cancel", task=long_task.id)
    assert again["ok"] is False
    assert again["error"] == (
        f"Task {long_task.id} has already ended (cancelled): nothing to cancel."
    )


def test_collect_into_a_variable(shell, session, llm):
    llm.default = Reply(text="forty-two")
    task = session.delegate("answer")
    task.collect(WAIT)
    comm = open_comm(shell)
    reply = comm.request("collect", task=task.id, variable="answer")
    assert reply["ok"] is True and "stored in `answer`" in reply["message"]
    assert shell.user_ns["answer"].summary == "forty-two"


def test_collect_a_running_task_binds_it_when_it_ends(shell, session, long_task):
    comm = open_comm(shell)
    reply = comm.request("collect", task=long_task.id, variable="later")
    assert reply["ok"] is True and "when it ends" in reply["message"]
    long_task.cancel()
    long_task.collect(WAIT)
    assert shell.user_ns["later"].state is hj.TaskState.CANCELLED


@pytest.mark.parametrize(
    ("op", "fields", "error"),
    [
        ("steer", {"task": "nope", "message": "hi"}, "No task 'nope'."),
        ("cancel", {"task": "nope"}, "No task 'nope'."),
        ("collect", {"task": "t1", "variable": "not a name"}, "Bad variable name"),
        ("steer", {"task": "t1", "message": "  "}, "The steering message is empty"),
        ("cancel", {}, "The cancel request names no task"),
        ("explode", {"task": "t1"}, "Unknown request 'explode'"),
        ("collect", {"task": "t1", "variable": "x"}, "`x` already holds a value of type int"),
    ],
)
def test_bad_requests_get_a_one_line_error(shell, session, llm, op, fields, error):
    session.delegate("something").collect(WAIT)
    shell.user_ns["x"] = 1
    comm = open_comm(shell)
    reply = comm.request(op, **fields)
    assert reply["ok"] is False
    assert reply["error"].startswith(error)
    assert "\n" not in reply["error"]


def test_snapshot_request_resyncs(shell, session, llm):
    comm = open_comm(shell)
    session.delegate("later").collect(WAIT)
    assert comm.request("snapshot")["ok"] is True
    snapshots = comm.messages("snapshot")
    assert len(snapshots) == 2 and snapshots[1]["tasks"][0]["id"] == "t1"


# ---- life cycle ---------------------------------------------------------------------------

def test_a_closed_comm_gets_nothing_more(shell, session, llm):
    gone, watcher = open_comm(shell, "tab-1"), open_comm(shell, "tab-2")
    gone.frontend_close()
    seen = len(gone.sent)
    task = session.delegate("after close")
    # Sinks run in one tick: once the open comm has the end, the closed one would have too.
    watcher.wait_for(lambda m: task_in(m, task.id, "succeeded"))
    assert len(gone.sent) == seen


def test_a_reloaded_page_replaces_its_old_comm(shell, session, llm):
    old = open_comm(shell, "tab-1")
    new = open_comm(shell, "tab-1")
    assert old.closed == {"reason": "replaced"}
    assert new.closed is None and new.sent[0]["type"] == "snapshot"
    seen = len(old.sent)
    task = session.delegate("after reload")
    new.wait_for(lambda m: task_in(m, task.id, "succeeded"))
    assert len(old.sent) == seen


@pytest.mark.parametrize("protocol", [2, 0, None, "1.1"])
def test_any_protocol_version_is_served_since_changes_are_additive(shell, session, llm,
                                                                  protocol):
    """A newer or older panel is never shut out: each side ignores what it does not know."""
    session.delegate("something").collect(WAIT)
    comm = open_comm(shell, protocol=protocol)
    assert comm.closed is None
    snapshot = comm.sent[0]
    assert snapshot["type"] == "snapshot" and snapshot["tasks"][0]["id"] == "t1"
    assert snapshot["ops"] == ["steer", "cancel", "collect", "snapshot", "approve", "deny"]
    assert snapshot["states"] == {"live": ["queued", "running", "awaiting_approval"], "terminal": [
        "succeeded", "failed", "cancelled", "interrupted"]}
    assert snapshot["tasks"][0]["terminal"] is True
    # a request field this kernel does not know is ignored, an op it does not know is named
    reply = comm.request("cancel", task="t1", approve=True, future_field={"x": 1})
    assert reply["ok"] is False and reply["code"] == "refused"
    reply = comm.request("pause", task="t1")
    assert reply["ok"] is False and reply["code"] == "unknown_op"
    assert reply["error"] == ("Unknown request 'pause': this kernel answers steer, cancel, "
                              "collect, snapshot, approve, deny.")


# ---- collect never replaces a user's variable --------------------------------------------

def test_collect_refuses_a_taken_name_until_confirmed(shell, session, llm):
    """The quickstart: `review = %delegate -n review ...`, then Collect into `review`."""
    llm.default = Reply(text="looks fine")
    task = session.delegate("review the code", name="review")
    shell.user_ns["review"] = task
    task.collect(WAIT)
    comm = open_comm(shell)
    reply = comm.request("collect", task=task.id, variable="review")
    assert reply["ok"] is False and reply["code"] == "variable_exists"
    assert reply["variable"] == "review" and reply["suggestion"] == "result_t1"
    assert reply["error"] == ("`review` already holds a value of type Task: collect into "
                              "another name (`result_t1` is free) or confirm to replace it.")
    assert shell.user_ns["review"] is task  # nothing changed
    reply = comm.request("collect", task=task.id, variable="review", overwrite=True)
    assert reply["ok"] is True and shell.user_ns["review"].summary == "looks fine"
    # collecting the same task again into the same name replaces nothing of the user's
    assert comm.request("collect", task=task.id, variable="review")["ok"] is True


def test_the_offered_name_becomes_a_free_variant_when_taken(shell, session, llm):
    task = session.delegate("something")
    task.collect(WAIT)
    shell.user_ns.update(result_t1=41, result_t1_2="mine")
    comm = open_comm(shell)
    reply = comm.request("collect", task=task.id, variable="result_t1", free=True)
    assert reply["ok"] is True and "stored in `result_t1_3`" in reply["message"]
    assert shell.user_ns["result_t1"] == 41 and shell.user_ns["result_t1_2"] == "mine"
    assert shell.user_ns["result_t1_3"].id == "t1"


def test_a_value_assigned_while_the_task_runs_is_not_replaced_at_its_end(shell, session,
                                                                        long_task):
    comm = open_comm(shell)
    assert comm.request("collect", task=long_task.id, variable="later")["ok"] is True
    shell.user_ns["later"] = "the user's own value"
    long_task.cancel()
    long_task.collect(WAIT)
    assert shell.user_ns["later"] == "the user's own value"


def test_the_panel_never_builds_a_session_and_follows_the_one_a_cell_builds(session, llm):
    live: list[hj.Session | None] = [None]
    ip = fake_shell()
    hcomm.register(ip, hcomm.TaskSource(
        live_session=lambda: live[0],
        statuses=lambda: live[0].list_tasks() if live[0] else [],
        find_task=lambda ref: session.task(ref),
    ))
    comm = open_comm(ip)
    assert comm.sent == [{"type": "snapshot", "protocol": 1, "seq": 1, "tasks": [], "totals": {},
                          "ops": list(hcomm.OPS), "states": hcomm.STATES, "history": []}]
    llm.default = Reply(text="done")
    # A cell builds the kernel's session and delegates: after the cell, the comm follows it.
    live[0] = session
    task = session.delegate("first task of the kernel")
    ip.events.run_cell()
    assert task_in(comm.sent[1], task.id) and comm.sent[1]["type"] == "snapshot"
    comm.wait_for(lambda m: task_in(m, task.id, "succeeded"))
    ip.events.run_cell()  # same session: nothing new to say
    assert len(comm.messages("snapshot")) == 2


# ---- a real kernel, driven the way JupyterLab drives it -------------------------------------

class KernelPeer(KernelFrontend):
    """The JupyterLab panel's side of the `hermes_jupyter` comm."""

    def open_comm(self, comm_id: str, data: dict[str, Any]) -> None:
        self.comm_id = comm_id
        self.send_shell("comm_open", {"comm_id": comm_id, "target_name": hcomm.TARGET,
                                      "data": data})

    def comm_data(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        msg = self.wait(lambda m: m["msg_type"] == "comm_msg"
                        and m["content"]["comm_id"] == self.comm_id
                        and predicate(m["content"]["data"]))
        data: dict[str, Any] = msg["content"]["data"]
        return data

    def request(self, op: str, subshell_id: str | None = None, **fields: Any) -> dict[str, Any]:
        request_id = self.next_request_id()
        data = {"type": "request", "id": request_id, "op": op, **fields}
        self.send_shell("comm_msg", {"comm_id": self.comm_id, "data": data}, subshell_id)
        return self.comm_data(lambda d: d["type"] == "reply" and d["id"] == request_id)


@pytest.fixture(scope="module")
def kernel_llm():
    from hermes_jupyter.testing import FakeLLM

    with FakeLLM() as server:
        yield server


@contextlib.contextmanager
def kernel_peer(llm_url: str, cwd: str) -> Iterator[KernelPeer]:
    """A real kernel with hermes_jupyter loaded, its endpoint the loopback server."""
    with running_kernel(cwd, HERMES_MODEL="fake-model", OPENAI_BASE_URL=llm_url,
                        OPENAI_API_KEY="sk-t") as kc:
        p = KernelPeer(kc)
        p.execute("%load_ext hermes_jupyter\n"
                  "from hermes_jupyter.notebook import comm as hcomm, kernel as current\n")
        yield p


@pytest.fixture(scope="module")
def peer(kernel_llm, tmp_path_factory) -> Iterator[KernelPeer]:
    with kernel_peer(kernel_llm.base_url, str(tmp_path_factory.mktemp("kernel"))) as p:
        yield p


@pytest.mark.kernel
def test_panel_follows_a_session_built_while_the_cell_still_runs(kernel_llm, tmp_path):
    with kernel_peer(kernel_llm.base_url, str(tmp_path)) as fresh:
        fresh.open_comm("hermes-comm-early", {"protocol": 1, "client_id": "early"})
        assert fresh.comm_data(lambda d: d["type"] == "snapshot")["tasks"] == []
        kernel_llm.on("mid-cell", Reply(text="slow " * 300, chunk_size=4, delay=0.01))
        busy = fresh.kc.execute("t = %delegate -n early mid-cell job\nr = t.collect(60)")
        fresh.comm_data(lambda d: d["type"] == "snapshot" and d["seq"] == 2)  # a new session
        fresh.comm_data(lambda d: d["type"] == "delta" and any(
            t["name"] == "early" and t["state"] == "running" for t in d["tasks"]))
        idle = [m for m in fresh.log if m["msg_type"] == "status" and parent_id(m) == busy
                and m["content"]["execution_state"] == "idle"]
        assert idle == []  # the panel knew the task while the cell was still blocked
        fresh.request("cancel", task="t1")
        fresh.wait(lambda m: m["msg_type"] == "status" and parent_id(m) == busy
                   and m["content"]["execution_state"] == "idle")


@pytest.mark.kernel
def test_kernel_is_silent_until_a_frontend_opens_the_comm(peer, kernel_llm):
    kernel_llm.default = Reply(text="quiet")
    peer.execute("%delegate -n quiet a quiet task")
    peer.execute("current.find_task('quiet').collect(10)")
    refresher = "print(current.peek_session().attachments.peek('refresher'))"
    assert peer.stdout(refresher).strip() == "None"
    assert not [m for m in peer.log if m["msg_type"].startswith("comm_")]


@pytest.mark.kernel
def test_kernel_comm_end_to_end(peer, kernel_llm):
    kernel_llm.default = Reply(text="quiet")
    peer.execute("%delegate -n first the first task\ncurrent.find_task('first').collect(10)")
    peer.open_comm("hermes-comm-1", {"protocol": 1, "client_id": "kernel-test"})
    snapshot = peer.comm_data(lambda d: d["type"] == "snapshot")
    assert snapshot["seq"] == 1
    assert any(t["name"] == "first" and t["state"] == "succeeded" for t in snapshot["tasks"])

    # A cell blocks on a long task; the frontend's requests go over a subshell meanwhile.
    kernel_llm.default = Reply(text="working " * 500, chunk_size=4, delay=0.01)
    subshell = peer.create_subshell()
    busy = peer.kc.execute(
        "t = get_ipython().run_line_magic('delegate', '-n long a long job')\n"
        "r = t.collect(60)"
    )
    running = peer.comm_data(lambda d: d["type"] == "delta" and any(
        t["name"] == "long" and t["state"] == "running" for t in d["tasks"]))
    long_id = next(t["id"] for t in running["tasks"] if t["name"] == "long")

    steer = peer.request("steer", subshell, task=long_id, message="be brief")
    assert steer["ok"] is True, steer["error"]
    unknown = peer.request("cancel", subshell, task="t99")
    assert unknown["ok"] is False and unknown["error"].startswith("No task 't99'.")
    assert "\n" not in unknown["error"]
    assert peer.request("cancel", subshell, task=long_id)["ok"] is True

    peer.wait(lambda m: m["msg_type"] == "status" and parent_id(m) == busy
              and m["content"]["execution_state"] == "idle")
    peer.comm_data(lambda d: d["type"] == "delta" and any(
        t["id"] == long_id and t["state"] == "cancelled" and t["steering"]
        for t in d["tasks"]))
    collect = peer.request("collect", task=long_id, variable="res")
    assert collect["ok"] is True and "stored in `res`" in collect["message"]
    assert peer.stdout("print(res.state.value, r is res)").split() == ["cancelled", "True"]
    seqs = [m["content"]["data"]["seq"] for m in peer.log
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == "hermes-comm-1"]
    assert seqs == list(range(1, len(seqs) + 1)), "IOPub delivers in seq order"


# ---- tasks of earlier kernels -----------------------------------------------------------

def test_snapshot_lists_tasks_of_earlier_kernels_from_the_journal(llm, tmp_path):
    """With a journal, the panel shows what earlier kernels ran; interrupted ones marked."""
    def journaled() -> hj.Session:
        return hj.Session(model="m", base_url=llm.base_url, api_keys=["k"],
                          workspace=tmp_path, journal=True)

    llm.default = Reply(text="done before")
    with journaled() as first:
        first.delegate("from the first kernel", name="old").collect(WAIT)
    # a kernel (a real process) that dies with a task running: the next journal says
    # interrupted, since the row's owner is gone
    llm.default = Reply(text="never ends " * 1000, chunk_size=5, delay=0.01)
    kernel = textwrap.dedent(f"""
        import os, sys, hermes_jupyter as hj
        s = hj.Session(model="m", base_url={llm.base_url!r}, api_keys=["k"],
                       workspace={str(tmp_path)!r}, journal=True)
        s.delegate("cut short", name="victim")
        sys.stdin.readline()
        os._exit(0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", kernel], stdin=subprocess.PIPE, text=True)
    llm.wait_for_chunks(2)
    proc.communicate("die\n", timeout=30)
    llm.default = Reply(text="done before")
    ip = fake_shell()
    with journaled() as third:
        hcomm.register(ip, hcomm.session_tasks(third))
        third.delegate("now").collect(WAIT)
        comm = open_comm(ip)
        snapshot = comm.sent[0]
        assert [t["id"] for t in snapshot["tasks"]] == ["t1"]  # the live session's own
        old, victim = snapshot["history"]
        assert (old["id"], old["name"], old["state"], old["terminal"]) == (
            "t1", "old", "succeeded", True)
        assert old["summary"] == "done before" and old["session"] != victim["session"]
        assert (victim["name"], victim["state"], victim["exit_reason"]) == (
            "victim", "interrupted", "interrupted")
