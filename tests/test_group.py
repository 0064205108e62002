"""Fan-out: `Session.map` → `TaskGroup`, over FakeLLM on real sockets."""

from __future__ import annotations

import threading

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.group import ITEM_TEXT_CAP, goal_for
from hermes_jupyter.testing import Reply, ToolCall


def echo(request) -> Reply:
    """Answer with the first user message, so each result says which item it had."""
    return Reply(text=f"done: {request.first_user_text.removeprefix('Goal:' + chr(10))}")


def test_one_task_per_item_results_in_item_order(session, llm):
    llm.responder = echo
    group = session.map("Describe {item} in one line", ["apples", "pears", "plums"],
                        name="fruit")
    results = group.collect(10)
    assert [r.summary for r in results] == [
        "done: Describe apples in one line", "done: Describe pears in one line",
        "done: Describe plums in one line"]
    assert [t.name for t in group.tasks] == ["fruit[0]", "fruit[1]", "fruit[2]"]
    status = group.check()
    assert status.done == status.total == 3 and status.counts == {"succeeded": 3}
    assert status.usage.api_calls == 3 and repr(group) == "<TaskGroup g1 'fruit': 3/3 done>"


def test_items_without_a_placeholder_go_to_the_context(session, llm):
    llm.responder = echo
    group = session.map("Summarise the record", [{"id": 1, "text": "a {brace}"}])
    summary = group.collect(10)[0].summary
    assert "Summarise the record" in summary
    assert 'Item:\n{"id": 1, "text": "a {brace}"}' in summary
    goal, context = goal_for("Keep {this} and {item}", 7, "ctx")
    assert (goal, context) == ("Keep {this} and 7", "ctx")
    assert len(goal_for("{item}", "x" * 10_000, "")[0]) == ITEM_TEXT_CAP + 1


def test_group_limit_holds_within_the_session_cap(session, llm):
    gate = threading.Event()
    running = []
    peak = []
    lock = threading.Lock()

    def tool_gate() -> str:
        """Wait for the test."""
        with lock:
            running.append(1)
            peak.append(len(running))
        gate.wait(10)
        with lock:
            running.pop()
        return "ok"

    llm.responder = lambda r: (Reply(tool_calls=[ToolCall("tool_gate")]) if r.tool_results == 0
                               else Reply(text="item done"))
    group = session.map("work on {item}", list(range(6)), max_concurrent=2, tools=[tool_gate])
    llm.wait_for_requests(2)
    assert len(group.tasks) == 2  # the rest wait for the group's own limit
    gate.set()
    results = group.collect(20)
    assert len(results) == 6 and all(r.ok for r in results)
    assert max(peak) <= 2


def test_cancel_stops_running_and_unstarted_items(session, llm):
    llm.default = Reply(text="slow", first_delay=30)
    group = session.map("item {item}", list(range(5)), max_concurrent=2)
    llm.wait_for_requests(2)
    assert group.cancel() == 5
    results = group.collect(10)
    assert [r.state for r in results] == [hj.TaskState.CANCELLED] * 2
    assert group.done() and group.check().counts == {"cancelled": 5}


def test_collect_timeout_leaves_the_group_running(session, llm):
    llm.default = Reply(text="slow", first_delay=30)
    group = session.map("item {item}", ["a"])
    with pytest.raises(hj.CollectTimeout, match="0 of 1 task ended"):
        group.collect(0.05)
    assert not group.done()
    group.cancel()


def test_to_pandas_has_one_row_per_item(session, llm):
    pytest.importorskip("pandas")
    llm.responder = echo
    group = session.map("say {item}", ["x", "y"])
    group.collect(10)
    frame = group.to_pandas()
    assert list(frame["item"]) == ["x", "y"] and list(frame["state"]) == ["succeeded"] * 2
    assert list(frame.columns[:3]) == ["item", "id", "state"]


@pytest.mark.parametrize("items, message", [("abc", "Bad items"), ([], "the list is empty"),
                                             (5, "Bad items")])
def test_bad_items_are_refused_in_one_line(session, items, message):
    with pytest.raises(hj.HermesError, match=message):
        session.map("x {item}", items)
    assert session.tasks() == []


def test_unknown_options_and_bad_limits_are_refused(session):
    with pytest.raises(hj.HermesError, match="map\\(\\) takes no 'colour'"):
        session.map("x {item}", [1], colour="red")
    with pytest.raises(hj.HermesError, match="max_concurrent"):
        session.map("x {item}", [1], max_concurrent=0)
    assert session.tasks() == []
