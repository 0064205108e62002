"""The dashboard's approvals, tree and group cards in a real JupyterLab and a real Chromium.

Approve on one waiting task's card and Deny (with a reason typed on the card) on another:
the kernel's tasks end as those decisions say. A parent agent's row shows "1 result waiting
for the parent" with its child under it, and a fan-out group is one card with its progress.
Screenshots: test-artifacts/dashboard-approvals*.png, dashboard-tree*.png.
"""

from __future__ import annotations

import pytest

from hermes_jupyter.testing import Reply, ToolCall

pytest.register_assert_rewrite("tests.jupyter_browser")
pytest_plugins = ["tests.jupyter_browser"]  # the fixtures: page, lab_llm, jupyter_lab, chromium

from .jupyter_browser import ARTIFACTS, open_notebook, run_cell, screenshot  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def shell(command: str, call_id: str) -> Reply:
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command}, id=call_id)])


def card(page, task_id: str):
    return page.locator(f".hj-dash .hj-card[data-task-id={task_id}]").first


def output(cell) -> str:
    return cell.locator(".jp-OutputArea-output").last.inner_text()


def test_approve_and_deny_from_the_cards(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.on("approve-me", shell("echo approved-by-click", "call_a"), Reply("it ran"))
    lab_llm.on("deny-me", shell("touch denied-file.txt", "call_d"), Reply("did without it"))
    lab_llm.on("decide-later", shell("echo later", "call_l"), Reply("fine"))
    lab_llm.on("fan-approve x", shell("echo gx", "call_gx"), Reply("x ran"))
    lab_llm.on("fan-approve y", shell("echo gy", "call_gy"), Reply("y ran"))
    open_notebook(page, "approvals.ipynb")
    run_cell(page, "import hermes_jupyter as hj\n"
                   "from hermes_jupyter.notebook.widgets import dashboard\n"
                   "s = hj.Session(toolsets=['shell'])\n"
                   "dashboard(s)")
    run_cell(page, "one = s.delegate('approve-me: print a line')\n"
                   "two = s.delegate('deny-me: make a file')")
    one, two = card(page, "t1"), card(page, "t2")
    for c, call in ((one, "call_a"), (two, "call_d")):
        expect(c.locator(".hj-badge")).to_have_text("awaiting_approval")
        pending = c.locator(f".hj-pending[data-call-id={call}]")
        expect(pending).to_contain_text("run_shell")
        expect(pending.locator(".hj-call-id")).to_have_text(call)
        expect(pending).to_contain_text("shell command")  # why it needs approval
    expect(one.locator(".hj-args")).to_contain_text("echo approved-by-click")
    expect(page.locator(".hj-dash .hj-count[data-state=awaiting_approval]")).to_have_text(
        "2 awaiting approval")
    screenshot(page, "dashboard-approvals")
    widget = ARTIFACTS / "dashboard-approvals-widget.png"
    page.locator(".hj-dash").first.screenshot(path=str(widget))

    # (The reply line goes with the state it answered, like Cancel's: the badge tells.)
    one.locator(".hj-approve").click()
    two.locator(".hj-deny-reason").fill("not in this notebook")
    two.locator(".hj-deny").click()
    expect(one.locator(".hj-badge")).to_have_text("succeeded")
    expect(two.locator(".hj-badge")).to_have_text("succeeded")
    expect(one.locator(".hj-approvals")).to_be_hidden()
    expect(page.locator(".hj-dash .hj-count[data-state=awaiting_approval]")).to_have_count(0)

    cell = run_cell(page, "import os\n"
                          "r1, r2 = one.collect(30), two.collect(30)\n"
                          "def tool_said(r):\n"
                          "    return next(m['content'] for m in r.transcript\n"
                          "                if m.get('role') == 'tool')\n"
                          "ran, told = tool_said(r1), tool_said(r2)\n"
                          "print(r1.summary, 'approved-by-click' in ran, '|', r2.summary,\n"
                          "      'denied' in told, 'not in this notebook' in told,\n"
                          "      os.path.exists('denied-file.txt'))")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text(
        "it ran True | did without it True True False")

    # Decided in code: the card's approval block goes, the task goes on.
    run_cell(page, "three = s.delegate('decide-later: once more')")
    three = card(page, "t3")
    expect(three.locator(".hj-approve")).to_be_visible()
    run_cell(page, "s.deny(three, reason='decided in code')")
    expect(three.locator(".hj-badge")).to_have_text("succeeded")
    expect(three.locator(".hj-approvals")).to_be_hidden()

    # A fan-out group waiting for approval: its card opens, one click approves them all.
    run_cell(page, "g = s.map('fan-approve {item}', ['x', 'y'])")
    group = page.locator(".hj-dash .hj-group-card[data-group-id=g1]")
    expect(group.locator(".hj-stats").first).to_contain_text("2 awaiting approval")
    expect(group).to_have_attribute("open", "")
    group.locator(".hj-approve-all").click()
    expect(group.locator(".hj-stats").first).to_contain_text("2/2 done")
    expect(group.locator(".hj-approve-all")).to_be_hidden()
    cell = run_cell(page, "print([r.summary for r in g.collect(30)])")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("['x ran', 'y ran']")


def parent_request(request) -> bool:
    return "parent agent" in request.messages[0]["content"] and "tree-check" in str(
        request.messages)


def test_the_tree_waiting_results_and_one_card_per_group(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.on(lambda r: "tree-tally" in r.first_user_text, Reply(text="42 rows"))
    lab_llm.on(parent_request,
               Reply(tool_calls=[ToolCall("delegate_task", {"goal": "tree-tally the rows",
                                                            "name": "rows"})]),
               Reply(text="started a child"), Reply(text="it is 42"))
    lab_llm.on("tree-say", Reply("said"))
    open_notebook(page, "tree.ipynb")
    run_cell(page, "import hermes_jupyter as hj\n"
                   "from hermes_jupyter.notebook.widgets import dashboard\n"
                   "s = hj.Session()\n"
                   "dashboard(s)")
    run_cell(page, "agent = hj.Agent(s, name='planner')\n"
                   "agent.ask('tree-check: count the rows')\n"
                   "agent.wait_for_results(1, timeout=30)")
    dash = page.locator(".hj-dash").first
    agent = dash.locator(".hj-agent[data-owner='agent:planner']")
    expect(agent.locator(".hj-waiting")).to_have_text("1 result waiting for the parent")
    expect(dash.locator(".hj-header .hj-waiting")).to_have_text(
        "1 result waiting for the parent")
    child = card(page, "t1")
    expect(child).to_have_attribute("data-depth", "1")
    shown = run_cell(page, "g = s.map('tree-say {item}', ['a', 'b', 'c'], name='letters')\n"
                           "_ = g.collect(30)\n"
                           "mine = s.delegate('tree-say mine'); _ = mine.collect(30)\n"
                           "g")
    # A group as a cell's value: one progress bar (the widget, not the text fallback).
    bar = shown.locator(".hj-group-progress")
    expect(bar).to_have_attribute("data-ended", "true")
    expect(bar).to_contain_text("letters (g1)")
    expect(bar).to_contain_text("3/3 done")
    assert bar.locator("progress").get_attribute("value") == "3"
    group = dash.locator(".hj-group-card[data-group-id=g1]")
    expect(group.locator(".hj-stats").first).to_contain_text("3/3 done")
    expect(group.locator(".hj-title").first).to_contain_text("letters")
    expect(group.locator(".hj-card[data-task-id]")).to_have_count(3)
    # Top level, in order: the agent (its child under it), my newest task, the group.
    rows = dash.locator(".hj-cards > *")
    expect(rows).to_have_count(4)
    assert [rows.nth(i).get_attribute("data-owner") or rows.nth(i).get_attribute(
        "data-task-id") or rows.nth(i).get_attribute("data-group-id") for i in range(4)] == [
        "agent:planner", "t1", "t5", "g1"]
    group.locator("summary").first.click()
    expect(group.locator(".hj-card[data-task-id=t2]")).to_be_visible()
    screenshot(page, "dashboard-tree")
    dash.screenshot(path=str(ARTIFACTS / "dashboard-tree-widget.png"))

    run_cell(page, "agent.ask()")  # takes the result in
    expect(agent.locator(".hj-waiting")).to_be_hidden()
    expect(dash.locator(".hj-header .hj-waiting")).to_be_hidden()
