"""The panel's task tree, approvals, fan-out group cards and cost, in a real JupyterLab and a
real Chromium over real kernels.

Tool calls waiting for approval are approved and denied from the panel and the notification
(and a refused decision comes back as one line); a parent agent's children show under it with
its waiting results, a task's own children under that task; a fan-out group is one card with
its progress, failures, tokens and cost, one notification, and one "Approve all".
Screenshots: test-artifacts/labext-*.png.
"""

from __future__ import annotations

import re

import pytest

from hermes_jupyter.testing import Fail, Reply, ToolCall

pytest.register_assert_rewrite("tests.jupyter_browser")
pytest_plugins = ["tests.jupyter_browser"]  # the fixtures: page, lab_llm, jupyter_lab, chromium

from .jupyter_browser import (  # noqa: E402
    NO_SUBSHELL_KERNEL,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_text,
)
from .test_labextension_browser import (  # noqa: E402
    LOAD,
    PANEL,
    SLOW,
    STATUS,
    TOAST,
    row,
    show_panel,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def shell_call(command: str, call_id: str = "c1") -> Reply:
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command}, id=call_id)])


def task_row(page, task_id: str):
    return page.locator(f"{PANEL} .jp-HermesTask[data-task-id={task_id}]")


def test_approve_and_deny_waiting_tool_calls_from_the_panel_and_the_notification(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.on("panel-approve", shell_call("echo approved-$((6*7))"), Reply(text="Ran it."))
    lab_llm.on("panel-deny", shell_call("touch denied.txt"), Reply(text="Did without it."))
    lab_llm.on("toast-approve", shell_call("echo from-the-toast"), Reply(text="Toast ran."))
    open_notebook(page, "approvals.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, "a = %delegate -n lister --toolsets shell panel-approve: list files")
    run_cell(page, "d = %delegate -n maker --toolsets shell panel-deny: make a file")
    approve = wait_for_text(page, row("awaiting_approval"), "lister")
    deny = wait_for_text(page, row("awaiting_approval"), "maker")
    wait_for_text(page, STATUS, "0 running · 0 queued · 2 awaiting approval")
    call = approve.locator(".jp-HermesTask-approval[data-call-id=c1]")
    expect(call.locator(".jp-HermesTask-approvalTool")).to_have_text("run_shell")
    expect(call.locator(".jp-HermesTask-approvalCall")).to_have_text("call c1")
    expect(call.locator(".jp-HermesTask-approvalArgs")).to_have_text(
        "command: echo approved-$((6*7))")
    expect(call.locator(".jp-HermesTask-approvalReason")).to_contain_text("shell command")
    wait_for_text(page, TOAST, "lister (t1) asks to run run_shell (call c1): command: echo")
    wait_for_text(page, TOAST, "maker (t2) asks to run run_shell (call c1): command: touch")
    screenshot(page, "labext-awaiting-approval")

    # The newest waiting task is on top (where no notification covers it): deny it first.
    deny.locator(".jp-HermesTask-denyReason").fill("no files on this machine")
    deny.locator(".jp-HermesTask-deny").click()
    wait_for_text(page, row("succeeded"), "maker")
    # decided in the panel: its notification goes, the other one stays
    expect(page.locator(TOAST).filter(has_text="maker (t2) asks")).to_have_count(0)
    expect(page.locator(TOAST).filter(has_text="lister (t1) asks")).to_have_count(1)
    call.locator(".jp-HermesTask-approve").click()
    wait_for_text(page, row("succeeded"), "lister")
    expect(page.locator(TOAST).filter(has_text="lister (t1) asks")).to_have_count(0)
    wait_for_text(page, STATUS, "0 running · 0 queued")
    expect(page.locator(STATUS)).not_to_contain_text("awaiting")

    # the notification's own Approve
    run_cell(page, "n = %delegate -n toaster --toolsets shell toast-approve: say hi")
    toast = wait_for_text(page, TOAST, "toaster (t3) asks to run run_shell")
    toast.get_by_role("button", name="Approve").click()
    wait_for_text(page, row("succeeded"), "toaster")
    wait_for_text(page, TOAST, "Approved run_shell (c1) for t3.")

    cell = run_cell(page, (
        "import os\n"
        "def said(t):\n"
        "    r = t.collect(30)\n"
        "    tool = [m['content'] for m in r.transcript if m.get('role') == 'tool']\n"
        "    return r.summary, tool[0]\n"
        "(sa, ta), (sd, td), (sn, tn) = said(a), said(d), said(n)\n"
        "print(sa, 'approved-42' in ta, '|', sd, 'no files on this machine' in td,"
        " os.path.exists('denied.txt'), '|', sn, 'from-the-toast' in tn)"
    ))
    expect(cell.locator(".jp-OutputArea-output")).to_have_text(
        "Ran it. True | Did without it. True False | Toast ran. True")


def test_a_parent_agents_children_show_under_it_with_its_waiting_results(page, lab_llm):
    from playwright.sync_api import expect

    def planner(request) -> bool:
        return "delegate_task" in request.tool_names and "tree-plan" in request.first_user_text

    lab_llm.on(planner,
               Reply(text="Starting.", tool_calls=[
                   ToolCall("delegate_task", {"goal": "tree-kid-a: count rows", "name": "rows"}),
                   ToolCall("delegate_task", {"goal": "tree-kid-b: sum cols", "name": "cols"})]),
               Reply(text="Two children are on it."),
               Reply(text="Rows and columns are in."))
    lab_llm.on("tree-kid-a", Reply(text="12 rows"))
    lab_llm.on("tree-kid-b", Reply(text="3 columns"))
    open_notebook(page, "tree.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, "mine = %delegate -n mine tree-own: the user's own task")
    run_cell(page, "%%hermes -a planner\ntree-plan: count rows; sum cols")
    agent = wait_for_text(page, f"{PANEL} .jp-HermesAgent", "planner")
    expect(agent).to_have_attribute("data-owner", "agent:planner")
    expect(agent.locator(".jp-HermesAgent-waiting")).to_have_text(
        "2 results waiting for the parent")
    # the agent's two children under it, one level in; the user's task at the top level
    children = page.locator(f"{PANEL} .jp-HermesTask[data-parent='agent:agent:planner']")
    expect(children).to_have_count(2)
    expect(children.locator(".jp-HermesTask-name")).to_have_text(["cols", "rows"])
    expect(children.first).to_have_attribute("aria-level", "2")
    expect(task_row(page, "t1")).to_have_attribute("aria-level", "1")
    order = page.locator(f"{PANEL} .jp-HermesPanel-list > li").evaluate_all(
        "rows => rows.map(r => r.dataset.owner || r.dataset.taskId)")
    assert order == ["agent:planner", "t3", "t2", "t1"]
    screenshot(page, "labext-agent-tree")

    cell = run_cell(page, "%hermes -a planner")  # takes the results in
    expect(cell.locator(".jp-OutputArea-output")).to_contain_text("Rows and columns are in.")
    expect(agent.locator(".jp-HermesAgent-waiting")).to_be_hidden()
    expect(agent).to_have_attribute("data-waiting", "0")


def test_a_fan_out_group_is_one_card_and_cost_shows_live(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.on("group-item: score bad", Fail(400, message="bad item"))
    lab_llm.on("group-item: score slow", SLOW)
    lab_llm.on("group-item", Reply(text="scored"), Reply(text="scored"))
    lab_llm.on("group-unpriced", Reply(text="free"))
    open_notebook(page, "group.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, "%delegate -n unpriced group-unpriced: a model without a price")
    wait_for_text(page, row("succeeded"), "unpriced")
    # gpt-4o-mini has a price in genai-prices' table (the fake server answers any model)
    run_cell(page, (
        "from hermes_jupyter.notebook.kernel import get_session\n"
        "g = get_session().map('group-item: score {item}', ['a', 'b', 'bad', 'slow'],"
        " name='scores', model='gpt-4o-mini')"
    ))
    card = wait_for_text(page, f"{PANEL} .jp-HermesGroup", "scores")
    expect(card).to_have_attribute("data-group-id", "g1")
    line = card.locator(".jp-HermesGroup-line")
    # the kernel counts a task whose calls have no known cost (the failed one, the one still
    # streaming) as "without a price"
    expect(line).to_have_text(re.compile(
        r"^3/4 done · 1 failed · \d+ tokens · \$0\.0000\d\d \(\d tasks? without a price\)$"))
    # one card, not four rows: the group's tasks show only when it is opened
    expect(page.locator(f"{PANEL} .jp-HermesTask[data-parent^='group:g1']")).to_have_count(0)
    order = page.locator(f"{PANEL} .jp-HermesPanel-list > li").evaluate_all(
        "rows => rows.map(r => r.dataset.groupId || r.dataset.taskId)")
    assert order == ["g1", "t1"]  # where its running task would be: before the ended one
    expect(page.locator(f"{PANEL} .jp-HermesPanel-totals")).to_have_text(re.compile(
        r"^\d+ tokens · \d calls · \$0\.0000\d\d \(\d tasks without a price\)$"))
    expect(task_row(page, "t1").locator(".jp-HermesTask-meta")).to_contain_text("no price")

    card.locator(".jp-HermesGroup-toggle").click()
    expect(card).to_have_attribute("aria-expanded", "true")
    members = page.locator(f"{PANEL} .jp-HermesTask[data-parent='group:g1']")
    expect(members).to_have_count(4)
    expect(members.first).to_have_attribute("data-state", "running")
    expect(task_row(page, "t2").locator(".jp-HermesTask-meta")).to_contain_text(
        re.compile(r"\$0\.0000\d\d"))
    expect(task_row(page, "t4")).to_have_attribute("data-state", "failed")
    screenshot(page, "labext-group-card")

    run_cell(page, "g.cancel()")
    expect(line).to_have_text(re.compile(r"^4/4 done · 1 failed · "))
    # one notification for the group, none per item
    wait_for_text(page, TOAST, "Hermes group scores (g1): 4/4 done, 1 failed.")
    expect(page.locator(TOAST).filter(has_text="scores[")).to_have_count(0)
    card.locator(".jp-HermesGroup-toggle").click()
    expect(members).to_have_count(0)


def test_a_task_that_delegates_shows_its_children_under_it(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.on("tree-grandchild", Reply(text="leaf done"))
    lab_llm.on("tree-middle", Reply(tool_calls=[ToolCall(
        "delegate_task", {"goal": "tree-grandchild: look closer", "name": "leaf"})]),
        Reply(text="middle done"))
    open_notebook(page, "deep.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, (
        "import hermes_jupyter as hj\n"
        "from hermes_jupyter.notebook.kernel import get_session\n"
        "from hermes_jupyter.parent_tools import session_tools\n"
        "deep = hj.Agent(get_session(), name='deep', max_depth=2)\n"
        "tools = {t.__name__: t for t in session_tools(get_session(), owner=deep, max_depth=2)}\n"
        "print(tools['delegate_task']('tree-middle: split the work', name='middle'))"
    ))
    leaf = wait_for_text(page, row("succeeded"), "leaf")
    wait_for_text(page, row("succeeded"), "middle")
    expect(leaf).to_have_attribute("data-parent", "task:t1")
    expect(leaf).to_have_attribute("aria-level", "3")
    expect(task_row(page, "t1")).to_have_attribute("data-parent", "agent:agent:deep")
    order = page.locator(f"{PANEL} .jp-HermesPanel-list > li").evaluate_all(
        "rows => rows.map(r => r.dataset.owner || r.dataset.taskId)")
    assert order == ["agent:deep", "t1", "t2"]
    screenshot(page, "labext-task-tree")


def test_a_decision_the_kernel_refuses_comes_back_as_one_line(page, lab_llm):
    """Approve clicked on a call a cell denies first: the kernel's one-line refusal shows.

    Without subshells the click's request waits behind the busy cell; interrupting the cell
    denies the call in its `finally`, then the request runs and is refused."""
    from playwright.sync_api import expect

    lab_llm.on("late-decision", shell_call("echo late"), Reply(text="Went on without it."))
    open_notebook(page, "refused.ipynb", kernel=NO_SUBSHELL_KERNEL)
    show_panel(page)
    run_cell(page, f"{LOAD}\nimport threading\ngate = threading.Event()")
    run_cell(page, "t = %delegate -n late --toolsets shell late-decision: go")
    task = wait_for_text(page, row("awaiting_approval"), "late")
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    cells.last.locator(".cm-content").click()
    page.keyboard.insert_text(
        "try: gate.wait()\nfinally: t.deny(None, 'decided in the cell')")
    page.keyboard.press("Shift+Enter")
    expect(cells.nth(2).locator(".jp-InputArea-prompt")).to_have_text("[*]:")
    task.locator(".jp-HermesTask-approve").click()
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.interrupt()"
    )
    toast = wait_for_text(page, TOAST, "Task t1 has no tool call awaiting approval.")
    expect(toast.locator(".jp-toast-message")).to_have_text(
        "Task t1 has no tool call awaiting approval.")
    wait_for_text(page, row("succeeded"), "late")
    cell = run_cell(page, "print(t.collect(30).summary)")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("Went on without it.")


def test_a_group_card_approves_every_waiting_call_of_its_tasks_at_once(page, lab_llm):
    from playwright.sync_api import expect

    for item in ("north", "south"):
        lab_llm.on(f"group-ask: count {item}", shell_call(f"echo counted-{item}"),
                   Reply(text=f"{item} counted"))
    open_notebook(page, "group-approve.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, (
        "from hermes_jupyter.notebook.kernel import get_session\n"
        "g = get_session().map('group-ask: count {item}', ['north', 'south'], name='regions',"
        " toolsets=['shell'])"
    ))
    card = wait_for_text(page, f"{PANEL} .jp-HermesGroup", "regions")
    expect(card.locator(".jp-HermesGroup-line")).to_contain_text("2 awaiting approval")
    approve_all = card.locator(".jp-HermesGroup-approveAll")
    expect(approve_all).to_have_text("Approve all 2 waiting")
    # one notification for the group's waiting calls, none per item
    wait_for_text(page, TOAST,
                  "Hermes group regions (g1): 2 tool calls await approval (run_shell).")
    expect(page.locator(TOAST).filter(has_text="asks to run")).to_have_count(0)
    screenshot(page, "labext-group-awaiting")
    approve_all.click()
    expect(card.locator(".jp-HermesGroup-line")).to_contain_text("2/2 done")
    expect(card.locator(".jp-HermesGroup-feedback")).to_have_text(
        "Approved 2 of 2 waiting calls.")
    expect(approve_all).to_be_hidden()
    expect(page.locator(TOAST).filter(has_text="await approval")).to_have_count(0)
    cell = run_cell(page, "print([r.summary for r in g.collect(30)])")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text(
        "['north counted', 'south counted']")
