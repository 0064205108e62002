"""The SQLite journal: results outlive the session, unfinished tasks come back interrupted."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import hermes_jupyter as hj
from hermes_jupyter.engine.journal import Journal
from hermes_jupyter.testing import Reply, ToolCall

from .conftest import SECRET


def make(llm, tmp_path, **kw) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                      journal=True, **kw)


def test_results_survive_the_session(llm, tmp_path):
    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    llm.on("kept", Reply(tool_calls=[ToolCall("lookup", {"key": "abc"})]),
           Reply(text="kept summary"))
    with make(llm, tmp_path) as first:
        original = first.delegate("kept result", name="keeper", tools=[lookup]).collect(10)
    with make(llm, tmp_path) as second:
        [record] = second.history()
        assert (record.id, record.name, record.state) == ("t1", "keeper", hj.TaskState.SUCCEEDED)
        restored = record.result()
        assert restored == original
        assert restored.tool_trace[0].name == "lookup"
        second.delegate("new one").collect(10)
        assert len(second.history()) == 1  # the running session's own tasks are not history
    assert (tmp_path / ".hermes" / "tasks.sqlite").exists()


def test_tasks_left_running_by_a_dead_kernel_become_interrupted(llm, tmp_path):
    llm.default = Reply(text="never ends " * 1000, chunk_size=5, delay=0.01)
    kernel = textwrap.dedent(f"""
        import os, hermes_jupyter as hj
        s = hj.Session(model="m", base_url={llm.base_url!r}, api_keys=["k"],
                       workspace={str(tmp_path)!r}, journal=True)
        s.delegate("cut short", name="victim")
        s.delegate("never started", name="queued one", max_iterations=1)
        import sys; sys.stdin.readline()   # the test says when to die
        s.journal.flush()
        os._exit(0)                        # dies like a killed kernel: no clean-up at all
    """)
    proc = subprocess.Popen([sys.executable, "-c", kernel], stdin=subprocess.PIPE, text=True)
    llm.wait_for_chunks(2)
    proc.communicate("die\n", timeout=30)
    journal = Journal(tmp_path / ".hermes" / "tasks.sqlite")
    assert journal.interrupted >= 1
    victim = next(r for r in journal.records() if r.name == "victim")
    assert victim.state is hj.TaskState.INTERRUPTED and victim.exit_reason == "interrupted"
    assert victim.result() is None
    journal.close()


def test_no_key_is_stored(llm, tmp_path):
    with make(llm, tmp_path) as s:
        s.delegate("anything").collect(10)
    raw = (tmp_path / ".hermes" / "tasks.sqlite").read_bytes()
    assert SECRET.encode() not in raw
    rows = sqlite3.connect(tmp_path / ".hermes" / "tasks.sqlite").execute(
        "SELECT state FROM tasks").fetchall()
    assert rows == [("succeeded",)]


def test_history_without_a_journal_is_a_clear_error(session):
    try:
        session.history()
    except hj.ConfigurationError as err:
        assert "journal=True" in str(err)
    else:
        raise AssertionError("history() without a journal should raise")
