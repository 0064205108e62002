"""A parent's `delegate_task(toolsets=[...])`, and what its tools say about starting tasks."""

from __future__ import annotations

import json
import sys

import pytest

import hermes_jupyter as hj
from hermes_jupyter.demo import demo_session
from hermes_jupyter.parent_tools import session_tools
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import function_schema

from .conftest import FAST_RETRY, SECRET


def tools_by_name(session, owner=None):
    return {tool.__name__: tool for tool in session_tools(session, owner)}


def child_request(llm, goal):
    return next(r for r in llm.requests if goal in r.first_user_text)


def test_delegate_task_offers_toolsets_and_names_them(session):
    schema = function_schema(tools_by_name(session)["delegate_task"])["function"]
    toolsets = schema["parameters"]["properties"]["toolsets"]
    assert toolsets["anyOf"][0]["type"] == "array" or toolsets.get("type") == "array"
    for name in ("files", "python", "shell", "mcp:SERVER"):
        assert name in toolsets["description"]
    assert schema["parameters"]["required"] == ["goal"]


def test_a_child_gets_the_toolsets_its_parent_named(session, llm):
    tools = tools_by_name(session)
    task_id = tools["delegate_task"](goal="read the notes", toolsets=["files", "python"])
    assert session.task(task_id).collect(10).ok
    offered = child_request(llm, "read the notes").tool_names
    assert {"read_file", "list_files", "run_python"} <= set(offered)


def test_without_toolsets_a_child_inherits_the_sessions(llm, tmp_path):
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    retry=FAST_RETRY, toolsets=["files"]) as session:
        tools = tools_by_name(session)
        assert session.task(tools["delegate_task"](goal="look around")).collect(10).ok
        assert "read_file" in child_request(llm, "look around").tool_names
        assert session.task(tools["delegate_task"](goal="no tools", toolsets=[])).collect(10).ok
        assert child_request(llm, "no tools").tool_names == []


@pytest.mark.parametrize("bad", [["web"], ["files", "mcp:nope"], ["mcp:"], "files", [3]])
def test_an_unknown_toolset_is_an_error_answer_listing_the_choices(session, bad):
    answer = tools_by_name(session)["delegate_task"](goal="x", toolsets=bad)
    assert answer.startswith("Error: ") and "\n" not in answer
    assert "files, python, shell" in answer
    assert session.tasks() == []  # nothing started


def test_the_choices_include_the_sessions_mcp_servers(llm, tmp_path):
    servers = {"gh": {"command": sys.executable, "args": ["-c", "pass"]}}
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    retry=FAST_RETRY, mcp_servers=servers) as session:
        tools = tools_by_name(session)
        answer = tools["delegate_task"](goal="x", toolsets=["mcp:other"])
        assert answer.startswith("Error: Unknown toolset 'mcp:other'") and "mcp:gh" in answer
        assert session.tasks() == []


def test_the_readme_parent_example_gives_its_children_tools_on_the_demo_model(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\n")
    with demo_session(workspace=tmp_path) as session:
        agent = hj.Agent(session)
        reply = agent.ask("- summarise data/sales.csv\n- list the files in data/")
        assert len(reply.children) == 2
        results = [t.collect(30) for t in reply.children]
        for result in results:
            assert result.ok and "Tools offered: none" not in result.summary
        assert "amount" in results[0].summary and "sales.csv" in results[1].summary


def test_an_empty_list_tells_the_model_to_use_delegate_task_not_a_magic(session, llm):
    agent = hj.Agent(session)
    answer = tools_by_name(session, agent)["list_tasks"]()
    assert answer == "No tasks yet: start one with delegate_task."
    assert "%" not in tools_by_name(session)["list_tasks"]()


def test_the_users_view_of_an_agents_child_name_points_to_its_id(session, llm):
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child", "name": "kid"})]),
           Reply("started"))
    agent = hj.Agent(session)
    kid = agent.ask("go").children[0]
    with pytest.raises(hj.UnknownTaskError) as caught:
        session.task("kid")
    assert f"'kid' is agent default's task {kid.id}: use {kid.id}." in str(caught.value)
    assert session.task(kid.id) is kid
    # a task's child named the same way: the task is said
    child_tools = tools_by_name(session, kid)
    grandchild = session.task(child_tools["delegate_task"](goal="deeper", name="deep"))
    with pytest.raises(hj.UnknownTaskError, match=f"task {kid.id}'s task {grandchild.id}"):
        session.task("deep")
    # an agent's own view never learns about others' names
    other = hj.Agent(session, name="other")
    answer = tools_by_name(session, other)["check_task"]("kid")
    assert answer.startswith("Error: No task 'kid'") and "agent default" not in answer


def test_the_demo_parent_names_the_toolsets_a_part_needs(tmp_path):
    with demo_session(workspace=tmp_path) as session:
        agent = hj.Agent(session)
        reply = agent.ask("- compute `sum(range(10))`\n- write a haiku about tea\n"
                          "- read notes.md")
        args = [json.loads(call.arguments) for call in reply.tool_calls]
        assert [a.get("toolsets") for a in args] == [["python"], None, ["files"]]
        for task in reply.children:
            task.collect(30)
