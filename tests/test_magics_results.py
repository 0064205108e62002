"""Results you can read: a failed or cancelled result says why in one line, everywhere, and
every count uses one wording (`1 call`, `2 calls`)."""


from __future__ import annotations

import re
from pathlib import Path

import hermes_jupyter as hj
from hermes_jupyter.core.models import ExitReason, TaskResult, TaskState, Usage
from hermes_jupyter.core.text import plural
from hermes_jupyter.engine.views import TaskTable
from hermes_jupyter.notebook.widgets import static_view
from hermes_jupyter.testing import Fail, Reply, ToolCall

from .test_magics import cell, held_tool

ROOT = Path(__file__).resolve().parents[1]


def result(**changes: object) -> TaskResult:
    fields: dict[str, object] = dict(
        id="t1", name="cap", state=TaskState.SUCCEEDED, model="m", summary="the answer",
        exit_reason=ExitReason.COMPLETED, error=None, api_calls=1, duration_s=2.0,
        usage=Usage(10, 5, 1))
    fields.update(changes)
    return TaskResult(**fields)  # type: ignore[arg-type]


def pretty(value: object) -> str:
    from IPython.lib.pretty import pretty as ipython_pretty

    return str(ipython_pretty(value))


def test_a_failed_result_says_why_in_its_headline_text_and_markdown(live, llm, capsys):
    llm.on("cap", Fail(400, message="model 'nope' does not exist"))
    failed, _, _ = cell(live, "t = %delegate -n cap find the cap\nr = t.collect(10)\nr", capsys)
    assert failed.state is hj.TaskState.FAILED and failed.summary == ""
    assert failed.headline().startswith("t1 'cap': failed [provider_error] · parent-model · ")
    why = ("failed because the endpoint refused or failed the request for good "
           "(provider_error): ")
    assert str(failed).startswith(why) and "does not exist" in str(failed)
    assert "\n" not in str(failed)  # one line
    assert pretty(failed).splitlines()[1].startswith(why)
    markdown = failed._repr_markdown_()
    assert "**failed because the endpoint refused" in markdown and "provider\\_error" in markdown


def test_a_cancelled_and_a_timed_out_result_say_why(live, llm, capsys):
    entered, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.default = Reply(tool_calls=[ToolCall("hold")])
    cell(live, "a = %delegate -t hold one", capsys)
    assert entered.wait(10)
    cell(live, "%cancel_task t1", capsys)
    cancelled = live.user_ns["a"].collect(10)
    assert cancelled.headline().startswith("t1: cancelled · ")
    assert str(cancelled) == "cancelled because someone cancelled the task"
    cell(live, "b = %delegate -t hold --timeout 0.3 two", capsys)
    timed_out = live.user_ns["b"].collect(10)
    release.set()
    assert timed_out.headline().startswith("t2: failed [timeout] · ")
    assert str(timed_out).startswith("failed because the task ran past its timeout (timeout)")


def test_a_succeeded_result_is_its_summary_and_truncation_shows_in_the_headline():
    ok = result()
    assert str(ok) == "the answer" and ok.reason() is None
    assert ok.headline() == "t1 'cap': succeeded · m · 2.0s · 1 call · 15 tokens"
    cut = result(truncated=True, state=TaskState.FAILED, exit_reason=ExitReason.MAX_ITERATIONS,
                 error="stopped after 3 model calls", api_calls=3)
    assert cut.headline() == ("t1 'cap': failed [max_iterations] · m · 2.0s · 3 calls · "
                              "15 tokens · summary truncated")
    assert str(cut) == ("failed because the task used all its model calls (max_iterations): "
                        "stopped after 3 model calls\n\nthe answer")


def test_one_wording_for_counts_everywhere():
    assert [plural(n, "call") for n in (0, 1, 2, 1234)] == [
        "0 calls", "1 call", "2 calls", "1,234 calls"]
    header = static_view.header_line({"counts": {"succeeded": 1}, "tokens": 5, "api_calls": 1})
    assert header.endswith("· 1 call") and "API" not in header
    card = {"id": "t1", "name": None, "state": "succeeded", "model": "m", "elapsed_s": 1.0,
            "api_calls": 1, "tokens": 3, "activity": "", "summary": "ok", "error": None}
    assert " 1 call " in static_view.render_text([card], {"counts": {}, "api_calls": 1})
    assert TaskTable([]).footer().startswith("No tasks yet")
    js = (ROOT / "hermes_jupyter/notebook/widgets/dashboard.js").read_text()
    # every count of calls in the dashboard goes through its `plural`, like core/text.py
    assert not re.search(r"\} (API )?calls", js) and 'plural(d.api_calls, "call")' in js
    readme = (ROOT / "README.md").read_text()
    assert not re.search(r"\b1 calls\b", readme)
