"""The magics through a real IPython shell, against the loopback FakeLLM or the demo model."""

from __future__ import annotations

import atexit
import re
import sys
import threading
import types

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import hermes_jupyter as hj
from hermes_jupyter.notebook import kernel as current
from hermes_jupyter.testing import Fail, FakeLLM, Reply, ToolCall

from .conftest import SECRET


def cell(ip: InteractiveShell, code: str, capsys) -> tuple[object, str, str]:
    """Run one cell; (displayed result, stdout, stderr). A raised error fails the test."""
    result = ip.run_cell(code)
    out, err = capsys.readouterr()
    assert result.error_in_exec is None and result.error_before_exec is None, err
    return result.result, out, err


def rejected(ip: InteractiveShell, code: str, capsys) -> str:
    """Run a cell that must be refused: it fails with one `UsageError` line and no traceback,
    prints nothing on stdout, and returns no value. Returns the message."""
    result = ip.run_cell(code)
    out, err = capsys.readouterr()
    assert not result.success and isinstance(result.error_in_exec, UsageError), (out, err)
    assert result.result is None and out == "" and "Traceback" not in err
    assert err.startswith("UsageError: ") and err.count("\n") == 1, err
    return err[len("UsageError: "):].rstrip("\n")


def held_tool() -> tuple[threading.Event, threading.Event, object]:
    """A tool that blocks until released, and says when it has been entered."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> str:
        """Wait for the test to release me."""
        entered.set()
        release.wait(10)
        return "released"

    return entered, release, hold


# ---- loading and the demo notice ---------------------------------------------------------
def test_load_ext_says_once_that_the_demo_runs_and_registers_the_settings(capsys):
    current._reset()
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    try:
        shell.run_line_magic("load_ext", "hermes_jupyter")
        shell.run_line_magic("reload_ext", "hermes_jupyter")
        out = capsys.readouterr().out
        assert out.count("offline demo model") == 1 and len(out.splitlines()) == 1
        assert "HermesJupyter" in [type(c).__name__ for c in shell.configurables]
        task = shell.run_line_magic("delegate", "hello")
        assert task.model == "demo" and hj.get_session() is current.peek_session()
        assert "offline demo" not in capsys.readouterr().out  # not again on first use
    finally:
        current._reset()
        InteractiveShell.clear_instance()
        atexit.unregister(shell.atexit_operations)


def test_the_demo_notice_from_another_thread_waits_for_the_main_thread(ip, capsys):
    current._reset()
    capsys.readouterr()
    seen: list[str] = []
    worker = threading.Thread(target=lambda: seen.append(repr(hj.get_session())))
    worker.start()
    worker.join()
    assert seen and capsys.readouterr().out == ""  # nothing printed on the worker thread
    cell(ip, "%load_ext hermes_jupyter", capsys)
    _, out, _ = cell(ip, "%list_tasks", capsys)
    assert out.startswith("hermes_jupyter: no API key or endpoint configured")


# ---- %delegate -------------------------------------------------------------------------
def test_delegate_returns_the_task_at_once(live, llm, capsys):
    llm.default = Reply(text="streamed answer", first_delay=0.3)
    _, out, err = cell(live, "t = %delegate -n first find things", capsys)
    task = live.user_ns["t"]
    assert isinstance(task, hj.Task) and task.name == "first" and not task.done()
    assert out == err == ""
    assert hj.get_session().task("first") is task
    assert task.collect(10).summary == "streamed answer"


def test_goal_interpolates_notebook_values_and_keeps_apostrophes(live, llm, capsys):
    cell(live, "n = 42\nwhere = 'Q3'", capsys)
    task, _, _ = cell(live, "%delegate what's the total of {n * 2} rows in $where?", capsys)
    assert task.goal == "what's the total of 84 rows in Q3?"
    task.collect(10)
    assert llm.requests[0].messages[1]["content"] == "Goal:\nwhat's the total of 84 rows in Q3?"


def test_a_goal_ending_in_a_question_mark_is_a_goal_not_a_help_request(live, llm, capsys):
    entered, release, hold = held_tool()
    live.user_ns.update(x=1, hold=hold)
    llm.default = Reply(tool_calls=[ToolCall("hold")])
    _, out, _ = cell(live, "t = %delegate -t hold is {x} enough?\n  # comment", capsys)
    assert live.user_ns["t"].goal == "is 1 enough?" and out == ""
    body, _, _ = cell(live, "%%delegate\n%delegate nested?", capsys)
    assert body.goal == "%delegate nested?"
    assert entered.wait(10)
    _, out, _ = cell(live, "%steer_task t1 why not?", capsys)
    assert out.startswith("Steered t1")
    release.set()


def test_quoted_goal_loses_its_quotes_and_double_dash_ends_options(live, capsys):
    one, _, _ = cell(live, '%delegate -n q "summarise the notes"', capsys)
    two, _, _ = cell(live, "%delegate -- -n is not an option here", capsys)
    assert one.goal == "summarise the notes" and two.goal == "-n is not an option here"


def test_cell_magic_takes_the_body_verbatim(live, llm, capsys):
    task, _, _ = cell(live, "%%delegate -n body --max-iterations 3\nLine one {not expanded}\n"
                            "line two: don't split\n", capsys)
    assert task.name == "body" and task.max_iterations == 3
    assert task.goal == "Line one {not expanded}\nline two: don't split"


def test_context_variables_reach_the_child_as_text(live, llm, capsys):
    cell(live, "notes = 'ship it'\nrows = [1, 2, 3]", capsys)
    task, out, _ = cell(live, "%delegate -c notes,rows -c notes use them", capsys)
    task.collect(10)
    first = llm.requests[0].messages[1]["content"]
    assert "### notes (str)\nship it" in first and "### rows (list)\n[1, 2, 3]" in first
    assert out == ""


def test_long_context_is_cut_with_a_visible_notice(live, llm, capsys):
    cell(live, "big = 'x' * 500\n%config HermesJupyter.context_limit = 100", capsys)
    task, out, _ = cell(live, "%delegate -c big look", capsys)
    assert out.strip() == ("%delegate: -c big was cut to 100 of 500 characters "
                           "(HermesJupyter.context_limit).")
    task.collect(10)
    sent = llm.requests[0].messages[1]["content"]
    assert "x" * 100 + "\n… [cut: showing 100 of 500 characters of big" in sent
    assert "x" * 101 not in sent


def test_notebook_functions_become_tools(live, llm, capsys):
    llm.on("add", Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 5})]), Reply(text="7"))
    cell(live, "calls = []\ndef add(a: int, b: int) -> int:\n    'Add.'\n"
               "    calls.append((a, b))\n    return a + b", capsys)
    task, _, _ = cell(live, "%delegate -t add add two numbers", capsys)
    assert task.collect(10).summary == "7" and live.user_ns["calls"] == [(2, 5)]


def test_model_toolsets_and_timeout_options(live, llm, capsys):
    cell(live, "%config HermesJupyter.toolsets = ['files']", capsys)
    a, _, _ = cell(live, "%delegate -m special --timeout 30 with files", capsys)
    b, _, _ = cell(live, "%delegate --toolsets none without tools", capsys)
    c, _, _ = cell(live, "%delegate --toolsets files,python with both", capsys)
    for task in (a, b, c):
        task.collect(10)
    assert a.model == "special" and a.timeout == 30 and "read_file" in a.tools.names
    assert b.tools.names == []
    assert "run_python" in c.tools.names


# ---- %check_task, %steer_task, %cancel_task ------------------------------------------------
def test_check_steer_and_collect_a_held_task(live, llm, capsys):
    entered, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.on("held", Reply(text="thinking aloud\n", tool_calls=[ToolCall("hold")]),
           Reply(text="done after steer"))
    cell(live, "t = %delegate -n job -t hold held work", capsys)
    assert entered.wait(10)
    report, _, _ = cell(live, "%check_task", capsys)  # the most recent task
    text = repr(report)
    assert text.startswith("t1 'job': running · parent-model · ")
    assert "1 call · " in text and "now       tool: hold" in text
    assert "│ thinking aloud" in text and "│ → hold({})" in text
    assert report.state is hj.TaskState.RUNNING and "<table" in report._repr_html_()
    _, out, _ = cell(live, "%steer_task job don't forget Q3", capsys)
    assert out == "Steered t1 'job': it reads the message before its next model call.\n"
    assert "“don't forget Q3” (queued)" in repr(live.run_line_magic("check_task", "t1"))
    release.set()
    result, _, _ = cell(live, "r = %collect_task job\nr", capsys)
    assert live.user_ns["r"] is result and result.summary == "done after steer"
    assert llm.requests[-1].messages[-1]["content"] == "[steer from parent] don't forget Q3"
    assert "(delivered)" in repr(live.run_line_magic("check_task", "t1"))


def test_cancel_one_all_and_an_ended_task(live, llm, capsys):
    _, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.default = Reply(tool_calls=[ToolCall("hold")])
    cell(live, "a = %delegate -t hold one\nb = %delegate -t hold two\n"
               "c = %delegate -t hold three", capsys)
    _, out, _ = cell(live, "%cancel_task t1", capsys)
    assert out == "Cancelled t1.\n"
    _, out, _ = cell(live, "%cancel_task --all", capsys)
    assert out == "Cancelled 2 tasks.\n"
    release.set()
    states = {t.collect(5).state for t in (live.user_ns[v] for v in "abc")}
    assert states == {hj.TaskState.CANCELLED}
    _, out, _ = cell(live, "%cancel_task t2", capsys)
    assert out == "t2 had already cancelled; nothing to cancel.\n"
    _, out, _ = cell(live, "%cancel_task --all", capsys)
    assert out == "No queued or running task to cancel.\n"


# ---- %collect_task ----------------------------------------------------------------------
def test_collect_into_a_variable(live, llm, capsys):
    llm.default = Reply(text="forty-two")
    cell(live, "t = %delegate answer", capsys)
    result, out, _ = cell(live, "%collect_task t1 -o answer", capsys)
    assert live.user_ns["answer"] is result and result.summary == "forty-two" and out == ""
    report, _, _ = cell(live, "%check_task t", capsys)  # a variable holding the Task works too
    assert report.id == "t1" and report.summary == "forty-two"
    assert result._repr_markdown_().startswith("*t1: succeeded · parent-model · ")


def test_collect_into_a_taken_variable_needs_replace(live, llm, capsys):
    llm.default = Reply(text="forty-two")
    cell(live, "review = %delegate -n review answer", capsys)
    task = live.user_ns["review"]
    task.collect(10)
    failed = live.run_cell("%collect_task t1 -o review")
    _, err = capsys.readouterr()
    assert not failed.success and live.user_ns["review"] is task  # the Task is kept
    assert "add --replace" in err and "-o result_t1" in err and "Traceback" not in err
    result, _, _ = cell(live, "%collect_task t1 -o review --replace", capsys)
    assert live.user_ns["review"] is result


def test_a_collect_that_times_out_fails_the_cell_and_changes_nothing(live, llm, capsys):
    entered, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.on("slow", Reply(tool_calls=[ToolCall("hold")]), Reply(text="finally"))
    cell(live, "t = %delegate -n survey -t hold slow", capsys)
    assert entered.wait(10)
    for code in ("r = %collect_task survey --timeout 0", "%collect_task --timeout 0 -o later",
                 "r = %collect_task t --timeout 0.01 -o later"):
        message = rejected(live, code, capsys)
        assert message == ("%collect_task: t1 'survey' is still running after "
                           f"{float(code.split('--timeout ')[1].split()[0]):g}s; it goes on: "
                           "collect it later with %collect_task t1."), code
        assert "r" not in live.user_ns and "later" not in live.user_ns
    release.set()
    result, _, _ = cell(live, "r = %collect_task survey -o later\nr", capsys)
    assert result.summary == "finally" and live.user_ns["later"] is result


def test_a_long_wait_says_how_to_stop_and_an_interrupt_leaves_the_task_running(
        live, llm, capsys, monkeypatch):
    entered, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.default = Reply(tool_calls=[ToolCall("hold")])
    cell(live, "%config HermesJupyter.wait_notice_after = 0\nt = %delegate -t hold wait", capsys)
    task = live.user_ns["t"]
    assert entered.wait(10)
    original = hj.Task.collect

    def interrupted(self, timeout=None):
        if timeout is None:
            raise KeyboardInterrupt  # what a kernel interrupt raises inside the wait
        return original(self, timeout)

    monkeypatch.setattr(hj.Task, "collect", interrupted)
    result = live.run_cell("r = %collect_task")
    out, err = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError) and "r" not in live.user_ns
    assert out.startswith("Waiting for t1 (running, ") and out.count("\n") == 1
    assert out.endswith("interrupt the kernel to stop waiting, the task keeps running.\n")
    assert err == ("UsageError: %collect_task: stopped waiting for t1; it is still running: "
                   "collect it later with %collect_task t1.\n")
    assert not task.done()
    release.set()
    monkeypatch.undo()
    task.cancel()


# ---- %list_tasks, %hermes_config, %hermes_dashboard -----------------------------------------
def test_list_tasks_renders_html_and_text(live, llm, capsys):
    empty, _, _ = cell(live, "%list_tasks", capsys)
    assert repr(empty) == "No tasks yet: start one with %delegate GOAL."
    llm.default = Reply(text="a <b>bold</b> answer")
    cell(live, "t = %delegate -n one first\n_ = t.collect(10)", capsys)
    table, _, _ = cell(live, "%list_tasks", capsys)
    text = repr(table)
    assert text.splitlines()[0].split() == ["id", "name", "state", "model", "elapsed", "calls",
                                            "tokens", "cost", "now", "/", "summary"]
    assert text.splitlines()[1].split()[:4] == ["t1", "one", "succeeded", "parent-model"]
    assert text.splitlines()[-1].startswith("1 task: 1 succeeded · 1 call · ")
    html = table._repr_html_()
    assert "<table" in html and "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    assert table[0].id == "t1" and len(table) == 1


def test_hermes_config_shows_settings_and_only_a_key_count(live, capsys):
    view, _, _ = cell(live, "%hermes_config", capsys)
    text = repr(view)
    assert re.search(r"^api_keys +1 set  \[config\]$", text, re.M)
    assert re.search(r"^model +parent-model  \[config\]$", text, re.M)
    assert text.endswith("session: not started yet (it starts with the first task)")
    assert "SECRET" not in text + view._repr_html_()


def test_hermes_dashboard_displays_the_widget_of_the_session(live, capsys, monkeypatch):
    module = types.ModuleType("hermes_jupyter.notebook.widgets.dashboard")

    class Widget:
        def __init__(self, session):
            self.session = session

        def __repr__(self):
            return f"<dashboard of {self.session.model}>"

    module.dashboard = Widget  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hermes_jupyter.notebook.widgets.dashboard", module)
    _, out, err = cell(live, "%hermes_dashboard", capsys)
    assert out == "<dashboard of parent-model>\n" and err == ""
    monkeypatch.setitem(sys.modules, "hermes_jupyter.notebook.widgets.dashboard", None)
    message = rejected(live, "%hermes_dashboard", capsys)
    assert message.startswith("%hermes_dashboard: the dashboard is not available")


# ---- bad input: one line, no traceback, nothing changed -------------------------------------
BAD_INPUT = [
    ("%delegate", "%delegate: missing GOAL"),
    ("%delegate -n", "%delegate: argument -n/--name: expected one argument"),
    ("%delegate --bogus x do it", "%delegate: unrecognized arguments: --bogus"),
    ("%delegate --max-iterations many do it", "%delegate: argument --max-iterations"),
    ("%delegate --max-iterations 0 do it", "%delegate: Bad max_iterations 0"),
    ("%delegate --timeout -3 do it", "%delegate: argument --timeout: expected seconds from 0"),
    ("%delegate --timeout 0 do it", "%delegate: Bad timeout 0"),
    ("%delegate --timeout nan do it", "%delegate: argument --timeout: expected seconds from 0"),
    ("%delegate --timeout inf do it", "%delegate: argument --timeout: expected seconds from 0"),
    ("%delegate sum {nosuch} now", "%delegate: {nosuch} in the goal cannot be filled in "
                                   "(NameError: name 'nosuch' is not defined): define it "
                                   "first, or write {{nosuch}} to keep it as typed"),
    ("%delegate ask $nosuch now", "%delegate: $nosuch in the goal cannot be filled in"),
    ("%delegate -n {1/0} go", "%delegate: {1/0} in the options cannot be filled in"),
    ("%steer_task done use {nosuch}", "%steer_task: {nosuch} in the message cannot be filled"),
    ("%delegate fix f() { return 1; }", "%delegate: { return 1; } in the goal cannot be"),
    ("%delegate one } brace", "%delegate: the goal has an unbalanced brace"),
    ("%delegate -c 1x do it", "%delegate: Bad variable name '1x'"),
    ("%delegate -c missing do it", "%delegate: no variable 'missing' in the notebook"),
    ("%delegate -t not_callable do it", "%delegate: 'not_callable' is not a function"),
    ("%delegate --toolsets terminal do it", "%delegate: Unknown toolset 'terminal'"),
    ("%delegate -n ' x' do it", "%delegate: Bad task name"),
    ("%delegate -n 'open do it", "%delegate: unbalanced ' in the options"),
    ("%check_task t99", "%check_task: No task 't99'. Known tasks: t1 'done'. Use %list_tasks "
                        "to see them."),
    ("%check_task 'abc", "%check_task: No closing quotation in \"'abc\": close the quote"),
    ("%collect_task 'abc", "%collect_task: No closing quotation"),
    ("%cancel_task \"abc", "%cancel_task: No closing quotation"),
    ("%steer_task 'abc go", "%steer_task: unbalanced ' in the options"),
    ("%check_task --nope", "%check_task: unrecognized arguments: --nope"),
    ("%steer_task", "%steer_task: the following arguments are required: ID"),
    ("%steer_task t1", "%steer_task: missing MESSAGE"),
    ("%steer_task t99 go", "%steer_task: No task 't99'."),
    ("%steer_task done go", "%steer_task: Task t1 has already succeeded"),
    ("%collect_task t99", "%collect_task: No task 't99'."),
    ("%collect_task t1 -o 2bad", "%collect_task: Bad variable name '2bad'"),
    ("%collect_task t1 --timeout -1", "%collect_task: argument --timeout: expected seconds"),
    ("%collect_task t1 --timeout inf", "%collect_task: argument --timeout: expected seconds"),
    ("%collect_task t1 --timeout nan", "%collect_task: argument --timeout: expected seconds"),
    ("%collect_task t1 --timeout 1e308", "%collect_task: argument --timeout: expected seconds"),
    ("%collect_task no-such-task", "%collect_task: No task 'no-such-task'."),
    ("%cancel_task", "%cancel_task: give a task id or --all"),
    ("%cancel_task t1 --all", "%cancel_task: give a task id or --all"),
    ("%cancel_task t99", "%cancel_task: No task 't99'."),
    ("%list_tasks extra", "%list_tasks: unrecognized arguments: extra"),
    ("%hermes_config extra", "%hermes_config: unrecognized arguments: extra"),
    ("%hermes_dashboard 'x", "%hermes_dashboard: No closing quotation"),
    ("%list_tasks --history", "%list_tasks: No journal is kept: %config HermesJupyter.journal"),
]


@pytest.mark.parametrize(("code", "message"), BAD_INPUT, ids=[c for c, _ in BAD_INPUT])
def test_bad_input_gives_one_line_and_changes_nothing(live, capsys, code, message):
    cell(live, "not_callable = 3\nt = %delegate -n done finished work\n_ = t.collect(10)",
         capsys)
    before = ([s.to_dict() for s in hj.get_session().list_tasks()], set(live.user_ns))
    assert rejected(live, code, capsys).startswith(message)
    after = ([s.to_dict() for s in hj.get_session().list_tasks()], set(live.user_ns))
    assert after == before


def test_errors_before_any_task_do_not_start_a_session(ip, capsys):
    err = rejected(ip, "%delegate --bogus", capsys)
    assert err.startswith("%delegate: unrecognized arguments") and current.peek_session() is None
    err = rejected(ip, "%collect_task", capsys)
    assert err == "%collect_task: No tasks yet: start one with %delegate GOAL."


def test_help_is_the_real_argparse_help(ip, capsys):
    _, out, _ = cell(ip, "%delegate?", capsys)
    out = " ".join(out.split())
    assert "%delegate [-n NAME] [-m MODEL] [-c VAR] [-t FUNC]" in out
    assert "--max-iterations N model calls the task may make" in out
    assert "With %%delegate the cell body is the goal" in out


# ---- tab completion -------------------------------------------------------------------------
def completions(ip: InteractiveShell, line: str) -> set[str]:
    with provisionalcompleter():
        return {c.text for c in ip.Completer.completions(line, len(line))}


def test_task_magics_complete_ids_and_names(live, llm, capsys):
    cell(live, "a = %delegate -n alpha one\nb = %delegate -n beta two\n"
               "_ = a.collect(10), b.collect(10)", capsys)
    assert {"t1", "t2", "alpha", "beta"} <= completions(live, "%check_task ")
    matches = completions(live, "%steer_task al")
    assert "alpha" in matches and "t1" not in matches
    assert {"--all", "beta"} <= completions(live, "%cancel_task ")
    assert "alpha" not in completions(live, "%steer_task t1 ")  # only the first argument


# ---- settings changes -----------------------------------------------------------------------
def test_config_changes_apply_to_new_tasks_of_the_live_session(live, llm, capsys):
    first, _, _ = cell(live, "%delegate one", capsys)
    first.collect(10)
    cell(live, "%config HermesJupyter.subagent_model = 'cheap'\n"
               "%config HermesJupyter.max_iterations = 4", capsys)
    second, _, _ = cell(live, "%delegate two", capsys)
    second.collect(10)
    assert [r.model for r in llm.requests] == ["parent-model", "cheap"]
    assert second.max_iterations == 4 and hj.get_session().model == "parent-model"


def test_a_new_endpoint_waits_for_running_tasks_then_rebuilds(live, llm, capsys):
    entered, release, hold = held_tool()
    live.user_ns["hold"] = hold
    llm.on("held", Reply(tool_calls=[ToolCall("hold")]), Reply(text="old endpoint"))
    cell(live, "t = %delegate -t hold held", capsys)
    assert entered.wait(10)
    with FakeLLM() as other:
        other.default = Reply(text="new endpoint")
        _, out, _ = cell(live, f"%config HermesJupyter.base_url = '{other.base_url}'\n"
                               "a = %delegate still old\nb = %delegate still old too", capsys)
        assert out.count("apply once t1 end") == 1  # said once, not per task
        assert live.user_ns["a"].collect(10).summary == "ok"
        release.set()
        assert live.user_ns["t"].collect(10).summary == "old endpoint"
        live.user_ns["b"].collect(10)
        new, out, _ = cell(live, "%delegate on the new one", capsys)
        assert out.startswith("hermes_jupyter: settings changed; new tasks run on parent-model")
        assert new.id == "t4" and new.collect(10).summary == "new endpoint"
        report, _, _ = cell(live, "%check_task t1", capsys)  # earlier tasks stay reachable
        assert report.summary == "old endpoint"
        assert [s.id for s in live.run_line_magic("list_tasks", "")] == ["t1", "t2", "t3", "t4"]


# ---- secrets --------------------------------------------------------------------------------
def test_the_key_never_appears_in_any_output(live, llm, capsys):
    llm.on("fails", Fail(400, message=f"bad request for key {SECRET}"))
    llm.default = Reply(text="fine")
    shown: list[str] = []
    for code in ["t = %delegate fails", "_ = t.collect(10)", "%check_task t1", "%collect_task t1",
                 "%delegate works", "%collect_task", "%list_tasks", "%hermes_config",
                 "%config HermesJupyter", "%config HermesJupyter.api_keys", "hj_s = repr(t)"]:
        result, out, err = cell(live, code, capsys)
        shown += [out, err, repr(result), str(result)]
        for method in ("_repr_html_", "_repr_markdown_"):
            if hasattr(result, method):
                shown.append(getattr(result, method)())
    shown.append(repr(hj.get_session()))
    assert live.user_ns["t"].result.error  # the failure is reported...
    assert not [text for text in shown if "SECRET" in text]  # ...without the key


def test_from_the_demo_to_a_real_endpoint_without_restarting(ip, llm, capsys):
    cell(ip, "%config HermesJupyter.demo_pace = 0", capsys)
    demo_task, out, _ = cell(ip, "%delegate -m gpt-4o say hi", capsys)
    assert out == ("%delegate: -m gpt-4o ignored: tasks run on the demo model until an API key "
                   "or endpoint is set.\n")
    assert demo_task.collect(10).summary.startswith("[demo model]")
    _, out, _ = cell(ip, "%config HermesJupyter.model = 'gpt-4o'", capsys)
    assert out == ("hermes_jupyter: model 'gpt-4o' noted; tasks stay on the demo model until an "
                   "API key or endpoint is set.\n")
    cell(ip, f"%config HermesJupyter.base_url = '{llm.base_url}'\n"
             f"%config HermesJupyter.api_keys = ['{SECRET}']", capsys)
    real, out, _ = cell(ip, "%delegate now for real", capsys)
    assert out == (f"hermes_jupyter: settings changed; new tasks run on gpt-4o at "
                   f"{llm.base_url}.\n")
    assert real.id == "t2" and real.collect(10).summary == "ok" and real.model == "gpt-4o"
    assert [r.model for r in llm.requests] == ["gpt-4o"]


def test_a_cluster_set_on_the_demo_model_is_said_to_be_ignored_once(ip, capsys):
    cell(ip, "%config HermesJupyter.demo_pace = 0", capsys)
    cell(ip, "%config HermesJupyter.cluster = 'tcp://127.0.0.1:1'", capsys)
    task, out, _ = cell(ip, "%delegate say hi", capsys)
    assert out.count("HermesJupyter.cluster is ignored on the offline demo model") == 1
    assert task.collect(10).summary.startswith("[demo model]")  # it ran here, as said
    _, out, _ = cell(ip, "%delegate again", capsys)
    assert "cluster" not in out  # said once
