"""`%resume_task` in a real IPython shell: an interrupted task of an earlier kernel goes on
from its journaled conversation; every refusal is one line that fails the cell."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import hermes_jupyter as hj
from hermes_jupyter.testing import Reply

from .test_magics import cell, rejected
from .test_magics_history import EARLIER_KERNEL, ROOT


def test_resume_task_goes_on_with_an_interrupted_task_and_refuses_in_one_line(
        live, llm, capsys, tmp_path):
    subprocess.run([sys.executable, "-c", EARLIER_KERNEL, str(tmp_path)], check=True,
                   cwd=ROOT, timeout=60, env={"PYTHONPATH": str(ROOT)})
    llm.default = Reply(text="resumed answer")
    cell(live, "%config HermesJupyter.journal = True", capsys)
    assert rejected(live, "%resume_task", capsys).startswith(
        "%resume_task: the following arguments are required: ID")
    assert "has succeeded; only an interrupted task can be resumed" in rejected(
        live, "%resume_task t1", capsys)
    assert "'nosuch' is not a function in the notebook" in rejected(
        live, "%resume_task t2 -t nosuch", capsys)
    assert hj.get_session().tasks() == []  # refused lines changed nothing

    _, out, _ = cell(live, "r = %resume_task 't2' --toolsets 'none'", capsys)  # shell words
    task = live.user_ns["r"]
    assert task.tools.names == []
    old = next(r for r in hj.get_session().history() if r.id == "t2")
    assert out.startswith(f"Resumed {old.key} as {task.id} from ")
    assert task.resumed_from == old.key
    assert task.collect(10).summary == "resumed answer"
    assert llm.requests[-1].messages[1]["content"] == "Goal:\nslow one"
    again = rejected(live, "%resume_task t2", capsys)
    assert f"was already resumed as {hj.get_session().journal.session_id}/{task.id}" in again


NAMED_KERNEL = textwrap.dedent("""
    import os, sys, threading
    import hermes_jupyter as hj
    from hermes_jupyter.testing import FakeLLM, Reply

    llm = FakeLLM().__enter__()
    llm.default = Reply(text="never", first_delay=60)
    s = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=sys.argv[1],
                   journal=True)
    started = threading.Event()
    s.subscribe(lambda e: e.kind == "started" and started.set())
    s.delegate("slow named one", name="my job")
    started.wait(30)  # the journal saw it before this subscriber did
    s.journal.flush()
    os._exit(0)  # the kernel dies with "my job" running
""")


def test_resume_task_takes_a_name_from_an_earlier_kernels_history(live, llm, capsys, tmp_path):
    for _ in range(2):  # two dead kernels each left a "my job" interrupted
        subprocess.run([sys.executable, "-c", NAMED_KERNEL, str(tmp_path)], check=True,
                       cwd=ROOT, timeout=60, env={"PYTHONPATH": str(ROOT)})
    with sqlite3.connect(tmp_path / ".hermes" / "tasks.sqlite") as db:  # owners long gone
        db.executemany("INSERT INTO tasks (session, id, name, goal, model, state, created_at) "
                       "VALUES ('old', ?, 'twin', 'g', 'm', 'running', ?)",
                       [("t1", 1.0), ("t2", 2.0)])
    db.close()
    llm.default = Reply(text="resumed answer")
    cell(live, "%config HermesJupyter.journal = True", capsys)
    unknown = rejected(live, "%resume_task 'no such job'", capsys)
    assert unknown.startswith("%resume_task: No task 'no such job'. Known tasks: ")
    assert unknown.endswith("Use %list_tasks --history (or history()) to see them.")
    assert rejected(live, "%resume_task twin", capsys) == (
        "%resume_task: 2 interrupted tasks of kernel old are named 'twin': old/t1, old/t2; "
        "resume one by its kernel/id.")
    assert hj.get_session().tasks() == []  # refused lines changed nothing

    _, out, _ = cell(live, "r = %resume_task 'my job'", capsys)
    task = live.user_ns["r"]
    mine = [r for r in hj.get_session().history() if r.name == "my job"]
    newest = max(mine, key=lambda r: r.created_at)
    assert task.resumed_from == newest.key and task.name == "my job"
    assert out.startswith(f"Resumed {newest.key} as {task.id} 'my job' from ")
    assert task.collect(10).summary == "resumed answer"
    again = rejected(live, "%resume_task 'my job'", capsys)
    assert f"Task {newest.key} was already resumed as " in again
