"""The shell toolset: bash -c in the workspace, its whole process group killed, a scrubbed
environment, exit code and stderr returned."""

from __future__ import annotations

import asyncio

from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import ProcessPolicy, ShellRunner

from .conftest import SECRET


def shell_call(command: str, **args: object) -> Reply:
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command, **args})])


def test_the_environment_is_scrubbed_like_the_python_toolset(tmp_path, monkeypatch):
    monkeypatch.setenv("HJ_TEST_API_KEY", "plain-secret-value")
    monkeypatch.setenv("HJ_TEST_VISIBLE", "visible-value")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    policy = ProcessPolicy()
    out = asyncio.run(ShellRunner(tmp_path, policy=policy).run_shell("env; pwd"))
    assert "HJ_TEST_VISIBLE=visible-value" in out
    assert "plain-secret-value" not in out and SECRET not in out
    assert str(tmp_path.resolve()) in out
    assert out.endswith("[exit code 0]")


def test_exit_code_and_stderr_reach_the_model(session, llm):
    llm.on("fail", shell_call("echo to-out; echo to-err >&2; exit 3"), Reply("saw it"))
    task = session.delegate("fail", toolsets=["shell"], approval="auto")
    result = task.collect(20)
    told = llm.requests[-1].messages[-1]["content"]
    assert "to-out" in told and "to-err" in told and told.endswith("[exit code 3]")
    assert result.tool_trace[0].name == "run_shell"


def test_output_is_capped_while_read(tmp_path):
    runner = ShellRunner(tmp_path, policy=ProcessPolicy(output_limit=1000))
    out = asyncio.run(runner.run_shell("head -c 5000000 /dev/zero | tr '\\0' x"))
    assert len(out) < 1200 and "bytes of output cut" in out


def test_shell_is_under_approval_ask_by_default(session, llm):
    assert session.approval_policy.mode == "ask"
    task = session.delegate("x", toolsets=["shell"])
    assert task.tools.approval_reason("run_shell") == "run_shell runs a shell command"
    session.cancel(task)
