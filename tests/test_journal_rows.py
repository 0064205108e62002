"""No row stops the journal, and older journal files are migrated in place.

On main one bad row (a lone surrogate in a goal, a NaN model) killed the writer thread: every
later task went unjournaled, close() blocked, and another kernel got `database is locked`.
"""

from __future__ import annotations

import logging
import sqlite3
from types import SimpleNamespace

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.journal import SCHEMA_VERSION, Journal
from hermes_jupyter.testing import Reply

from .conftest import SECRET

# The schema of the first journal (main before owners and versions), copied verbatim.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    session TEXT NOT NULL, id TEXT NOT NULL, name TEXT, goal TEXT NOT NULL, model TEXT NOT NULL,
    state TEXT NOT NULL, created_at REAL NOT NULL, ended_at REAL, exit_reason TEXT, error TEXT,
    summary TEXT, result TEXT, PRIMARY KEY (session, id)
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
"""


def make(llm, tmp_path, **kw) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                      journal=True, **kw)


@pytest.mark.parametrize("answer", ["caf\udce9", "\ud800 alone", "nul\x00 inside"])
def test_a_result_sqlite_cannot_hold_as_given_stops_nothing(llm, tmp_path, caplog, answer):
    # JSON may escape a lone surrogate, so a model's answer can hold one
    llm.on("odd", Reply(text=answer))
    with caplog.at_level(logging.WARNING), make(llm, tmp_path) as s:
        odd = s.delegate("odd answer").collect(10)
        after = s.delegate("an ordinary task after it").collect(10)
        assert (odd.state, after.state) == (hj.TaskState.SUCCEEDED, hj.TaskState.SUCCEEDED)
        assert odd.summary == answer
    with make(llm, tmp_path) as later:  # a second kernel opens the file: nothing is locked
        records = later.history()
        later.delegate("and the file still takes rows").collect(10)
    assert [r.state for r in records] == [hj.TaskState.SUCCEEDED] * 2
    assert records[1].goal == "an ordinary task after it"
    assert records[0].result().summary == answer  # the JSON of the result keeps it exactly
    if "\\ud" in ascii(answer):
        assert "\\ud" in (records[0].summary or "")  # the column holds it escaped, said once
        assert sum("journal" in r.getMessage() for r in caplog.records) == 1


def _task(task_id: str, **facts: object) -> SimpleNamespace:
    base: dict[str, object] = {"id": task_id, "name": None, "goal": "g", "model": "m",
                               "context": "", "resumed_from": None}
    return SimpleNamespace(**{**base, **facts})


@pytest.mark.parametrize("facts", [
    {"model": float("nan")}, {"model": float("inf")}, {"goal": None}, {"model": b"bytes"},
    {"name": object()}, {"id": "caf\udce9"}, {"goal": "x" * 1_000_000},
])
def test_the_writer_survives_any_row(tmp_path, facts, caplog):
    journal = Journal(tmp_path / "tasks.sqlite")
    try:
        with caplog.at_level(logging.WARNING):
            journal.created(_task("bad", **facts))  # type: ignore[arg-type]
            journal.started(_task("bad", **facts))  # type: ignore[arg-type]
            journal.started(_task("good"))  # type: ignore[arg-type]
            journal.created(_task("good"))  # type: ignore[arg-type]
            journal.started(_task("good"))  # type: ignore[arg-type]
            assert journal.flush(10)  # on main a dead writer never got here
        good = [r for r in journal.records() if r.id == "good"]
        assert [r.state for r in good] == [hj.TaskState.RUNNING]
        if facts != {"goal": "x" * 1_000_000}:
            assert journal.problems, "a row stored differently or not at all is said"
            assert len({r.getMessage() for r in caplog.records}) <= 2
    finally:
        journal.close()
    other = sqlite3.connect(tmp_path / "tasks.sqlite", timeout=0)
    other.execute("BEGIN IMMEDIATE")  # no writer left holding the lock
    other.execute("ROLLBACK")
    other.close()


def test_an_old_journal_is_migrated_in_place(llm, tmp_path):
    path = tmp_path / ".hermes" / "tasks.sqlite"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO tasks VALUES ('old', 't1', 'done', 'g', 'm', 'succeeded', 1.0, 2.0, "
               "'completed', NULL, 'old summary', NULL)")
    db.execute("INSERT INTO tasks VALUES ('old', 't2', 'cut', 'g', 'm', 'running', 1.5, NULL, "
               "NULL, NULL, NULL, NULL)")
    db.commit()
    db.close()
    with make(llm, tmp_path) as s:
        s.delegate("a new row").collect(10)
        history = {r.name: r for r in s.history()}
        # an old row has no context nor conversation: it resumes from its goal
        assert s.resume("old/t2").collect(10).state is hj.TaskState.SUCCEEDED
    assert history["done"].summary == "old summary"
    assert history["cut"].state is hj.TaskState.INTERRUPTED  # an owner-less row's kernel is gone
    assert (history["cut"].context, history["cut"].resumed_from) == ("", None)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    columns = [c[1] for c in db.execute("PRAGMA table_info(tasks)")]
    assert {"owner", "context", "resumed_from"} <= set(columns)
    assert db.execute("SELECT count(*) FROM tasks").fetchone() == (4,)
    assert db.execute("SELECT resumed_from FROM tasks WHERE name = 'cut' AND session != 'old'"
                      ).fetchone() == ("old/t2",)
    db.close()


def test_a_journal_from_a_newer_version_is_refused_with_one_line(tmp_path):
    path = tmp_path / "tasks.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(hj.ConfigurationError, match="newer hermes_jupyter") as err:
        Journal(path)
    assert "\n" not in str(err.value)


def test_history_limit_counts_from_the_newest(llm, tmp_path):
    with make(llm, tmp_path) as s:
        for i in range(4):
            s.delegate(f"g{i}", name=f"n{i}").collect(10)
    with make(llm, tmp_path) as s:
        assert [r.name for r in s.history(limit=2)] == ["n2", "n3"]
        assert [r.name for r in s.history(limit=10)] == ["n0", "n1", "n2", "n3"]
        assert [r.name for r in s.history()] == ["n0", "n1", "n2", "n3"]


def test_rows_may_arrive_in_any_order(session, tmp_path):
    result = session.delegate("done already").collect(10)
    journal = Journal(tmp_path / "tasks.sqlite")
    try:
        task = _task("t9", goal="cancelled while delegate wrote its first row")
        journal.finished(task, result)  # type: ignore[arg-type]
        journal.created(task)  # type: ignore[arg-type]
        [record] = journal.records()
    finally:
        journal.close()
    assert (record.state, record.goal) == (hj.TaskState.SUCCEEDED, task.goal)
    assert record.result() == result
