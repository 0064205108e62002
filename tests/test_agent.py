"""The parent agent: delegates in the background, hears back, acts only on its own children."""

from __future__ import annotations

import threading

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.agent import INTERRUPTED, RESULTS_HEADER
from hermes_jupyter.parent_tools import session_tools
from hermes_jupyter.testing import Reply, ToolCall


def parent_request(request) -> bool:
    return "delegate_task" in request.tool_names and request.first_user_text.startswith("Plan")


def test_parent_delegates_answers_at_once_and_hears_the_result_next_turn(session, llm):
    gate = threading.Event()
    llm.on(lambda r: "count the rows" in r.first_user_text,
           Reply(text="there are 42 rows"))
    llm.on(parent_request,
           Reply(text="Starting.", tool_calls=[ToolCall("delegate_task",
                                                        {"goal": "count the rows",
                                                         "name": "rows"})]),
           Reply(text="A child is counting the rows."),
           Reply(text="The table has 42 rows."))
    agent = hj.Agent(session)
    reply = agent.ask("Plan: how many rows?", on_text=lambda _: gate.set())
    assert gate.is_set()
    assert reply.text == "A child is counting the rows."
    assert [t.name for t in reply.children] == ["rows"]
    child = reply.children[0]
    assert child.owner == agent.owner_id and child.collect(10).summary == "there are 42 rows"
    assert agent.wait_for_results(1, timeout=10)
    second = agent.ask()  # an empty turn takes in what arrived
    assert second.text == "The table has 42 rows." and second.results == [child.id]
    last = llm.requests[-1]
    pushed = [m["content"] for m in last.messages if m["role"] == "user"][-1]
    assert pushed.startswith(RESULTS_HEADER)
    assert "there are 42 rows" in pushed and child.id in pushed and "count the rows" in pushed
    assert agent.waiting == 0
    system = last.messages[0]["content"]
    assert "do not need to poll" in system


def test_results_arrive_before_the_next_message(session, llm):
    llm.on(lambda r: "child goal" in r.first_user_text, Reply(text="child answer"))
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child goal"})]),
           Reply(text="started"), Reply(text="noted"))
    agent = hj.Agent(session)
    agent.ask("Plan something")
    assert agent.wait_for_results(1, timeout=10)
    agent.ask("what else?")
    users = [m["content"] for m in llm.requests[-1].messages if m["role"] == "user"]
    assert users[-2].startswith(RESULTS_HEADER) and users[-1] == "what else?"


def test_nothing_to_say_is_refused_in_one_line(session):
    agent = hj.Agent(session)
    with pytest.raises(hj.HermesError, match="Nothing to say"):
        agent.ask()
    with pytest.raises(hj.HermesError, match="max_depth"):
        hj.Agent(session, max_depth=0)


def test_agent_tools_see_only_its_own_children(session, llm):
    llm.default = Reply(text="user work done")
    users = session.delegate("user work", name="review")
    users.collect(10)
    agent = hj.Agent(session)
    tools = {t.__name__: t for t in session_tools(session, owner=agent)}
    assert "No task 'review'" in tools["check_task"]("review")
    assert f"No task '{users.id}'" in tools["check_task"](users.id)
    assert "No task" in tools["cancel_task"](users.id) and not users.cancel()
    assert "No task" in tools["steer_task"](users.id, "stop")
    assert "No tasks yet" in tools["list_tasks"]()
    child_id = tools["delegate_task"]("agent work", name="review")
    child = session.task(child_id)
    assert session.task("review") is users  # the child's name does not shadow the user's
    assert session.task_of(agent.owner_id, "review") is child
    assert child_id in tools["list_tasks"]() and users.id not in tools["list_tasks"]()


def test_children_cannot_delegate_unless_max_depth_allows(session, llm):
    llm.default = Reply(text="leaf")
    agent = hj.Agent(session, max_depth=1)
    tools = {t.__name__: t for t in session_tools(session, owner=agent)}
    tools["delegate_task"]("shallow child").strip()
    llm.wait_for_requests(1)
    assert llm.requests[0].tools is None

    deep = hj.Agent(session, name="deep", max_depth=2)
    deep_tools = {t.__name__: t for t in session_tools(session, owner=deep,
                                                                        max_depth=2)}
    child = session.task(deep_tools["delegate_task"]("deep child"))
    child.collect(10)
    child_request = next(r for r in llm.requests if "deep child" in r.first_user_text)
    assert "delegate_task" in child_request.tool_names and child.depth == 1


def test_grandchildren_at_depth_two_and_cascade_cancel(session, llm):
    llm.on(lambda r: "grandchild goal" in r.first_user_text,
           Reply(text="g", first_delay=30))
    llm.on(lambda r: "child goal" in r.first_user_text,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "grandchild goal"})]),
           Reply(text="c", first_delay=30))
    agent = hj.Agent(session, max_depth=2)
    tools = {t.__name__: t for t in session_tools(session, owner=agent,
                                                                   max_depth=2)}
    child = session.task(tools["delegate_task"]("child goal"))
    llm.wait_for_requests(3)  # child, grandchild, child again
    grandchild = next(t for t in session.tasks() if t.parent_id == child.id)
    assert grandchild.depth == 2 and grandchild.owner == child.id
    grand_request = next(r for r in llm.requests if "grandchild goal" in r.first_user_text)
    assert grand_request.tools is None  # depth 2 is the limit: no further delegation
    assert session.descendants(child) == [grandchild]
    assert child.cancel()
    assert grandchild.collect(10).state is hj.TaskState.CANCELLED
    assert child.collect(10).state is hj.TaskState.CANCELLED


def test_a_child_holding_the_only_slot_is_refused_not_deadlocked(llm, tmp_path):
    llm.on(lambda r: "grandchild" in r.first_user_text, Reply(text="never needed"))
    llm.on(lambda r: "child work" in r.first_user_text,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "grandchild"})]),
           Reply(text="did it myself"))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    max_concurrent=1) as s:
        agent = hj.Agent(s, max_depth=2)
        tools = {t.__name__: t for t in session_tools(s, owner=agent,
                                                                       max_depth=2)}
        child = s.task(tools["delegate_task"]("child work"))
        assert child.collect(10).summary == "did it myself"
        answer = [m["content"] for m in llm.requests[-1].messages if m["role"] == "tool"]
        assert answer[0].startswith("Error: No free slot")
        assert [t.id for t in s.tasks()] == [child.id]


def test_children_queue_behind_one_slot_and_all_report_back(llm, tmp_path):
    llm.on(lambda r: "part" in r.first_user_text and "delegate_task" not in r.tool_names,
           Reply(text="part done"), Reply(text="part done"))
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "part one"}),
                             ToolCall("delegate_task", {"goal": "part two"})]),
           Reply(text="two parts started"), Reply(text="both parts done"))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    max_concurrent=1) as s:
        agent = hj.Agent(s)
        assert agent.ask("Plan two parts").text == "two parts started"
        assert agent.wait_for_results(2, timeout=10)
        assert agent.ask().text == "both parts done"


def test_interrupting_a_turn_keeps_the_conversation_valid(session, llm):
    entered, release = threading.Event(), threading.Event()

    def slow_lookup() -> str:
        """Look something up slowly."""
        entered.set()
        release.wait(10)
        return "looked up"

    llm.on(parent_request,
           Reply(text="Looking it up.", tool_calls=[ToolCall("slow_lookup")]),
           Reply(text="Fine, asking again."))
    agent = hj.Agent(session, tools=[slow_lookup])

    def interrupt(piece: str) -> None:
        if entered.wait(10):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        agent.ask("Plan a lookup", on_text=interrupt)
    release.set()
    history = agent.history
    calls = [c["id"] for m in history for c in m.get("tool_calls") or ()]
    answers = {m["tool_call_id"]: m["content"] for m in history if m["role"] == "tool"}
    assert calls and set(calls) == set(answers) and answers[calls[0]] == INTERRUPTED
    assert agent.ask("again?").text == "Fine, asking again."
    sent = llm.requests[-1].messages
    assert any(m.get("role") == "tool" and m["content"] == INTERRUPTED for m in sent)


def test_no_secret_reaches_the_model_the_cell_or_the_history(session, llm):
    """A key the user pastes, or one the model streams back split across chunks, is masked."""
    from .conftest import SECRET

    llm.on(parent_request, Reply(text=f"Your key is {SECRET} indeed.", chunk_size=7))
    shown: list[str] = []
    agent = hj.Agent(session)
    reply = agent.ask(f"Plan: is {SECRET} my key?", on_text=shown.append)
    assert SECRET not in llm.requests[-1].body["messages"][-1]["content"]
    assert SECRET not in "".join(shown) and "***" in "".join(shown)
    assert SECRET not in reply.text and SECRET not in str(agent.history)
