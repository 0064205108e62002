"""A session lets go of ended tasks: `forget(*tasks)`, `forget(finished=True)`, `keep_finished`.

On main a session held every finished task (15-25 KB each) until it closed, with no way to let
go; here a forgotten task is garbage once its handle is dropped.
"""

from __future__ import annotations

import gc
import weakref

import pytest

import hermes_jupyter as hj
from hermes_jupyter.notebook.settings import HermesJupyter, resolve
from hermes_jupyter.testing import Reply

from .conftest import SECRET


def _run(session: hj.Session, n: int, prefix: str = "g") -> list[hj.Task]:
    tasks = [session.delegate(f"{prefix}{i}", name=f"{prefix}{i}") for i in range(n)]
    for t in tasks:
        t.collect(10)
    return tasks


def test_forget_by_handle_id_and_name(session):
    a, b, _ = _run(session, 3)
    assert session.forget(a, "t2", "g2") == 3
    assert session.tasks() == [] and session.list_tasks() == []
    for ref in ("t1", "t2", "g2"):
        with pytest.raises(hj.UnknownTaskError):
            session.check(ref)
    assert a.collect(1).state is hj.TaskState.SUCCEEDED  # the handle keeps its result
    assert session.collect(b).summary == "ok"
    assert session.delegate("next").id == "t4"  # ids go on counting


def test_a_forgotten_task_is_garbage_once_its_handle_is_dropped(session):
    task = _run(session, 1)[0]
    ref = weakref.ref(task)
    session.forget(finished=True)
    del task
    # a later task run to its end: the engine loop has long finished with the first one
    session.forget(session.delegate("later").collect(10).id)
    gc.collect()
    assert ref() is None


def test_forget_finished_leaves_live_tasks(session, llm):
    _run(session, 2)
    llm.on("slow", Reply(text="slow " * 500, chunk_size=1, delay=0.01))
    live = session.delegate("slow one")
    assert session.forget(finished=True) == 2
    assert session.tasks() == [live]
    live.cancel()
    live.collect(10)
    assert session.forget(finished=True) == 1


def test_forgetting_a_live_task_is_refused_in_one_line(session, llm):
    llm.on("slow", Reply(text="slow " * 500, chunk_size=1, delay=0.01))
    done = _run(session, 1)[0]
    live = session.delegate("slow one")
    with pytest.raises(hj.InvalidArgument, match=f"{live.id} still running") as err:
        session.forget(done, live)
    assert "\n" not in str(err.value)
    assert session.tasks() == [done, live]  # nothing changed, not even the ended one
    live.cancel()


@pytest.mark.parametrize("call", [lambda s: s.forget(), lambda s: s.forget("t1", finished=True)])
def test_forget_needs_tasks_or_finished(session, call):
    _run(session, 1)
    with pytest.raises(hj.InvalidArgument, match="finished=True"):
        call(session)
    assert len(session.tasks()) == 1


def test_a_name_goes_back_to_the_older_task(session):
    older = session.delegate("first", name="same")
    older.collect(10)
    newer = session.delegate("second", name="same")
    newer.collect(10)
    session.forget(newer)
    assert session.task("same") is older


@pytest.mark.parametrize("keep", [0, 2])
def test_keep_finished_holds_the_newest_and_the_journal_all(llm, tmp_path, keep):
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    journal=True, keep_finished=keep) as s:
        tasks = [_run(s, 1, f"g{i}-")[0] for i in range(5)]  # one at a time: they end in order
        assert s.keep_finished == keep
        assert s.tasks() == tasks[len(tasks) - keep:]
        assert tasks[0].collect(1).summary == "ok"  # the handle still answers
        assert s.journal is not None
        assert [r.name for r in s.journal.records()] == [f"g{i}-0" for i in range(5)]


def test_keep_finished_is_a_notebook_setting():
    config = HermesJupyter()
    assert resolve(config, {}).session_kwargs()["keep_finished"] is None
    config.keep_finished = 100
    settings = resolve(config, {"OPENAI_API_KEY": "k"})
    assert settings.session_kwargs()["keep_finished"] == 100
    assert ("keep_finished", "100 ended tasks in memory", "config") in settings.rows()
    with pytest.raises(Exception, match="keep_finished"):
        config.keep_finished = -1
