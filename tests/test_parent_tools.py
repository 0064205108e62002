"""A parent agent orchestrates subagents through `session_tools`."""

from __future__ import annotations

import threading

import hermes_jupyter as hj
from hermes_jupyter.parent_tools import session_tools
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import function_schema


def tools_by_name(session):
    return {tool.__name__: tool for tool in session_tools(session)}


def test_tools_are_plain_typed_documented_functions(session):
    tools = tools_by_name(session)
    assert list(tools) == ["delegate_task", "check_task", "steer_task", "collect_task",
                           "cancel_task", "list_tasks"]
    schema = function_schema(tools["delegate_task"])["function"]
    assert schema["description"].startswith("Start a background subagent")
    assert schema["parameters"]["required"] == ["goal"]
    assert schema["parameters"]["properties"]["goal"] == {
        "type": "string", "description": "what the subagent should do, complete and "
                                         "self-contained."}
    timeout = function_schema(tools["collect_task"])["function"]["parameters"]["properties"]
    assert timeout["timeout"]["type"] == "number" and timeout["timeout"]["default"] == 10


def test_a_parent_task_delegates_and_collects_a_child(session, llm):
    llm.on("orchestrate",
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child work", "name": "kid"})]),
           Reply(tool_calls=[ToolCall("collect_task", {"task_id": "kid", "timeout": 10})]),
           Reply(text="parent done"))
    llm.on("child work", Reply(text="the child found 7 things"))
    parent = session.delegate("orchestrate the audit", tools=session_tools(session))
    result = parent.collect(10)
    assert result.summary == "parent done"
    child = session.task("kid")
    assert child.id == "t2" and child.collect(1).summary == "the child found 7 things"
    tool_answers = [m["content"] for m in llm.requests[-1].messages if m["role"] == "tool"]
    assert tool_answers == ["t2", "the child found 7 things"]
    child_request = next(r for r in llm.requests if "child work" in r.first_user_text)
    assert child_request.tools is None  # children cannot delegate further


def test_check_steer_cancel_and_list_answer_in_text(session, llm):
    tools = tools_by_name(session)
    held, gate = threading.Event(), threading.Event()

    def hold() -> str:
        """Wait for the test."""
        held.set()
        gate.wait(10)
        return "released"

    llm.on("held", Reply(tool_calls=[ToolCall("hold")]), Reply(text="done"))
    task = session.delegate("held child", tools=[hold], name="h")
    assert held.wait(10)
    assert tools["check_task"]("h").startswith("t1 'h': running")
    assert tools["steer_task"]("t1", "go faster") == "Steering message queued for t1."
    assert "t1  h     running" in tools["list_tasks"]()
    assert tools["collect_task"]("t1", 0).startswith("t1 is still running after 0s")
    assert tools["cancel_task"]("t1") == "t1 cancelled."
    gate.set()
    assert task.collect(5).state is hj.TaskState.CANCELLED
    assert tools["cancel_task"]("t1") == "t1 had already ended; nothing to cancel."
    assert tools["collect_task"]("t1").startswith("t1 'h': cancelled")


def test_bad_input_becomes_an_answer_the_model_can_act_on(session):
    tools = tools_by_name(session)
    assert tools["check_task"]("t9").startswith("Error: No task 't9'.")
    assert tools["delegate_task"]("  ").startswith("Error: The goal is empty")
    assert session.tasks() == []
