"""What every face's header reads (`refresher.session_totals`) and what a task's snapshot says
of its group: fan-out groups, parent agents' waiting results, known and unknown cost.

Over FakeLLM on real sockets; the refresher is real (its sink runs on its own thread)."""

from __future__ import annotations

import queue
import threading
from typing import Any

import hermes_jupyter as hj
from hermes_jupyter.engine.refresher import get_refresher, session_totals
from hermes_jupyter.testing import Reply, ToolCall

from .conftest import FAST_RETRY, SECRET


def parent_request(request: Any) -> bool:
    return "parent agent" in request.messages[0]["content"]


def test_group_tasks_carry_the_group_id_and_the_header_lists_the_group(session, llm):
    llm.responder = lambda r: Reply(text="ok")
    first = session.map("Say {item}", ["a", "b"], name="letters")
    second = session.map("Say {item}", ["c"])
    first.collect(10), second.collect(10)
    assert (first.id, second.id) == ("g1", "g2")
    assert {t.check().group_id for t in first.tasks} == {"g1"}
    assert session.delegate("alone").check().group_id is None
    groups = session_totals(session)["groups"]
    assert [(g["id"], g["name"], g["total"], g["done"]) for g in groups] == [
        ("g1", "letters", 2, 2), ("g2", None, 1, 1)]
    assert groups[0]["counts"] == {"succeeded": 2} and groups[0]["goal"] == "Say {item}"


def test_known_cost_and_tasks_of_unknown_cost_are_both_counted(llm, tmp_path):
    llm.responder = lambda r: Reply(text="ok")
    with hj.Session(model="priced", base_url=llm.base_url, api_keys=[SECRET],
                    workspace=tmp_path, retry=FAST_RETRY,
                    prices={"priced": (1.0, 2.0)}) as s:
        s.delegate("one").collect(10)
        s.delegate("two", model="unpriced-model-xyz").collect(10)
        totals = session_totals(s)
        assert totals["cost_unknown"] == 1
        assert totals["cost_usd"] is not None and totals["cost_usd"] > 0
        group = s.map("Say {item}", ["x", "y"])
        group.collect(10)
        status = group.check()
        assert status.usage.cost_usd is not None and status.cost_unknown == 0
        assert f"${status.usage.cost_usd:.4f}" in repr(group)


def test_no_call_of_known_cost_is_none_not_zero(session, llm):
    llm.responder = lambda r: Reply(text="ok")
    session.delegate("one").collect(10)
    totals = session_totals(session)
    assert totals["cost_usd"] is None and totals["cost_unknown"] == 1


def test_the_header_says_how_many_results_wait_for_each_parent(session, llm):
    llm.on(lambda r: "tally" in r.first_user_text, Reply(text="42"))
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "tally", "name": "rows"})]),
           Reply(text="started"), Reply(text="it is 42"))
    headers: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    stop = get_refresher(session).add_sink(lambda changed, totals: headers.put(totals))
    try:
        agent = hj.Agent(session, name="planner")
        assert session_totals(session)["agents"] == [
            {"name": "planner", "owner": "agent:planner", "waiting": 0, "children": 0,
             "live": 0}]
        agent.ask("count the rows")
        assert agent.wait_for_results(1, timeout=10)
        _until(headers, lambda t: t["agents"] and t["agents"][0]["waiting"] == 1)
        agent.ask()  # takes the result in: a tick with no task change says 0 again
        _until(headers, lambda t: t["agents"] and t["agents"][0]["waiting"] == 0)
        assert session_totals(session)["agents"][0]["children"] == 1
        agent.close()
        assert session_totals(session)["agents"] == []
    finally:
        stop()


def _until(headers: queue.SimpleQueue[dict[str, Any]], ok: Any) -> None:
    """Read headers the refresher sent until one satisfies `ok` (bounded, no sleeping)."""
    deadline = threading.Event()
    timer = threading.Timer(10, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            try:
                totals = headers.get(timeout=0.5)
            except queue.Empty:
                continue
            if ok(totals):
                return
        raise AssertionError("no header said so within 10 s")
    finally:
        timer.cancel()


def test_the_cost_the_provider_reports_wins_over_prices(llm, tmp_path):
    llm.responder = lambda r: Reply(text="ok", usage=(1000, 10), cost=0.0042)
    with hj.Session(model="priced", base_url=llm.base_url, api_keys=[SECRET],
                    workspace=tmp_path, retry=FAST_RETRY,
                    prices={"priced": (1000.0, 1000.0)}) as s:
        assert s.delegate("one").collect(10).usage.cost_usd == 0.0042  # not $1.01 priced
        unpriced = s.delegate("two", model="no-price-anywhere-xyz").collect(10)
        assert unpriced.usage.cost_usd == 0.0042  # a model no table knows still costs
        assert session_totals(s)["cost_usd"] == 0.0084 and session_totals(s)["cost_unknown"] == 0
