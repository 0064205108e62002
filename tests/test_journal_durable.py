"""What the journal promised survives a killed kernel, and a live kernel keeps its tasks.

Real processes killed by SIGKILL the moment they say (through a pipe) that `collect()` or
`delegate()` has returned; no sleeps. On main, rows reached the disk up to 0.2 s later, so
these kills lost finished results and whole batches of delegated tasks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine import lease
from hermes_jupyter.engine.journal import Journal
from hermes_jupyter.testing import Reply

TASKS = 20
KERNEL = """
import sys, hermes_jupyter as hj
s = hj.Session(model="m", base_url={url!r}, api_keys=["k"], workspace={ws!r}, journal=True,
               max_concurrent={concurrent})
tasks = [s.delegate(f"task {{i}}", name=f"n{{i}}") for i in range({n})]
if {collect}:
    results = [t.collect(30) for t in tasks]
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # never answered: the test kills us here
"""


def _kernel(llm, ws: Path, *, collect: bool, n: int = TASKS, concurrent: int = 8
            ) -> subprocess.Popen[str]:
    code = KERNEL.format(url=llm.base_url, ws=str(ws), n=n, collect=collect,
                         concurrent=concurrent)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _kill_when_ready(proc: subprocess.Popen[str]) -> None:
    line = proc.stdout.readline() if proc.stdout else ""
    os.kill(proc.pid, signal.SIGKILL)  # at once: no clean-up, no flush, no atexit
    proc.wait(30)
    assert line == "ready\n", f"the kernel died before it was ready: {line!r}"


def _rows(ws: Path) -> list[tuple[str, str, str | None]]:
    db = sqlite3.connect(ws / ".hermes" / "tasks.sqlite")
    try:
        return db.execute("SELECT name, state, result FROM tasks ORDER BY rowid").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("round_", range(3))
def test_results_collect_returned_survive_kill_9(llm, tmp_path, round_):
    llm.default = Reply(text="kept " * 20, chunk_size=10)
    _kill_when_ready(_kernel(llm, tmp_path, collect=True))
    rows = _rows(tmp_path)
    assert len(rows) == TASKS
    assert all(state == "succeeded" and result for _, state, result in rows), rows
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    journal=True) as later:
        restored = [r.result() for r in later.history()]
    assert all(r is not None and r.summary.startswith("kept") for r in restored)


@pytest.mark.parametrize("round_", range(3))
def test_tasks_delegate_returned_survive_kill_9(llm, tmp_path, round_):
    llm.default = Reply(text="slow " * 200, chunk_size=1, delay=0.01)
    _kill_when_ready(_kernel(llm, tmp_path, collect=False, concurrent=4))
    assert sorted(name for name, _, _ in _rows(tmp_path)) == sorted(f"n{i}" for i in
                                                                    range(TASKS))
    journal = Journal(tmp_path / ".hermes" / "tasks.sqlite")
    try:
        assert journal.interrupted == TASKS  # their owner is dead: none is left "running"
        assert {r.state for r in journal.records()} == {hj.TaskState.INTERRUPTED}
    finally:
        journal.close()


def test_opening_the_journal_leaves_a_live_kernels_tasks_alone(llm, tmp_path):
    llm.default = Reply(text="long " * 2000, chunk_size=1, delay=0.01)
    proc = _kernel(llm, tmp_path, collect=False, n=3, concurrent=1)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        other = Journal(tmp_path / ".hermes" / "tasks.sqlite")  # a second kernel opens it
        assert other.interrupted == 0
        assert {r.state for r in other.records()} <= {hj.TaskState.QUEUED,
                                                       hj.TaskState.RUNNING}
        assert all(json.loads(r.owner or "{}").get("pid") == proc.pid
                   for r in other.records())
        other.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    after = Journal(tmp_path / ".hermes" / "tasks.sqlite")  # now the owner is gone
    try:
        assert after.interrupted == 3
    finally:
        after.close()


def _owner(**changes: object) -> str:
    data = json.loads(lease.this_process())
    data.update(changes)
    return json.dumps(data)


def test_liveness_of_owners():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert lease.alive(lease.this_process()) is True
    assert lease.alive(_owner(pid=dead.pid)) is False
    assert lease.alive(_owner(start=1)) is False  # our pid, but another process's start time
    assert lease.alive(_owner(boot="another-boot")) is False
    assert lease.alive(_owner(host=socket.gethostname() + "-elsewhere")) is None
    assert lease.alive(json.dumps({"kind": "dask-cluster", "address": "tcp://x"})) is None
    assert lease.alive("not json") is None
    assert lease.alive(None) is False  # written before owners existed


def test_only_rows_of_gone_owners_are_interrupted(tmp_path):
    path = tmp_path / "tasks.sqlite"
    Journal(path).close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owners = {"live": lease.this_process(), "dead": _owner(pid=dead.pid),
              "remote": _owner(host="elsewhere"), "cluster": '{"kind": "cluster"}'}
    db = sqlite3.connect(path)
    for name, owner in owners.items():
        db.execute("INSERT INTO tasks (session, id, name, goal, model, state, created_at, owner)"
                   " VALUES ('old', ?, ?, 'g', 'm', 'running', 1.0, ?)", (name, name, owner))
    db.commit()
    db.close()
    journal = Journal(path)
    try:
        states = {r.name: r.state.value for r in journal.records()}
    finally:
        journal.close()
    assert states == {"live": "running", "dead": "interrupted", "remote": "running",
                      "cluster": "running"}


def test_a_killed_owner_not_yet_reaped_is_gone():
    # A kernel killed with SIGKILL stays a zombie until its server polls it: its /proc entry
    # (and start time) remain, yet it runs nothing.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = json.dumps({"kind": "process", "host": socket.gethostname(), "pid": child.pid,
                            "start": lease._start_time(child.pid)})
        assert lease.alive(owner) is True
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, left unreaped
        assert Path(f"/proc/{child.pid}/stat").exists()
        assert lease.alive(owner) is False
    finally:
        child.wait()
