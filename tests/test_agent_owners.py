"""One live parent agent per name and session: the name is the owner id its children carry,
so a second agent of that name could act on the first one's children."""

from __future__ import annotations

import threading

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.agent import AgentBook
from hermes_jupyter.testing import Reply, ToolCall


def test_a_second_live_agent_of_the_same_name_is_refused_in_one_line(session, llm):
    a = hj.Agent(session, name="x")
    with pytest.raises(hj.HermesError) as caught:
        hj.Agent(session, name="x")
    message = str(caught.value)
    assert "\n" not in message and "already live" in message
    assert "hj.get_agent('x')" in message and "close it" in message
    assert session.attachment("agents", AgentBook).agents() == [a]


def test_the_default_name_collides_too_and_closing_frees_it(session, llm):
    first = hj.Agent(session)  # the README's hj.Agent(session): named "default"
    with pytest.raises(hj.HermesError, match="'default' is already live"):
        hj.Agent(session)
    first.close()
    second = hj.Agent(session)
    assert [s["name"] for s in session.attachment("agents", AgentBook).summaries()] == [
        "default"]
    assert session.attachment("agents", AgentBook).agents() == [second]
    with pytest.raises(hj.HermesError, match="is closed"):
        first.ask("still there?")


def test_the_refused_agent_cannot_cancel_the_first_ones_child(session, llm):
    """The reviewer's case: b took a's name and cancelled a's child."""
    llm.on("CHILD", Reply("child output", first_delay=30))  # alive until cancelled below
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "CHILD", "name": "kid"})]),
           Reply("A started"))
    a = hj.Agent(session, name="x")
    a.ask("A: start a child")
    with pytest.raises(hj.HermesError):
        hj.Agent(session, name="x")
    b = hj.Agent(session, name="y")  # another name: another owner
    llm.on(lambda r: "B:" in r.first_user_text,
           Reply(tool_calls=[ToolCall("cancel_task", {"task_id": "kid"})]), Reply("B done"))
    b.ask("B: cancel kid")
    told = [m["content"] for m in b.history if m["role"] == "tool"]
    assert len(told) == 1 and told[0].startswith("Error: No task 'kid'")
    kid = a.children[0]
    assert not kid.done()
    session.cancel(kid)
    assert kid.collect(10).exit_reason.value == "cancelled"


def test_two_threads_making_one_name_at_once_get_one_agent(session):
    made: list[hj.Agent] = []
    refused: list[str] = []
    start = threading.Barrier(4)

    def make() -> None:
        start.wait()
        try:
            made.append(hj.Agent(session, name="race"))
        except hj.HermesError as err:
            refused.append(str(err))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(refused) == 3
    assert session.attachment("agents", AgentBook).agents() == made


@pytest.mark.parametrize("bad", ["notasession", 3, object()])
def test_a_session_that_is_not_one_is_refused_in_one_line(bad):
    with pytest.raises(hj.HermesError) as caught:
        hj.Agent(bad)
    assert "\n" not in str(caught.value) and "Bad session" in str(caught.value)


def test_move_to_carries_the_conversation_and_waiting_results(session, llm, tmp_path):
    llm.on(lambda r: "delegate_task" not in r.tool_names, Reply("child says 7"))
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "count", "name": "kid"})]),
           Reply("started"), Reply("the child said 7"))
    first = hj.Agent(session, name="p", model="parent-x")
    first.ask("count things")
    assert first.wait_for_results(1, timeout=10)
    with hj.Session(model="other", base_url=llm.base_url, api_keys=["k2-abcdef"],
                    workspace=tmp_path) as second:
        moved = first.move_to(second)
        assert first.closed and moved.session is second and moved.model == "parent-x"
        assert moved.history == first.history and moved.waiting == 1
        assert moved.children == [] and [t.name for t in first.children] == ["kid"]
        assert session.attachment("agents", AgentBook).agents() == []  # the name is free there
        assert moved.ask().text == "the child said 7"
        with pytest.raises(hj.HermesError, match="already live"):
            hj.Agent(second, name="p")
