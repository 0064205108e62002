"""`%resume_task` in a real IPython shell: an interrupted task of an earlier kernel goes on
from its journaled conversation; every refusal is one line that fails the cell."""

from __future__ import annotations

import subprocess
import sys

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
