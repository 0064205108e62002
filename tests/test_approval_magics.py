"""`%approve_task`, `%deny_task` and the approval settings through a real IPython shell."""

from __future__ import annotations

import pytest

from hermes_jupyter.core.models import TaskState
from hermes_jupyter.notebook import kernel
from hermes_jupyter.testing import Reply, ToolCall

from .test_approvals import Asked


def shell(command: str, call_id: str) -> Reply:
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command}, id=call_id)])


@pytest.fixture
def waiting(live, llm, capsys):
    """t1 waits on two shell calls (c1, c2) after `%delegate --toolsets shell`."""
    llm.on("go", Reply(tool_calls=[ToolCall("run_shell", {"command": "echo one"}, id="c1"),
                                   ToolCall("run_shell", {"command": "echo two"}, id="c2")]),
           Reply("done"))
    asked = Asked(kernel.get_session())
    assert live.run_cell("t = %delegate --toolsets shell go").success
    asked.wait(2)
    capsys.readouterr()
    return live.user_ns["t"]


def test_check_and_list_show_the_pending_calls(live, waiting):
    report = live.run_line_magic("check_task", "t1")
    text = repr(report)
    assert "awaiting_approval" in text and "c1: run_shell" in text and "%approve_task t1" in text
    assert "c1" in report._repr_html_()
    table = repr(live.run_line_magic("list_tasks", ""))
    assert "awaiting approval: c1 run_shell" in table and "(+1 more)" in table
    waiting.cancel()


def test_approve_all_and_remember(live, waiting, capsys):
    assert live.run_cell("%approve_task t1 --all --remember 'echo *'").success
    out, _ = capsys.readouterr()
    assert "Approved 2 calls of t1: c1 run_shell" in out and "'echo *'" in out
    result = waiting.collect(20)
    assert result.ok
    assert kernel.get_session().approval_policy.mode == "ask"


def test_approve_one_then_deny_with_a_reason(live, llm, waiting, capsys):
    assert live.run_cell("%approve_task t1 c2").success
    assert [p.call_id for p in waiting.check().pending_approvals] == ["c1"]
    assert live.run_cell("%deny_task t not today, thanks").success
    out, _ = capsys.readouterr()
    assert "Denied t1's call c1 run_shell" in out and "'not today, thanks'" in out
    result = waiting.collect(20)
    denied = next(m["content"] for m in result.transcript if m.get("tool_call_id") == "c1")
    assert "not today, thanks" in denied


@pytest.mark.parametrize("line", [
    "%approve_task", "%approve_task t1 c1 --all", "%approve_task t1 c9", "%approve_task nope",
    "%approve_task t1 --remember 'ls; rm x'", "%approve_task t1 --bogus", "%deny_task",
    "%deny_task --all", "%deny_task nope", "%approve_task t1 'unclosed",
])
def test_rejected_lines_fail_the_cell_in_one_line_and_change_nothing(live, waiting, capsys,
                                                                     line):
    result = live.run_cell(line)
    out, err = capsys.readouterr()
    assert not result.success
    assert "Traceback" not in out + err and "UsageError" in err
    assert len(err.strip().splitlines()) == 1, err
    assert waiting.state is TaskState.AWAITING_APPROVAL
    assert len(waiting.check().pending_approvals) == 2
    waiting.cancel()


def test_approval_settings_apply_to_the_live_session(live, llm, capsys):
    session = kernel.get_session()
    live.run_line_magic("config", "HermesJupyter.approval = 'deny'")
    live.run_line_magic("config", "HermesJupyter.approval_allowlist = ['git status']")
    live.run_line_magic("config", "HermesJupyter.approve_file_writes = True")
    assert session.approval_policy.mode == "deny"
    assert session.approval_policy.allowlist == ("git status",)
    assert session.approve_file_writes
    rows = {name: value for name, value, _ in repr_rows(live)}
    assert rows["approval"] == "deny" and rows["approval_allowlist"] == "git status"
    live.run_cell("%config HermesJupyter.approval_allowlist = ['ls | sh']")
    live.run_cell("%config HermesJupyter.approval = 'maybe'")
    capsys.readouterr()
    assert session.approval_policy.allowlist == ("git status",)
    assert session.approval_policy.mode == "deny"
    llm.on("go", shell("touch made.txt", "c1"), Reply("done"))
    assert live.run_cell("t = %delegate --toolsets shell go").success
    result = live.user_ns["t"].collect(20)
    assert "approval='deny'" in result.transcript[-2]["content"]


def repr_rows(live):
    return live.run_line_magic("hermes_config", "").rows
