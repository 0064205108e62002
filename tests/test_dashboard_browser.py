"""The dashboard widget in a real JupyterLab and a real Chromium.

A notebook builds a Session against the loopback FakeLLM (`lab_llm`), shows `dashboard(s)`,
and the test checks in the DOM: the output tail grows live, a steering message typed on the
card is shown delivered, Cancel turns the badge to cancelled within 2 s while another cell is
busy waiting on that task, Collect creates the variable, the filter hides cards, and showing
the dashboard twice shows the same live model. Screenshots: test-artifacts/dashboard-*.png.
"""

from __future__ import annotations

import re

import pytest

from hermes_jupyter.testing import Fail, Reply

pytest.register_assert_rewrite("tests.jupyter_browser")
pytest_plugins = ["tests.jupyter_browser"]  # the fixtures: page, lab_llm, jupyter_lab, chromium

from .jupyter_browser import (  # noqa: E402
    ARTIFACTS,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_text,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SETUP = (
    "import hermes_jupyter as hj\n"
    "from hermes_jupyter.notebook.widgets import dashboard\n"
    "s = hj.Session()  # model, endpoint and key come from the server's environment\n"
    "dashboard(s)"
)
QUICK = Reply(text="Checked 14 files.\nNo TODO left in the parser.\nTwo in the CLI.")
# First model call: numbered lines, slow enough to steer mid-stream (~6 s).
SCAN = Reply(text="".join(f"step {i}: reading log file {i}\n" for i in range(1, 21)),
             chunk_size=4, delay=0.04)
# After the steer: a long stream the test cancels.
FOCUS = Reply(text="".join(f"error {i}: timeout in worker {i % 7}\n" for i in range(1, 400)),
              chunk_size=4, delay=0.04)


def card(page, task_id: str):
    return page.locator(f".hj-dash .hj-card[data-task-id={task_id}]").first


def start_cell(page, code: str):
    """Like run_cell, without waiting for the cell to finish; returns the cell."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    editor = cells.last.locator(".cm-content")
    editor.click()
    if editor.inner_text().strip():
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        cells.last.locator(".cm-content").click()
    cell = cells.nth(cells.count() - 1)
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    return cell


def test_dashboard_live_steer_cancel_collect(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.on("dash-quick", QUICK)
    lab_llm.on("dash-big", Fail(400, "This model's maximum context length is 128000 tokens."))
    lab_llm.on("dash-logs", SCAN, FOCUS)
    open_notebook(page, "dashboard.ipynb")
    run_cell(page, SETUP)
    dash = page.locator(".hj-dash").first
    wait_for_text(page, ".hj-dash .hj-empty", "No tasks yet")

    # New tasks appear as they are delegated, newest first; finished cards collapse.
    run_cell(page, "s.delegate('dash-quick: count the TODOs', name='todos').collect(30)")
    quick = card(page, "t1")
    expect(quick.locator(".hj-badge")).to_have_text("succeeded")
    expect(quick).not_to_have_attribute("open", "")
    expect(quick.locator(".hj-activity")).to_have_text("Checked 14 files.")
    # Opened, a finished card says its summary once (not in its head, tail and body).
    quick.locator("summary").click()
    expect(quick.locator(".hj-summary")).to_contain_text("Two in the CLI.")
    assert quick.inner_text().count("Checked 14 files.") == 1
    quick.locator("summary").click()
    run_cell(page, "s.delegate('dash-big: read the whole 2 GB log', name='big').collect(30)")
    failed = card(page, "t2")
    expect(failed.locator(".hj-badge")).to_have_text("failed")
    expect(failed.locator(".hj-activity")).to_contain_text("error: ")
    run_cell(page, "t = s.delegate('dash-logs: scan the logs', name='logs')")
    logs = card(page, "t3")
    expect(logs.locator(".hj-badge")).to_have_text("running")
    expect(dash.locator(".hj-card").first).to_have_attribute("data-task-id", "t3")

    # The tail grows live.
    tail = logs.locator(".hj-tail")
    expect(tail).to_contain_text("step 2: reading")
    expect(tail).to_contain_text("step 6: reading")
    expect(dash.locator(".hj-count[data-state=running]")).to_have_text("1 running")

    # Steer: queued at once, delivered before the next model call.
    logs.locator(".hj-steer-input").fill("Focus on the errors")
    logs.locator(".hj-steer-send").click()
    expect(logs.locator(".hj-reply")).to_have_text(re.compile(r"^Sent to t3"))
    expect(logs.locator(".hj-reply")).to_have_attribute("data-ok", "true")
    expect(logs.locator(".hj-steer-input")).to_have_value("")
    delivered = logs.locator(".hj-steer-item[data-delivered=true]")
    expect(delivered).to_contain_text("Focus on the errors", timeout=30_000)
    expect(tail).to_contain_text("error 3: timeout")
    expect(logs.locator(".hj-stats")).to_contain_text("2 calls")
    screenshot(page, "dashboard-running")
    dash.screenshot(path=str(ARTIFACTS / "dashboard-widget.png"))

    # Cancel while a cell is busy waiting on the task: the click is handled on a subshell.
    busy = start_cell(page, "r = t.collect(timeout=120)\nprint('collected', r.state.value)")
    expect(busy.locator(".jp-InputArea-prompt")).to_have_text("[*]:")
    logs.locator(".hj-cancel").click()
    expect(logs.locator(".hj-badge")).to_have_text("cancelled", timeout=2_000)
    # "Cancelling t3…" described a running task: it goes when the state changes
    expect(logs.locator(".hj-reply")).to_have_text("")
    expect(busy.locator(".jp-OutputArea-output")).to_contain_text("collected cancelled")
    expect(dash.locator(".hj-count[data-state=cancelled]")).to_have_text("1 cancelled")
    expect(logs.locator(".hj-cancel")).to_be_disabled()

    # Collect into the default variable; the notebook can use it at once.
    expect(logs.locator(".hj-collect-var")).to_have_value("result_t3")
    logs.locator(".hj-collect").click()
    expect(logs.locator(".hj-reply")).to_have_text("t3 cancelled: result stored in `result_t3`.")
    out = run_cell(page, "print(type(result_t3).__name__, result_t3.state.value, r is result_t3)")
    expect(out.locator(".jp-OutputArea-output")).to_contain_text("TaskResult cancelled True")

    # A taken name is not replaced without a confirmation: `t` holds the Task.
    logs.locator(".hj-collect-var").fill("t")
    logs.locator(".hj-collect").click()
    expect(logs.locator(".hj-reply")).to_contain_text("`t` already holds a value of type Task")
    expect(logs.locator(".hj-collect-var")).to_have_value("result_t3_2")  # a free name
    screenshot(page, "dashboard-replace")
    out = run_cell(page, "print(type(t).__name__)")
    expect(out.locator(".jp-OutputArea-output")).to_have_text("Task")
    logs.locator(".hj-replace").click()
    expect(logs.locator(".hj-reply")).to_have_text("t3 cancelled: result stored in `t`.")
    out = run_cell(page, "print(type(t).__name__)")
    expect(out.locator(".jp-OutputArea-output")).to_have_text("TaskResult")

    # A bad variable name is a one-line error on the card.
    logs.locator(".hj-collect-var").fill("not a name")
    logs.locator(".hj-collect").click()
    expect(logs.locator(".hj-reply")).to_have_attribute("data-ok", "false")
    expect(logs.locator(".hj-reply")).to_contain_text("Bad variable name")

    # The filter by state.
    dash.locator(".hj-filter").select_option("succeeded")
    expect(logs).to_be_hidden()
    expect(failed).to_be_hidden()
    expect(quick).to_be_visible()
    dash.locator(".hj-filter").select_option("all")
    expect(logs).to_be_visible()

    # Shown twice, it is the same live model: the second view has the same cards.
    second = run_cell(page, "dashboard(s)").locator(".hj-dash")
    expect(second.locator(".hj-card")).to_have_count(3)
    expect(second.locator(".hj-card[data-task-id=t3] .hj-badge")).to_have_text("cancelled")
    expect(page.locator(".hj-dash")).to_have_count(2)
    screenshot(page, "dashboard-done")
