"""Resuming an interrupted task from its journaled conversation.

A real kernel-like process runs a task over FakeLLM against a real SQLite journal and is
killed with SIGKILL mid-task (in a model call, or in a tool call); a later session resumes
it. On main the journal kept neither context nor conversation, and there was no resume.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.conversation import INTERRUPTED_CALL, RESUMED_NOTE
from hermes_jupyter.testing import FakeLLM, RecordedRequest, Reply, ToolCall

from .conftest import FAST_RETRY, SECRET

KERNEL = """
import sys, threading, hermes_jupyter as hj
from pathlib import Path
notes = Path({ws!r}) / "notes.txt"

def note(text: str) -> str:
    \"\"\"Write a note down.\"\"\"
    with notes.open("a") as f:
        f.write(text + "\\n")
    return f"noted {{text}} with {secret}"        # a key in a tool result

def block() -> str:
    \"\"\"Wait for something.\"\"\"
    sys.stdout.write("blocked\\n"); sys.stdout.flush()
    threading.Event().wait()
    return "never"

s = hj.Session(model="m", base_url={url!r}, api_keys=[{secret!r}], workspace={ws!r},
               journal=True)
s.delegate("resume me, key {secret}", context="context with {secret}", name="victim",
           tools=[note, block])
if {steer!r}:
    s.steer("victim", {steer!r})   # delivered before the first or the second model call
sys.stdin.readline()          # the test says when the task is where it wants it
s.journal.flush()             # what a kernel living 0.2 s more would have written
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()          # killed here
"""


def _note_runs(ws: Path) -> list[str]:
    path = ws / "notes.txt"
    return path.read_text().splitlines() if path.exists() else []


def _tools(ws: Path) -> list[object]:
    def note(text: str) -> str:
        """Write a note down."""
        with (ws / "notes.txt").open("a") as f:
            f.write(text + "\n")
        return f"noted {text}"

    def block() -> str:
        """Wait for something."""
        return "done waiting"

    return [note, block]


def _kill_mid_task(llm: FakeLLM, ws: Path, *, in_tool: bool, steer: str = "") -> None:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KERNEL.format(
        ws=str(ws), url=llm.base_url, secret=SECRET, steer=steer))], text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if in_tool:
            assert proc.stdout.readline() == "blocked\n"
        else:
            llm.wait_for_requests(2, timeout=30)  # the second model call is held
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "ready\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)


@pytest.fixture
def held() -> Iterator[threading.Event]:
    gate = threading.Event()
    yield gate
    gate.set()


def _session(llm: FakeLLM, ws: Path) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=ws,
                      journal=True, retry=FAST_RETRY)


def _journal_bytes(ws: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (ws / ".hermes").glob("tasks.sqlite*"))


def _resumed(request: RecordedRequest) -> bool:
    return any(m.get("content") == RESUMED_NOTE for m in request.messages)


def test_a_task_killed_in_a_model_call_resumes_from_its_conversation(llm, tmp_path, held):
    llm.on(lambda r: r.tool_results == 0, Reply(tool_calls=[ToolCall("note", {"text": "one"})]))
    llm.on(lambda r: not _resumed(r) and held.wait(30), Reply("never read"))
    llm.script(Reply("finished after resuming"))
    _kill_mid_task(llm, tmp_path, in_tool=False, steer="steered: be brief")
    assert _note_runs(tmp_path) == ["one"]
    assert SECRET.encode() not in _journal_bytes(tmp_path)  # goal, context, tool result

    with _session(llm, tmp_path) as later:
        [old] = later.history()
        assert old.state is hj.TaskState.INTERRUPTED
        assert old.context == "context with ***" or SECRET not in old.context
        task = later.resume("t1", tools=_tools(tmp_path))
        result = task.collect(10)
        assert result.state is hj.TaskState.SUCCEEDED
        assert result.summary == "finished after resuming"
        assert task.resumed_from == old.key == task.check().resumed_from
        assert task.name == "victim" and task.goal == old.goal
        # The model saw the earlier transcript: the call and its result, then the note.
        sent = llm.requests[-1].messages
        steer = {"role": "user", "content": "[steer from parent] steered: be brief"}
        assert sent.count(steer) == 1  # the steering delivered before the kill goes on too
        sent.remove(steer)
        roles = [m["role"] for m in sent]
        assert roles == ["system", "user", "assistant", "tool", "user"]
        assert sent[1]["content"].startswith("Goal:\nresume me") and "context with" in \
            sent[1]["content"]
        assert sent[2]["tool_calls"][0]["function"]["name"] == "note"
        assert sent[3]["content"].startswith("noted one with") and SECRET not in sent[3][
            "content"]
        assert sent[4]["content"] == RESUMED_NOTE
        assert _note_runs(tmp_path) == ["one"]  # the completed call did not run again
        # Its own conversation is journaled under the new task, ready for another resume.
        later.journal.flush()
        with pytest.raises(hj.HermesError, match=f"already resumed as {later.journal.session_id}/"
                                                 f"{task.id}") as err:
            later.resume(old.key)
        assert "\n" not in str(err.value)
    assert SECRET.encode() not in _journal_bytes(tmp_path)


def test_a_task_killed_in_a_tool_call_resumes_with_that_call_interrupted(llm, tmp_path):
    llm.on(lambda r: len(r.messages) == 2,
           Reply(tool_calls=[ToolCall("note", {"text": "kept"}), ToolCall("block")]))
    llm.script(Reply("went on without it"))
    _kill_mid_task(llm, tmp_path, in_tool=True)
    with _session(llm, tmp_path) as later:
        task = later.resume(later.history()[0])
        assert task.collect(10).summary == "went on without it"
    sent = llm.requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool", "user"]
    calls = [c["id"] for c in sent[2]["tool_calls"]]
    assert [m["tool_call_id"] for m in sent[3:5]] == calls
    assert sent[3]["content"].startswith("noted kept")
    assert sent[4]["content"] == INTERRUPTED_CALL
    assert _note_runs(tmp_path) == ["kept"]  # neither call ran again (block had no tool now)


def test_only_an_interrupted_task_is_resumed_and_each_refusal_is_one_line(llm, tmp_path):
    llm.default = Reply("done")
    with _session(llm, tmp_path) as first:
        first.delegate("finished fine").collect(10)
    with _session(llm, tmp_path) as later:
        key = later.history()[0].key
        for ref, words in ((key, "has succeeded; only an interrupted task can be resumed"),
                           ("t9", "No task 't9'"), ("nokernel/t1", "No task")):
            with pytest.raises(hj.HermesError, match=words) as err:
                later.resume(ref)
            assert "\n" not in str(err.value)
        assert later.tasks() == []
    with pytest.raises(hj.ConfigurationError, match="journal=True"), \
            hj.Session(model="m", base_url=llm.base_url, api_keys=["k"],
                       workspace=tmp_path) as plain:
        plain.resume("t1")


def test_the_conversation_is_journaled_step_by_step_not_whole_each_turn(llm, tmp_path):
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value of {key}"

    llm.script(*(Reply(tool_calls=[ToolCall("lookup", {"key": f"k{i}"})]) for i in range(4)),
               Reply("all looked up"))
    with _session(llm, tmp_path) as s:
        result = s.delegate("look four keys up", tools=[lookup]).collect(10)
        s.journal.flush()
        db = sqlite3.connect(tmp_path / ".hermes" / "tasks.sqlite")
        rows = db.execute("SELECT seq, messages FROM turns ORDER BY seq").fetchall()
        db.close()
    # Each step stored only what it added: the rows add up to the transcript, once.
    stored = [m for _, text in rows for m in __import__("json").loads(text)]
    assert stored == result.transcript[:len(stored)]
    assert len(stored) >= len(result.transcript) - 1  # all but the final answer (in result)
    assert sorted(seq for seq, _ in rows) == [seq for seq, _ in rows]
    assert len({seq for seq, _ in rows}) == len(rows) > 4


def test_two_threads_resuming_one_task_make_one_task(llm, tmp_path):
    llm.default = Reply("done")
    path = tmp_path / ".hermes" / "tasks.sqlite"
    path.parent.mkdir()
    hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
               journal=True).close()
    with sqlite3.connect(path) as db:  # a row whose owner (none: the first schema's) is gone
        db.execute("INSERT INTO tasks (session, id, goal, model, state, created_at) VALUES "
                   "('old', 't1', 'once only', 'm', 'running', 1.0)")
    db.close()
    with _session(llm, tmp_path) as s:
        start = threading.Barrier(8)
        outcomes: list[object] = []

        def resume() -> None:
            start.wait()
            try:
                outcomes.append(s.resume("t1"))
            except hj.HermesError as err:
                outcomes.append(str(err))

        threads = [threading.Thread(target=resume) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        [task] = [o for o in outcomes if isinstance(o, hj.Task)]
        assert len(outcomes) == 8 and len(s.tasks()) == 1
        assert all("already resumed as" in o for o in outcomes if isinstance(o, str))
        assert task.collect(10).summary == "done"
