"""Approvals: tool calls that wait for a person, over FakeLLM on real sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.models import LIVE_STATES, TERMINAL_STATES
from hermes_jupyter.testing import FakeLLM, RecordedRequest, Reply, ToolCall
from hermes_jupyter.tools.approval import ApprovalPolicy, assess, command_words, refusal

from .conftest import FAST_RETRY, SECRET


def shell(command: str, call_id: str = "c1") -> Reply:
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command}, id=call_id)])


class Asked:
    """Counts `approval_requested` events; `wait(n)` blocks until n arrived."""

    def __init__(self, session: hj.Session) -> None:
        self.events: list[hj.Event] = []
        self.decided: list[hj.Event] = []
        self._cond = threading.Condition()
        session.subscribe(self._on)

    def _on(self, event: hj.Event) -> None:
        with self._cond:
            if event.kind == "approval_requested":
                self.events.append(event)
            elif event.kind == "approval_decided":
                self.decided.append(event)
            self._cond.notify_all()

    def wait(self, n: int = 1) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.events) >= n, 20), self.events


@pytest.fixture
def make(llm: FakeLLM, tmp_path) -> Iterator:
    made = []

    def build(**kwargs) -> hj.Session:
        s = hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                       retry=FAST_RETRY, toolsets=["shell"], **kwargs)
        made.append(s)
        return s

    yield build
    for s in made:
        s.close()


def tool_message(result: hj.TaskResult, call_id: str = "c1") -> str:
    return next(m["content"] for m in result.transcript
                if m.get("role") == "tool" and m["tool_call_id"] == call_id)


def test_the_state_is_live_and_derived_lists_know_it():
    assert hj.TaskState.AWAITING_APPROVAL in LIVE_STATES
    assert hj.TaskState.AWAITING_APPROVAL not in TERMINAL_STATES
    assert set(hj.TaskState) == LIVE_STATES | TERMINAL_STATES


def test_a_shell_call_waits_then_runs_once_approved(make, llm, tmp_path):
    llm.on("go", shell("echo approved-output"), Reply("done"))
    session = make()
    asked = Asked(session)
    task = session.delegate("go")
    asked.wait()
    status = task.check()
    assert status.state is hj.TaskState.AWAITING_APPROVAL
    [pending] = status.pending_approvals
    assert (pending.call_id, pending.tool) == ("c1", "run_shell")
    assert json.loads(pending.arguments) == {"command": "echo approved-output"}
    assert "shell command" in pending.reason
    assert llm.active_streams == 0  # no model call is held open while it waits
    assert len(llm.requests) == 1
    assert session.counts()["awaiting_approval"] == 1
    assert session.approve(task) == pending
    result = task.collect(20)
    assert result.ok and result.summary == "done"
    assert "approved-output" in tool_message(result) and "[exit code 0]" in tool_message(result)
    assert [e.data["by"] for e in asked.decided] == ["user"]


def test_a_denial_reaches_the_model_with_its_reason_and_nothing_runs(make, llm, tmp_path):
    llm.on("go", shell("touch made.txt"), Reply("ok, without it"))
    session = make()
    asked = Asked(session)
    task = session.delegate("go")
    asked.wait()
    session.deny(task, "c1", reason="not on this machine")
    result = task.collect(20)
    assert result.ok
    told = llm.requests[-1].messages[-1]["content"]
    assert "denied" in told and "not on this machine" in told
    assert not (tmp_path / "made.txt").exists()
    assert result.tool_trace[0].ok is False


def test_remember_approves_matching_calls_for_the_rest_of_the_session(make, llm, tmp_path):
    llm.on("first", shell("ls -a"), Reply("one"))
    llm.on("second", shell("ls ."), Reply("two"))
    llm.on("third", shell("ls; touch x.txt"), Reply("three"))
    session = make()
    asked = Asked(session)
    one = session.delegate("first")
    asked.wait()
    session.approve(one, remember="ls *")
    assert one.collect(20).ok
    assert session.delegate("second").collect(20).ok  # ran without asking
    assert len(asked.events) == 1
    third = session.delegate("third")  # chained: a pattern never matches it
    asked.wait(2)
    assert "chained" in third.check().pending_approvals[0].reason
    session.deny(third)
    third.collect(20)


def test_a_remembered_pattern_also_frees_calls_waiting_now(make, llm):
    llm.on("alpha", shell("git status", "ca"), Reply("a"))
    llm.on("bravo", shell("git status", "cb"), Reply("b"))
    session = make()
    asked = Asked(session)
    a, b = session.delegate("alpha"), session.delegate("bravo")
    asked.wait(2)
    session.approve(a, remember="git status")
    assert a.collect(20).ok and b.collect(20).ok
    assert sorted(e.data["by"] for e in asked.decided) == ["remembered pattern", "user"]


def test_an_undecided_call_times_out_and_the_model_is_not_told_a_person_denied_it(make, llm):
    llm.on("go", shell("echo hi"), Reply("gave up"))
    session = make(approval_timeout=0.05)
    result = session.delegate("go").collect(20)
    told = tool_message(result)
    assert result.ok and "approval_timeout" in told
    assert "timed out after 0.05s" in told and "nobody denied it" in told
    assert "a person denied" not in told and "did not run" in told


def test_a_task_level_approval_timeout_is_told_as_a_timeout_too(make, llm):
    llm.on("go", shell("echo hi"), Reply("gave up"))
    session = make()
    result = session.delegate("go", approval_timeout=0.05).collect(20)
    told = tool_message(result)
    assert "timed out" in told and "a person denied" not in told


def test_cancel_while_waiting_ends_at_once(make, llm):
    llm.on("go", shell("echo hi"))
    session = make()
    asked = Asked(session)
    task = session.delegate("go")
    asked.wait()
    assert llm.active_streams == 0
    assert task.cancel()
    result = task.collect(5)
    assert result.state is hj.TaskState.CANCELLED
    assert task.check().pending_approvals == []
    with pytest.raises(hj.HermesError, match="no tool call awaiting approval"):
        session.approve(task)


def test_a_waiting_task_keeps_its_slot(make, llm):
    llm.on("first", shell("echo hi"), Reply("one"))
    llm.on("second", Reply("two"))
    session = make(max_concurrent=1)
    asked = Asked(session)
    first = session.delegate("first")
    asked.wait()
    second = session.delegate("second")
    assert second.state is hj.TaskState.QUEUED
    session.approve(first)
    assert second.collect(20).ok and first.collect(20).ok


def test_time_waiting_does_not_count_toward_the_task_timeout(make, llm):
    llm.on("go", shell("echo hi"), Reply("done"))
    session = make()
    asked = Asked(session)
    task = session.delegate("go", timeout=1.0)
    asked.wait()
    with pytest.raises(hj.CollectTimeout):  # past its 1 s timeout, still waiting
        task.collect(1.5)
    assert task.state is hj.TaskState.AWAITING_APPROVAL
    session.approve(task)
    result = task.collect(20)
    assert result.exit_reason is hj.ExitReason.COMPLETED, result.error


@pytest.mark.parametrize("mode", ["auto", "deny"])
def test_policy_auto_runs_and_deny_refuses_without_waiting(make, llm, tmp_path, mode):
    llm.on("go", shell("touch made.txt"), Reply("done"))
    session = make(approval=mode)
    asked = Asked(session)
    result = session.delegate("go").collect(20)
    assert result.ok and asked.events == []
    assert (tmp_path / "made.txt").exists() == (mode == "auto")
    if mode == "deny":
        assert "approval='deny'" in tool_message(result)


def test_a_task_can_override_the_session_policy(make, llm, tmp_path):
    llm.on("go", shell("touch made.txt"), Reply("done"))
    session = make(approval="deny")
    assert session.delegate("go", approval="auto").collect(20).ok
    assert (tmp_path / "made.txt").exists()
    with pytest.raises(hj.ConfigurationError, match="Bad approval 'sometimes'"):
        session.delegate("go", approval="sometimes")


def test_the_allowlist_runs_simple_commands_and_chained_ones_always_ask(make, llm, tmp_path):
    llm.on("simple", shell("echo fine"), Reply("ran"))
    llm.on("chained", shell("echo fine && touch made.txt"), Reply("asked"))
    session = make(approval_allowlist=["echo *"])
    asked = Asked(session)
    assert session.delegate("simple").collect(20).ok and asked.events == []
    task = session.delegate("chained")
    asked.wait()
    session.deny(task)
    task.collect(20)
    assert not (tmp_path / "made.txt").exists()


@pytest.mark.parametrize("command", [
    "echo a; rm x", "echo a && rm x", "echo a || rm x", "echo a | sh", "echo `id`",
    "echo $(id)", "echo a > ~/.bashrc", "echo a & rm x", "echo a\nrm x", "echo 'unclosed",
])
def test_no_pattern_ever_matches_a_chained_command(command):
    assert command_words(command) is None
    policy = ApprovalPolicy.checked("ask", ["echo *", "*"])
    assert assess("run_shell", {"command": command}, "needs", policy, ()).action == "ask"


@pytest.mark.parametrize("command", [
    "rm -rf /", "sudo rm -rf --no-preserve-root /", "rm -fr ~", "rm -r -f .", "rm -rf *",
    "mkfs.ext4 /dev/sda1", "dd if=/dev/zero of=/dev/sda", ":(){ :|:& };:",
    "bomb(){ bomb|bomb& }; bomb", "chmod -R 777 /", "ls; rm -rf /", "echo x > /dev/sda",
    "/sbin/shutdown -h now", "kill -9 -1", "find / -delete",
])
def test_commands_that_destroy_the_machine_are_always_refused(command):
    assert refusal(command)
    policy = ApprovalPolicy.checked("auto", ["*"])
    assert assess("run_shell", {"command": command}, "needs", policy, ("*",)).action == "refuse"


@pytest.mark.parametrize("command", ["rm -rf build", "ls /", "rm notes.txt", "chmod -R a+r docs",
                                     "dd if=a.img of=b.img", "echo rm -rf /tmp/x"])
def test_ordinary_commands_are_not_refused(command):
    assert refusal(command) is None


def test_a_refused_command_never_runs_even_under_auto(make, llm):
    llm.on("go", shell("rm -rf ~"), Reply("fine"))
    result = make(approval="auto").delegate("go").collect(20)
    assert "refused" in tool_message(result) and "never run" in tool_message(result)


def test_a_user_function_opts_in_and_file_writes_by_a_setting(make, llm, tmp_path):
    @hj.tool(requires_approval=True)
    def launch(target: str) -> str:
        """Launch it."""
        return f"launched {target}"

    @hj.tool
    def harmless() -> str:
        return "ok"

    llm.on("go", Reply(tool_calls=[ToolCall("launch", {"target": "moon"}, id="c1"),
                                   ToolCall("write_file", {"path": "a.txt", "content": "x"},
                                            id="c2"),
                                   ToolCall("harmless", {}, id="c3")]), Reply("done"))
    session = make(approve_file_writes=True)
    asked = Asked(session)
    task = session.delegate("go", tools=[launch, harmless], toolsets=["files"])
    asked.wait(2)
    assert [p.call_id for p in task.check().pending_approvals] == ["c1", "c2"]
    assert "approve_file_writes" in task.check().pending_approvals[1].reason
    session.approve(task)  # the oldest: c1
    assert task.state is hj.TaskState.AWAITING_APPROVAL
    session.deny(task, "c2", "read-only today")
    result = task.collect(20)
    assert "launched moon" in tool_message(result, "c1")
    assert "read-only today" in tool_message(result, "c2")
    assert tool_message(result, "c3") == "ok"
    assert not (tmp_path / "a.txt").exists()


def test_pending_arguments_are_redacted_and_bad_decisions_say_what_to_do(make, llm):
    llm.on("go", shell(f"curl -H 'Authorization: {SECRET}' localhost"), Reply("done"))
    session = make()
    asked = Asked(session)
    task = session.delegate("go")
    asked.wait()
    [pending] = task.check().pending_approvals
    assert SECRET not in pending.arguments and SECRET not in repr(asked.events)
    assert SECRET not in json.dumps(task.check().to_dict())
    with pytest.raises(hj.HermesError, match="no pending call 'c9'; pending: c1"):
        session.approve(task, "c9")
    with pytest.raises(hj.ConfigurationError, match="Bad approval pattern"):
        session.approve(task, remember="ls; rm x")
    assert task.state is hj.TaskState.AWAITING_APPROVAL  # a bad line changed nothing
    session.deny(task)
    task.collect(20)


def test_a_group_is_approved_as_a_whole(make, llm):
    def respond(request: RecordedRequest) -> Reply:
        if request.tool_results:
            return Reply("done")
        return shell(f"echo {request.first_user_text.split()[-1]}")

    llm.responder = respond
    session = make()
    asked = Asked(session)
    group = session.map("say {item}", ["a", "b", "c"])
    asked.wait(3)
    assert group.check().counts == {"awaiting_approval": 3}
    assert group.approve() == 3
    assert all(r.ok for r in group.collect(20))


def test_a_parent_agent_cannot_approve_its_childrens_calls(make, llm):
    session = make()
    agent = hj.Agent(session, name="boss")
    names = agent._registry.names
    assert "delegate_task" in names and not [n for n in names if "approv" in n or "deny" in n]
    # A child asks; the parent's model tries to approve it: there is no such tool.
    llm.on("child", shell("echo hi"))
    asked = Asked(session)
    child = session.delegate("child", owner=agent.owner_id)
    asked.wait()
    llm.on("approve", Reply(tool_calls=[ToolCall("approve_task", {"task_id": child.id})]),
           Reply("I cannot"))
    agent.ask("approve t1")
    assert child.state is hj.TaskState.AWAITING_APPROVAL
    assert "no tool 'approve_task'" in llm.requests[-1].messages[-1]["content"]
    session.cancel(child)


def test_a_parent_agents_own_shell_calls_never_run_unapproved(make, llm, tmp_path):
    session = make()
    agent = hj.Agent(session, name="boss", toolsets=["shell"])
    llm.on("tidy", shell("touch made.txt"), Reply("could not"))
    agent.ask("tidy up")
    assert "cannot wait for one" in llm.requests[-1].messages[-1]["content"]
    assert not (tmp_path / "made.txt").exists()


def test_the_demo_model_asks_for_a_backticked_command_and_waits(tmp_path):
    from hermes_jupyter.demo import demo_session

    with demo_session(workspace=tmp_path, pace=0, toolsets=["shell"]) as session:
        asked = Asked(session)
        task = session.delegate("Say hi with `echo hi there`")
        asked.wait()
        [pending] = task.check().pending_approvals
        assert json.loads(pending.arguments) == {"command": "echo hi there"}
        session.approve(task)
        assert "Ran `echo hi there`: hi there." in task.collect(20).summary


def test_the_panel_approves_and_denies_over_the_comm(make, llm):
    """The JupyterLab panel's requests: approve one waiting call, deny another with a reason."""
    from hermes_jupyter.notebook import comm as hcomm

    from .test_comm import fake_shell, open_comm

    llm.on("first", shell("echo from-the-panel"), Reply("first done"))
    llm.on("second", shell("rm made.txt"), Reply("second done"))
    session = make()
    asked = Asked(session)
    first, second = session.delegate("first"), session.delegate("second")
    asked.wait(2)
    ip = fake_shell()
    hcomm.register(ip, hcomm.session_tasks(session))
    comm = open_comm(ip)
    assert "approve" in comm.sent[0]["ops"] and "deny" in comm.sent[0]["ops"]
    reply = comm.request("approve", task=first.id)
    assert reply["ok"] and reply["message"] == f"Approved run_shell (c1) for {first.id}."
    reply = comm.request("deny", task=second.id, call_id="c1", reason="keep the file")
    assert reply["ok"] and "Denied run_shell" in reply["message"]
    assert "from-the-panel" in tool_message(first.collect(20))
    assert "keep the file" in tool_message(second.collect(20))
    refused = comm.request("approve", task=first.id)
    assert refused["ok"] is False and "no tool call awaiting approval" in refused["error"]
    bad = comm.request("approve", task=first.id, call_id=7)
    assert bad["ok"] is False and "call_id" in bad["error"]
