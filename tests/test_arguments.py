"""Every public parameter refuses bad values where it is passed (data: `tests/public_api.py`).

On main: Session(max_concurrent=0.5) queued tasks forever, max_iterations=0.5 failed every
task, timeout=nan cancelled silently, delegate(max_iterations=2.5) failed at run time,
delegate(name=1) raised AttributeError, max_concurrent=inf OverflowError, subscribe(None) logged
a traceback per event, history(limit=0) returned everything and limit=-1 dropped the oldest.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM

from .public_api import API, Context, case_id, cases

CASES = cases()
# Public by name but not the user's: the engine's side of a task, and the handle's constructor.
NOT_USER_API = {"Task.control_for", "Task"}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    workspace = tmp_path_factory.mktemp("fuzz")
    with FakeLLM() as llm:
        base = {"model": "m", "base_url": llm.base_url, "api_keys": ["k"],
                "workspace": workspace}
        session = hj.Session(**base, journal=True)
        done = session.delegate("finished first", name="done")
        done.collect(10)
        yield Context(session, done, base)
        session.close()


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_a_bad_value_is_refused_in_one_line_and_changes_nothing(ctx, case):
    api, param, bad = case
    before = [t.id for t in ctx.session.tasks()]
    with pytest.raises(hj.HermesError) as err:
        api.call(ctx, {param.name: bad})
    assert isinstance(err.value, (TypeError, ValueError)), type(err.value)
    message = str(err.value)
    assert "\n" not in message and re.search(param.named, message), message
    assert [t.id for t in ctx.session.tasks()] == before
    # ... and the session still works: a task runs to succeeded
    task = ctx.session.delegate("still working")
    assert task.collect(10).state is hj.TaskState.SUCCEEDED
    assert ctx.session.forget(task) == 1


def _public(cls: type, label: str) -> dict[str, list[str]]:
    out = {}
    for name, member in vars(cls).items():
        if (name.startswith("_") and name != "__init__") or not inspect.isfunction(member):
            continue
        params = [p.name for p in inspect.signature(member).parameters.values()
                  if p.name != "self"]
        out[f"{label}.{name}" if name != "__init__" else label] = params
    return out


def test_the_registry_lists_every_public_parameter():
    public = {**_public(hj.Session, "Session"), **_public(hj.Task, "Task")}
    listed = {api.label: [p.name for p in api.params] for api in API}
    for label in NOT_USER_API:
        public.pop(label, None)
    missing = {k: v for k, v in public.items() if sorted(v) != sorted(listed.get(k, [0]))}
    assert not missing, f"add these to tests/public_api.py: {missing}"


def test_the_fuzz_is_large_enough():
    assert len({(a.label, p.name) for a, p, _ in CASES}) >= 39
    assert len(CASES) >= 250


@pytest.mark.parametrize("call", [
    lambda s: s.delegate("x", max_iterations=2.5),
    lambda s: s.delegate("x", timeout=float("nan")),
    lambda s: s.delegate("x", name=1),
    lambda s: s.subscribe(None),
    lambda s: s.history(limit=0),
    lambda s: s.history(limit=-1),
])
def test_the_reported_cases(ctx, call):
    with pytest.raises(hj.HermesError):
        call(ctx.session)


@pytest.mark.parametrize("kw", [{"max_concurrent": 0.5}, {"max_iterations": 0.5},
                                {"max_concurrent": float("inf")},
                                {"task_timeout": float("nan")}])
def test_the_reported_session_settings(ctx, kw):
    with pytest.raises(hj.InvalidArgument, match=next(iter(kw))):
        hj.Session(**ctx.base, **kw)
