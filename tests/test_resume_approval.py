"""Resuming a task whose process died while a tool call waited for a person's approval.

A real kernel-like process runs a task over FakeLLM against a real SQLite journal and is
killed with SIGKILL while a call waits for approval (or, the variant, once it was approved
and is running); a later session resumes it. On main both read "may or may not have taken
effect", though a call that was never approved did not run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import hermes_jupyter as hj
from hermes_jupyter.engine.conversation import (
    CALLS_KEY,
    INTERRUPTED_CALL,
    NOT_STARTED_CALL,
    UNAPPROVED_CALL,
    Conversation,
    resumed_transcript,
)
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall

from .conftest import FAST_RETRY, SECRET

KERNEL = """
import sys, threading, hermes_jupyter as hj
from pathlib import Path
runs = Path({ws!r}) / "runs.txt"

@hj.tool(requires_approval=True)
def launch(target: str) -> str:
    \"\"\"Launch something.\"\"\"
    with runs.open("a") as f:
        f.write(target + "\\n")
    sys.stdout.write("running\\n"); sys.stdout.flush()
    threading.Event().wait()
    return "never"

def note(text: str) -> str:
    \"\"\"Write a note down.\"\"\"
    with runs.open("a") as f:
        f.write("note " + text + "\\n")
    return "noted"

s = hj.Session(model="m", base_url={url!r}, api_keys=[{secret!r}], workspace={ws!r},
               journal=True)
asked = threading.Event()
s.subscribe(lambda e: asked.set() if e.kind == "approval_requested" else None)
t = s.delegate("launch it", name="waiter", tools=[launch, note])
asked.wait(30)
sys.stdout.write("asked\\n"); sys.stdout.flush()
if {approve!r}:
    s.approve(t)              # it runs and blocks in launch
sys.stdin.readline()          # the test says when the task is where it wants it
s.journal.flush()             # what a kernel living 0.2 s more would have written
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()          # killed here
"""


def _runs(ws: Path) -> list[str]:
    path = ws / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


@hj.tool(requires_approval=True)
def launch(target: str) -> str:
    """Launch something."""
    return f"launched {target}"


def _kill_waiting(llm: FakeLLM, ws: Path, *, approve: bool) -> None:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KERNEL.format(
        ws=str(ws), url=llm.base_url, secret=SECRET, approve=approve))], text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline() == "asked\n"
        if approve:
            assert proc.stdout.readline() == "running\n"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "ready\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _session(llm: FakeLLM, ws: Path) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=ws,
                      journal=True, retry=FAST_RETRY)


def _turn() -> Reply:
    return Reply(tool_calls=[ToolCall("note", {"text": "first"}, id="c1"),
                             ToolCall("launch", {"target": "rocket"}, id="c2")])


def _tool_texts(messages: list[dict[str, object]]) -> dict[object, object]:
    return {m["tool_call_id"]: m["content"] for m in messages if m.get("role") == "tool"}


def test_a_call_killed_while_awaiting_approval_did_not_run_and_asks_again(llm, tmp_path):
    llm.on(lambda r: len(r.messages) == 2, _turn())
    _kill_waiting(llm, tmp_path, approve=False)
    assert _runs(tmp_path) == []  # nothing ran: the approval desk holds the whole turn
    asked = threading.Event()
    llm.on(lambda r: UNAPPROVED_CALL in str(r.messages) and r.tool_results == 2,
           Reply(tool_calls=[ToolCall("launch", {"target": "rocket"}, id="c3")]))
    llm.script(Reply("launched after approval"))
    with _session(llm, tmp_path) as later:
        later.subscribe(lambda e: asked.set() if e.kind == "approval_requested" else None)
        task = later.resume("t1", tools=[launch])
        assert asked.wait(30)  # the call asked again waits for a person again
        assert task.check().state is hj.TaskState.AWAITING_APPROVAL
        first = next(r for r in llm.requests if UNAPPROVED_CALL in str(r.messages)).messages
        assert _tool_texts(first) == {"c1": NOT_STARTED_CALL, "c2": UNAPPROVED_CALL}
        assert all(CALLS_KEY not in m for m in first)  # the mark is never sent
        later.approve(task)
        assert task.collect(10).summary == "launched after approval"
    assert _runs(tmp_path) == []  # the first kernel's tool never ran


def test_a_call_killed_after_approval_while_running_may_have_taken_effect(llm, tmp_path):
    llm.on(lambda r: len(r.messages) == 2, _turn())
    llm.script(Reply("checked, went on"))
    _kill_waiting(llm, tmp_path, approve=True)
    assert _runs(tmp_path) == ["note first", "rocket"]
    with _session(llm, tmp_path) as later:
        task = later.resume("t1", tools=[launch])
        assert task.collect(10).summary == "checked, went on"
    assert _tool_texts(llm.requests[-1].messages) == {"c1": "noted", "c2": INTERRUPTED_CALL}


def test_calls_after_the_one_running_did_not_start():
    conversation = Conversation(lambda data: data)
    kept: list[tuple[int, list[dict[str, object]]]] = []
    conversation.listener = lambda start, messages: kept.append((start, messages))
    calls = [{"id": c, "type": "function", "function": {"name": "f", "arguments": "{}"}}
             for c in ("a", "b", "c")]
    transcript = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                  {"role": "assistant", "content": "", "tool_calls": calls}]
    conversation.step(transcript)
    conversation.mark(["b"], "approval")
    assert kept[-1][0] == 2 and kept[-1][1][0][CALLS_KEY] == {"b": "approval"}
    resumed = resumed_transcript(conversation.messages(), "s")
    assert _tool_texts(resumed) == {"a": NOT_STARTED_CALL, "b": UNAPPROVED_CALL,
                                    "c": NOT_STARTED_CALL}
    conversation.mark(["b"], None)  # decided: the calls run in order from here
    assert CALLS_KEY not in conversation.messages()[2]
    transcript.append({"role": "tool", "tool_call_id": "a", "content": "done"})
    conversation.step(transcript)
    resumed = resumed_transcript(conversation.messages(), "s")
    assert _tool_texts(resumed) == {"a": "done", "b": INTERRUPTED_CALL, "c": NOT_STARTED_CALL}


DEMO_KERNEL = """
import sys, threading
from hermes_jupyter.demo import demo_session
s = demo_session(journal=True, workspace={ws!r}, pace=0)
asked = threading.Event()
s.subscribe(lambda e: asked.set() if e.kind == "approval_requested" else None)
s.delegate("Run `echo hi` then summarise", toolsets=["shell"], name="jt")
asked.wait(30)
s.journal.flush()
sys.stdout.write("asked\\n"); sys.stdout.flush()
sys.stdin.readline()          # killed here
"""


def test_the_reviewers_demo_task_asks_again_after_resuming_and_runs_once_approved(tmp_path):
    from hermes_jupyter.demo import demo_session

    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DEMO_KERNEL.format(
        ws=str(tmp_path)))], text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "asked\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    with demo_session(journal=True, workspace=tmp_path, pace=0) as later:
        asked = threading.Event()
        later.subscribe(lambda e: asked.set() if e.kind == "approval_requested" else None)
        task = later.resume("jt", toolsets=["shell"])
        assert asked.wait(30)  # not "succeeded" with nobody approving anything
        assert task.check().state is hj.TaskState.AWAITING_APPROVAL
        later.approve(task)
        result = task.collect(30)
    assert result.ok and "hi" in result.summary
    texts = [m["content"] for m in result.transcript if m.get("role") == "tool"]
    assert texts[0] == UNAPPROVED_CALL and "hi" in texts[1]


def test_a_worker_awaiting_approval_tells_the_kernel_so_a_retry_knows_it_did_not_run():
    # The Dask retry goes on from the kernel's copy of the conversation (dask_backend): the
    # worker's mark must reach it through the op log like any step.
    from hermes_jupyter.core.secrets import Secrets
    from hermes_jupyter.engine.dask_attach import replay
    from hermes_jupyter.engine.dask_remote import NoHost, RemoteControl
    from hermes_jupyter.engine.task import Task
    from hermes_jupyter.tools import ToolRegistry

    secrets = Secrets([SECRET])

    def control() -> RemoteControl:
        task = Task(NoHost(), "t1", None, "g", "", "m", ToolRegistry([]), 5, None,
                    lambda *a, **k: None, lambda _id, _text: None, secrets)
        return RemoteControl(task, secrets)

    worker, kernel = control(), control()
    calls = [{"id": c, "type": "function", "function": {"name": "f", "arguments": "{}"}}
             for c in ("a", "b")]
    worker.conversation.step([{"role": "system", "content": "s"},
                              {"role": "user", "content": "g"},
                              {"role": "assistant", "content": "", "tool_calls": calls}])
    worker.conversation.mark(["a"], "approval")
    for op in worker.drain():
        replay(kernel, op)
    prior = kernel.conversation.messages()
    assert prior == worker.conversation.messages()
    assert _tool_texts(resumed_transcript(prior, "s")) == {"a": UNAPPROVED_CALL,
                                                            "b": NOT_STARTED_CALL}
