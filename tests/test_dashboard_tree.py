"""The dashboard's new rows and buttons, over the recording comm of test_dashboard.py and a
real Session on the loopback FakeLLM: Approve / Deny on a waiting task's card, cost on cards
and in the header, the tree (parent agents, children under their parent, one row per fan-out
group) and the results waiting for each parent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import hermes_jupyter as hj
from hermes_jupyter.notebook.widgets import Dashboard
from hermes_jupyter.notebook.widgets.cards import layout
from hermes_jupyter.notebook.widgets.static_view import header_line, render_text
from hermes_jupyter.testing import Reply, ToolCall

from .conftest import FAST_RETRY, SECRET
from .test_dashboard import comm_of, has_card
from .test_dashboard import recording_comms as recording_comms  # the fixture


def shell(command: str, call_id: str) -> Reply:
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command}, id=call_id)])


@pytest.fixture
def shell_session(llm, tmp_path) -> Iterator[hj.Session]:
    with hj.Session(model="priced", base_url=llm.base_url, api_keys=[SECRET],
                    workspace=tmp_path, retry=FAST_RETRY, toolsets=["shell"],
                    prices={"priced": (1.0, 2.0)}) as s:
        yield s


@pytest.fixture
def shell_dash(shell_session) -> Iterator[Dashboard]:
    d = Dashboard(shell_session, namespace={})
    yield d
    d.close()


def waiting(update: dict[str, Any], task_id: str) -> bool:
    return has_card(update, task_id, "awaiting_approval", lambda c: bool(c["pending"]))


# ---- approvals -----------------------------------------------------------------------------

def test_a_waiting_card_shows_its_call_and_the_buttons_decide_it(shell_session, shell_dash,
                                                                 llm, tmp_path):
    llm.on("first", shell("echo approved-run", "c1"), Reply("first done"))
    llm.on("second", shell("touch denied.txt", "c7"), Reply("did without it"))
    comm = comm_of(shell_dash)
    one, two = shell_session.delegate("first"), shell_session.delegate("second")
    comm.wait_for(lambda m: waiting(m, one.id))
    update = comm.wait_for(lambda m: waiting(m, two.id))
    [pending] = update[f"task:{two.id}"]["pending"]
    assert pending["call_id"] == "c7" and pending["tool"] == "run_shell"
    assert json.loads(pending["arguments"]) == {"command": "touch denied.txt"}
    assert "shell command" in pending["reason"]
    assert comm.wait_for(lambda m: m.get("_totals", {}).get("counts", {}).get(
        "awaiting_approval") == 2)

    reply = comm.click(action="approve", task=one.id, call_id="c1")
    assert reply["ok"] and reply["text"].startswith(f"Approved run_shell (c1) for {one.id}")
    reply = comm.click(action="deny", task=two.id, call_id="c7", reason="not on this machine")
    assert reply["ok"] and "not on this machine" in reply["text"]

    first, second = one.collect(20), two.collect(20)
    assert first.ok and "approved-run" in first.transcript[-2]["content"]
    told = next(m["content"] for m in second.transcript if m.get("role") == "tool")
    assert "denied" in told and "not on this machine" in told
    assert not (tmp_path / "denied.txt").exists()
    comm.wait_for(lambda m: has_card(m, two.id, "succeeded", lambda c: c["pending"] == []))


def test_a_decision_with_nothing_waiting_is_one_line_and_changes_nothing(shell_session,
                                                                       shell_dash, llm):
    llm.on("plain", Reply("no tools needed"))
    task = shell_session.delegate("plain")
    task.collect(20)
    comm = comm_of(shell_dash)
    for fields in ({"action": "approve", "task": task.id},
                   {"action": "deny", "task": task.id, "call_id": "c9", "reason": "no"},
                   {"action": "approve", "task": task.id, "call_id": 7}):
        reply = comm.click(**fields)
        assert reply["ok"] is False and "\n" not in reply["text"] and reply["text"]
    assert task.check().state is hj.TaskState.SUCCEEDED


def test_approve_all_on_a_group_card_frees_every_waiting_call(shell_session, shell_dash, llm):
    llm.on("group-a", shell("echo from-a", "ca"), Reply("a done"))
    llm.on("group-b", shell("echo from-b", "cb"), Reply("b done"))
    comm = comm_of(shell_dash)
    group = shell_session.map("group-{item}: run it", ["a", "b"])
    comm.wait_for(lambda m: any(g["counts"].get("awaiting_approval") == 2
                                for g in m.get("_totals", {}).get("groups", [])))
    reply = comm.click(action="approve_group", group="g1")
    assert reply["ok"] and reply["group"] == "g1"
    assert reply["text"] == "Approved 2 waiting calls of group g1."
    assert [r.summary for r in group.collect(20)] == ["a done", "b done"]
    for fields in ({"action": "approve_group", "group": "g1"},
                   {"action": "approve_group", "group": "g9"},
                   {"action": "approve_group"}):
        refused = comm.click(**fields)
        assert refused["ok"] is False and "\n" not in refused["text"]
    assert "waits for approval" in comm.click(action="approve_group", group="g1")["text"]


# ---- cost ----------------------------------------------------------------------------------

def test_cards_and_header_carry_the_cost_and_the_tasks_without_a_price(shell_session,
                                                                       shell_dash, llm):
    llm.default = Reply("answer", usage=(1000, 500))
    shell_session.delegate("priced one").collect(20)
    shell_session.delegate("unpriced one", model="no-such-model-xyz").collect(20)
    comm = comm_of(shell_dash)
    update = comm.wait_for(lambda m: has_card(m, "t2", "succeeded")
                           and m["_totals"]["cost_unknown"] == 1)
    header = update["_totals"]
    assert header["cost_usd"] == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
    cards = {c["id"]: c for c in shell_dash.cards()}
    assert cards["t1"]["cost_usd"] == pytest.approx(0.002) and cards["t2"]["cost_usd"] is None
    line = header_line(header)
    assert "$0.0020 (1 task without a price)" in line
    assert "$0.0020" in render_text(shell_dash.cards(), header)


# ---- the tree ------------------------------------------------------------------------------

def card(task_id: str, owner: str | None = None, parent: str | None = None,
         group: str | None = None) -> dict[str, Any]:
    return {"id": task_id, "owner": owner, "parent_id": parent, "group_id": group}


def rows_of(cards: list[dict[str, Any]], agents: list[str] = ()) -> list[tuple[Any, ...]]:
    header = {"agents": [{"owner": a, "name": a[6:], "waiting": 0, "children": 0, "live": 0}
                         for a in agents]}
    return [(r["kind"], r["id"], r["depth"], *([r["tasks"]] if "tasks" in r else []))
            for r in layout({c["id"]: c for c in cards}, header)]


def test_the_tree_rule_agents_then_user_tasks_children_under_parents_groups_once():
    cards = [
        card("t1"),
        card("t2", owner="agent:planner"),
        card("t3", owner="t2", parent="t2"),
        card("t4", group="g1"), card("t5", group="g1"), card("t6", group="g1"),
        card("t7", owner="agent:planner"),
        card("t8", owner="agent:old"),  # an agent closed since: still a node
        card("t9", owner="t5", parent="t5"),  # a group's task delegated: after the group
        card("t10", owner="agent:planner", group="g2"),
        card("t11", owner="agent:planner", group="g2"),
    ]
    assert rows_of(cards, agents=["agent:planner", "agent:idle"]) == [
        ("agent", "agent:planner", 0),
        ("group", "g2", 1, ["t10", "t11"]),
        ("task", "t7", 1),
        ("task", "t2", 1),
        ("task", "t3", 2),
        ("agent", "agent:idle", 0),
        ("agent", "agent:old", 0),
        ("task", "t8", 1),
        ("group", "g1", 0, ["t4", "t5", "t6"]),
        ("task", "t9", 1),
        ("task", "t1", 0),
    ]


def test_a_child_whose_parent_was_forgotten_stays_visible_at_the_top():
    assert rows_of([card("t4", owner="t2", parent="t2"), card("t1")]) == [
        ("task", "t4", 0), ("task", "t1", 0)]


def test_the_dashboard_sends_the_tree_and_the_waiting_results(session, llm):
    llm.on(lambda r: "tally" in r.first_user_text, Reply(text="42"))
    llm.on(lambda r: "parent agent" in r.messages[0]["content"],
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "tally", "name": "rows"})]),
           Reply(text="started"), Reply(text="it is 42"))
    llm.on("Say", Reply("said"))
    dash = Dashboard(session, namespace={})
    comm = comm_of(dash)
    try:
        agent = hj.Agent(session, name="planner")
        agent.ask("count the rows")
        assert agent.wait_for_results(1, timeout=10)
        group = session.map("Say {item}", ["a", "b", "c"], name="letters")
        group.collect(20)
        mine = session.delegate("Say mine")
        mine.collect(20)
        update = comm.wait_for(lambda m: m.get("_totals", {}).get("waiting") == 1
                               and has_card(m, mine.id, "succeeded"))
        agents = update["_totals"]["agents"]
        assert [(a["name"], a["waiting"], a["children"]) for a in agents] == [
            ("planner", 1, 1)]
        [letters] = update["_totals"]["groups"]
        assert (letters["id"], letters["done"], letters["total"]) == ("g1", 3, 3)
        state = dict(comm.open_state)
        for sent in comm.updates():
            state.update(sent)
        assert state["_layout"] == dash.rows()  # what the browser's model holds
        rows = [(r["kind"], r["id"], r["depth"], r.get("tasks")) for r in dash.rows()]
        assert rows == [("agent", "agent:planner", 0, None), ("task", "t1", 1, None),
                        ("task", mine.id, 0, None), ("group", "g1", 0, ["t2", "t3", "t4"])]
        bundle, _ = dash._repr_mimebundle_()  # what nbconvert and terminals show
        text = bundle["text/plain"].splitlines()
        assert "1 result waiting for the parent" in text[0]
        assert text[2].startswith("agent planner: 1 result waiting for the parent")
        assert text[3].startswith("  t1 'rows'") and text[4].startswith(f"{mine.id} ")
        assert text[5].startswith("group g1 'letters': 3/3 done")
        assert len(text) == 6, "a group's tasks are its one line"
        assert "agent planner: 1 result waiting" in bundle["text/html"]
        agent.ask()  # takes the result in
        comm.wait_for(lambda m: m.get("_totals", {}).get("waiting") == 0)
        agent.close()
    finally:
        dash.close()
