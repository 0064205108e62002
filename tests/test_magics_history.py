
"""The journal from the notebook: switched on after the first task it takes effect (and says
when), and `%list_tasks --history` shows the tasks of earlier kernels."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import hermes_jupyter as hj
from hermes_jupyter.notebook import kernel as current
from hermes_jupyter.testing import Reply

from .test_magics import cell, rejected

ROOT = Path(__file__).resolve().parents[1]

EARLIER_KERNEL = textwrap.dedent("""
    import os, sys, threading
    import hermes_jupyter as hj
    from hermes_jupyter.testing import FakeLLM, Reply

    llm = FakeLLM().__enter__()
    llm.on("quick", Reply(text="quick answer"))
    llm.default = Reply(text="never", first_delay=60)
    s = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=sys.argv[1],
                   journal=True)
    s.collect(s.delegate("quick one", name="quick"), 30)
    started = threading.Event()
    s.subscribe(lambda e: e.kind == "started" and e.task_id == "t2" and started.set())
    s.delegate("slow one")
    started.wait(30)  # the journal saw it before this subscriber did
    s.journal.flush()
    os._exit(0)  # the kernel dies with t2 running
""")


def journalled(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT goal, state FROM tasks ORDER BY created_at").fetchall()


def test_switching_the_journal_on_after_the_first_task_takes_effect(live, llm, capsys):
    llm.default = Reply(text="done")
    cell(live, "a = %delegate before the journal\n_ = a.collect(10)", capsys)
    _, out, _ = cell(live, "%config HermesJupyter.journal = True", capsys)
    assert out == ("hermes_jupyter: journal on from the next task: tasks are kept in "
                   ".hermes/tasks.sqlite under the workspace (tasks started before are not); "
                   "%list_tasks --history shows those of earlier kernels.\n")
    view, _, _ = cell(live, "%hermes_config", capsys)
    assert repr(view).endswith("· no journal; new journal settings apply at the next task")
    cell(live, "b = %delegate with the journal\n_ = b.collect(10)", capsys)
    assert live.user_ns["b"].id == "t2"  # ids go on counting in the new session
    hj.get_session().journal.flush()
    assert journalled(Path(".hermes/tasks.sqlite")) == [("with the journal", "succeeded")]
    view, _, _ = cell(live, "%hermes_config", capsys)
    assert repr(view).endswith("1 succeeded · journal on")
    report, _, _ = cell(live, "%check_task t1", capsys)  # the earlier task stays reachable
    assert report.summary == "done"


def test_the_journal_waits_for_running_tasks_and_says_so(live, llm, capsys):
    llm.default = Reply(text="slow", first_delay=0.5)
    task, _, _ = cell(live, "%delegate running", capsys)
    _, out, _ = cell(live, "%config HermesJupyter.journal = True", capsys)
    assert out.startswith("hermes_jupyter: journal on once t1 end: ")
    message = rejected(live, "%list_tasks --history", capsys)
    assert message == ("%list_tasks: No journal is kept, so earlier kernels' tasks are not "
                       "known (new journal settings wait for 1 running task to end (t1)).")
    task.collect(10)
    table, _, _ = cell(live, "%list_tasks --history", capsys)
    assert repr(table) == "No tasks of earlier kernels in the journal."
    assert current.peek_session().journal is not None


def test_list_tasks_history_shows_earlier_kernels_with_interrupted_ones_marked(
        live, llm, capsys, tmp_path):
    subprocess.run([sys.executable, "-c", EARLIER_KERNEL, str(tmp_path)], check=True,
                   cwd=ROOT, timeout=60, env={"PYTHONPATH": str(ROOT)})
    cell(live, "%config HermesJupyter.journal = True\n%delegate mine", capsys)
    table, _, _ = cell(live, "h = %list_tasks --history\nh", capsys)
    rows = repr(table).splitlines()
    assert rows[0].split()[:5] == ["kernel", "id", "name", "state", "model"]
    assert rows[1].split()[1:5] == ["t1", "quick", "succeeded", "m"]
    assert rows[2].split()[1:4] == ["t2", "interrupted", "⚠"] and "interrupted" in rows[2]
    assert rows[3] == ("2 tasks of 1 earlier kernel: 1 succeeded, 1 interrupted · "
                       "table[i].result() gives a TaskResult, or None for a task that never "
                       "ended (interrupted)")
    assert table[0].result().summary == "quick answer" and table[1].result() is None
    assert table[0].has_result and not table[1].has_result
    session_id = table[0].session
    assert repr(table[0]) == (f"<JournalRecord {session_id} t1 'quick': succeeded [completed] "
                              "'quick answer'>")
    assert repr(table[1]).startswith(f"<JournalRecord {session_id} t2: interrupted")
    assert "transcript" not in repr(list(table))  # a row is one short line, not its result
    html = table._repr_html_()
    assert "<table" in html and "interrupted ⚠" in html and "mine" not in repr(table)
