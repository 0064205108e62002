"""One way to name a task in every magic, results that never shadow Python's or IPython's own
names, one prefix per refusal, and a `%%delegate` line that takes only options."""

from __future__ import annotations

import shlex

import numpy as np
import pandas as pd
import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.errors import InvalidArgument
from hermes_jupyter.notebook import kernel
from hermes_jupyter.notebook.binding import (
    VariableExistsError,
    collect_into,
    default_variable,
    free_variable,
)
from hermes_jupyter.notebook.context import context_text
from hermes_jupyter.notebook.magic_args import _next_word
from hermes_jupyter.testing import Reply, ToolCall

from .test_approvals import Asked
from .test_magics import cell, completions, held_tool, rejected


# ---- task names: one way to read them in every magic --------------------------------------
@pytest.fixture
def named(live, llm, capsys):
    """t1 'my task', held in a tool call until released; returns (task, release)."""
    entered, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.on("held", Reply(tool_calls=[ToolCall("hold")]), Reply(text="done"))
    cell(live, "t = %delegate -n 'my task' -t hold held work", capsys)
    assert entered.wait(10)
    yield live.user_ns["t"], release
    release.set()


@pytest.mark.parametrize("ref", ["'my task'", '"my task"', "my\\ task", "t1", "t"])
def test_every_form_of_a_name_finds_the_task_in_check_steer_and_collect(named, live, capsys,
                                                                        ref):
    task, release = named
    assert task.name == "my task"
    report, _, _ = cell(live, f"%check_task {ref}", capsys)
    assert report.id == "t1"
    _, out, _ = cell(live, f"%steer_task {ref} do more", capsys)
    assert out == "Steered t1 'my task': it reads the message before its next model call.\n"
    assert [s.message for s in task.check().steering] == ["do more"]
    release.set()
    result, _, _ = cell(live, f"%collect_task {ref} --timeout 10 -o r", capsys)
    assert result.summary == "done" and live.user_ns["r"] is result


def test_an_unquoted_name_with_spaces_says_to_quote_it(named, live, capsys):
    for magic in ("check_task", "collect_task", "cancel_task"):
        message = rejected(live, f"%{magic} my task", capsys)
        assert message == (f"%{magic}: unrecognized arguments: task; a task name with spaces "
                           f"needs quotes: 'my task' (see %{magic}?)")
    for magic in ("steer_task", "deny_task"):  # their rest is free text
        message = rejected(live, f"%{magic} my task do more", capsys)
        assert message == (f"%{magic}: No task 'my': a name with spaces needs quotes, as in "
                           "'my task'.")
    assert not named[0].done() and named[0].check().steering == []
    _, out, _ = cell(live, "%cancel_task 'my task'", capsys)
    assert out == "Cancelled t1 'my task'.\n"


def test_approve_and_deny_read_names_like_every_task_magic(live, llm, capsys):
    llm.on("go", Reply(tool_calls=[ToolCall("run_shell", {"command": "echo one"}, id="c1"),
                                   ToolCall("run_shell", {"command": "echo two"}, id="c2")]),
           Reply("done"))
    asked = Asked(kernel.get_session())
    cell(live, "t = %delegate -n 'my job' --toolsets shell go", capsys)
    asked.wait(1)
    _, out, _ = cell(live, "%approve_task 'my job' c2 --remember 'echo *'", capsys)
    assert out.startswith("Approved 1 call of t1: c2 run_shell") and "'echo *'" in out
    # the pattern is `echo *` (not `'echo *'`): c1 now runs without asking
    result = live.user_ns["t"].collect(20)
    assert result.ok and [e.name for e in result.tool_trace] == ["run_shell", "run_shell"]
    llm.on("again", Reply(tool_calls=[ToolCall("run_shell", {"command": "touch x"}, id="c3")]),
           Reply("done"))
    asked = Asked(kernel.get_session())
    cell(live, "w = %delegate -n 'other job' --toolsets shell again", capsys)
    asked.wait(1)
    _, out, _ = cell(live, '%deny_task "other job"   not today, thanks', capsys)
    assert out == ("Denied t2's call c3 run_shell({\"command\": \"touch x\"}); the model reads: "
                   "'not today, thanks'.\n")
    assert live.user_ns["w"].collect(20).ok


@pytest.mark.parametrize("magic", ["approve_task", "deny_task", "check_task", "steer_task",
                                   "collect_task", "cancel_task"])
def test_an_unknown_task_is_one_line_with_the_magics_name_and_the_magic_to_list(live, capsys,
                                                                                magic):
    cell(live, "t = %delegate -n survey hi\n_ = t.collect(10)", capsys)
    rest = " go" if magic in ("steer_task", "deny_task") else ""
    message = rejected(live, f"%{magic} nosuch{rest}", capsys)
    assert message.startswith(f"%{magic}: No task 'nosuch'. Known tasks: t1 'survey'. Use "
                              "%list_tasks to see them."), message
    assert "list_tasks()" not in message and message.count(f"%{magic}:") == 1


@pytest.mark.parametrize("name", ["t1", "t22", "t007"])
def test_a_name_shaped_like_a_task_id_is_refused(live, capsys, name):
    cell(live, "a = %delegate first", capsys)
    before = [s.id for s in kernel.all_statuses()]
    message = rejected(live, f"b = %delegate -n {name} second", capsys)
    assert message == (f"%delegate: Bad task name {name!r}: it is shaped like a task id (t1, "
                       "t2, ...), which always means that task; use another name.")
    assert [s.id for s in kernel.all_statuses()] == before and "b" not in live.user_ns
    with pytest.raises(InvalidArgument, match="shaped like a task id"):
        hj.get_session().delegate("third", name=name)
    cell(live, "c = %delegate -n t1x fine", capsys)  # only the exact shape is an id


@pytest.mark.parametrize("line", [
    "'my task' rest", '"my task" rest', "my\\ task rest", "a'b c'd rest", '"say \\"hi\\"" x',
    "'back\\slash' x", '"back\\slash" x', "plain rest", "x\\'y rest", '"a\\\\b" rest',
])
def test_the_task_word_is_split_as_shlex_splits_it(line):
    word, end = _next_word(line, 0)
    assert word == shlex.split(line)[0] and line[end:].strip() == line.split(" ")[-1]


# ---- completion -----------------------------------------------------------------------------
def test_completion_quotes_names_with_spaces_and_covers_every_task_magic(named, live):
    for magic in ("check_task", "steer_task", "collect_task", "cancel_task", "approve_task",
                  "deny_task"):
        offered = completions(live, f"%{magic} ")
        assert {"t1", "'my task'"} <= offered and "my task" not in offered, (magic, offered)
    assert completions(live, "%check_task 'my") == {"my task'"}  # closes the quote
    assert completions(live, "%collect_task \"my t") == {'task"'}
    assert not {"t1", "'my task'"} & completions(live, "%deny_task 'my task' ")  # free text


def test_a_completed_name_is_read_back_by_the_magic(named, live, capsys):
    line = "%check_task 'my"
    (completion,) = completions(live, line)
    report, _, _ = cell(live, line[: len(line) - len("my")] + completion, capsys)
    assert report.id == "t1"


# ---- collecting into a variable: never over Python's or IPython's names -------------------
@pytest.mark.parametrize(("variable", "what"), [
    ("print", "is a Python built-in"), ("list", "is a Python built-in"),
    ("get_ipython", "is one of IPython's own names"), ("In", "is one of IPython's own names"),
    ("exit", "is one of IPython's own names"), ("_5", "is one of IPython's own names"),
    ("_i2", "is one of IPython's own names"), ("display", "is one of IPython's own names"),
])
def test_collect_never_shadows_a_builtin_or_an_ipython_name_without_replace(live, capsys,
                                                                              variable, what):
    cell(live, "t = %delegate answer\n_ = t.collect(10)", capsys)
    before = dict(live.user_ns)
    message = rejected(live, f"%collect_task t1 -o {variable}", capsys)
    assert message == (f"%collect_task: `{variable}` {what}: use -o result_t1 (free), or add "
                       "--replace to replace it.")
    assert live.user_ns.get(variable, "unset") is before.get(variable, "unset")
    with pytest.raises(VariableExistsError, match=f"`{variable}` {what}: collect into"):
        collect_into(live.user_ns, live.user_ns["t"], variable)  # the panel and dashboard path
    if variable == "list":
        result, _, _ = cell(live, "%collect_task t1 -o list --replace", capsys)
        assert live.user_ns["list"] is result
        del live.user_ns["list"]


def test_a_taken_variable_is_refused_with_one_prefix(live, capsys):
    cell(live, "x = 1\nt = %delegate answer\n_ = t.collect(10)", capsys)
    message = rejected(live, "%collect_task t1 -o x", capsys)
    assert message == ("%collect_task: `x` already holds a value of type int: use -o result_t1 "
                       "(free), or add --replace to replace it.")
    assert live.user_ns["x"] == 1


def test_a_free_name_skips_builtins_and_ipython_names():
    assert free_variable({}, "print") == "print_2"
    assert free_variable({"_3": 1}, "_3") == "_3_2"
    assert free_variable({}, default_variable("t4")) == "result_t4"


# ---- %%delegate: the body is the goal, the line takes options only --------------------------
@pytest.mark.parametrize("line", ["bogus positional", "-n x more words", "{1+1}"])
def test_a_delegate_cell_refuses_words_on_its_line(live, capsys, line):
    message = rejected(live, f"%%delegate {line}\nbody here\n", capsys)
    assert message.startswith("%delegate: %%delegate takes only options on its line, not ")
    assert message.endswith(": the cell body is the goal (see %delegate?)")
    assert kernel.all_statuses() == []


def test_a_delegate_cell_body_is_taken_as_typed(live, capsys):
    task, _, _ = cell(live, "%%delegate -n cellgoal\nSummarise {1+1} things {undefined_zzz}\n"
                            "and $$HOME, $HOME\n", capsys)
    assert task.goal == "Summarise {1+1} things {undefined_zzz}\nand $$HOME, $HOME"


# ---- -c: every variable not sent whole says so ------------------------------------------------
class Grid(np.ndarray):
    """An ndarray subclass: summarised like any array."""


def test_a_large_array_says_it_was_summarised(live, llm, capsys):
    live.user_ns.update(arr=np.arange(5_000_000), grid=np.zeros((300, 300)),
                        small=np.arange(12), mat=np.ones((100, 100)).view(Grid))
    task, out, _ = cell(live, "%delegate -c arr,grid,small,mat describe", capsys)
    assert out.splitlines() == [
        "%delegate: -c arr is a 5,000,000-value ndarray of shape (5000000,): the task gets its "
        "shape, dtype and the first and last 5 values of each axis.",
        "%delegate: -c grid is a 90,000-value ndarray of shape (300, 300): the task gets its "
        "shape, dtype and the first and last 5 values of each axis.",
        "%delegate: -c mat is a 10,000-value Grid of shape (100, 100): the task gets its "
        "shape, dtype and the first and last 5 values of each axis.",
    ]
    task.collect(10)
    sent = llm.requests[0].messages[1]["content"]
    assert "### small (ndarray)\narray of shape (12,), dtype int64\n[ 0  1" in sent


def test_a_deep_or_wide_value_says_it_was_shortened():
    deep: dict[str, object] = {}
    cur = deep
    for _ in range(50):
        cur["k"] = {}
        cur = cur["k"]  # type: ignore[assignment]
    assert context_text("d", deep, 1000).note == (
        "-c d was shortened: long items cut and containers nested deeper than 6 levels named "
        "with their size (HermesJupyter.context_limit).")
    assert context_text("one", ["x" * 5000], 1000).note is not None
    wide = pd.DataFrame(columns=[f"c{i}" for i in range(80)])
    assert context_text("w", wide, 10_000).note == (
        "-c w has 80 columns: the task gets the dtypes of the first 50.")
    assert context_text("ok", {"a": [1, 2]}, 1000).note is None


class Tensor:
    """An array-like of another library, whose str() shows only a part of it."""

    shape = (1000, 3)

    def __str__(self) -> str:
        return "tensor([[0, 0, 0], ..., [0, 0, 0]])"


def test_an_array_like_of_another_library_says_its_printed_form_may_be_partial():
    assert context_text("x", Tensor(), 1000).note == (
        "-c x is a Tensor of shape (1000, 3): the task gets its printed form, which may show "
        "only some of its 3,000 values.")
    assert context_text("i", pd.Index(range(10**6)), 1000).note.startswith(
        "-c i is a RangeIndex of shape (1000000,): the task gets its printed form")
    assert context_text("few", pd.Index([1, 2]), 1000).note is None
