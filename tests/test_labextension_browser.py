"""The JupyterLab extension in a real JupyterLab and a real Chromium.

`%delegate` in a notebook → the task in the "Hermes tasks" panel and the status bar → Steer,
Cancel → the notification → Collect into a variable from it. Then: a page reload re-syncs from
the snapshot, a kernel restart empties the list, and switching notebooks switches kernels.
Approvals, the task tree, group cards and cost: tests/test_labextension_tree_browser.py.
Screenshots: test-artifacts/labext-*.png.
"""

from __future__ import annotations

import pytest

from hermes_jupyter.testing import Reply

pytest.register_assert_rewrite("tests.jupyter_browser")
pytest_plugins = ["tests.jupyter_browser"]  # the fixtures: page, lab_llm, jupyter_lab, chromium

from .jupyter_browser import (  # noqa: E402
    NO_SUBSHELL_KERNEL,
    open_notebook,
    run_cell,
    screenshot,
    wait_for_text,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PANEL = ".jp-HermesPanel"
NOTICE = ".jp-HermesPanel-notice"
STATUS = "#jp-main-statusbar .jp-HermesStatus"
TOAST = ".Toastify__toast"
LOAD = "%load_ext hermes_jupyter"
# Long enough to steer and cancel by hand; the test cancels it, nothing waits for its end.
SLOW = Reply(text="Reading the files one by one. " * 120, chunk_size=3, delay=0.02)


def row(state: str) -> str:
    return f"{PANEL} .jp-HermesTask[data-state={state}]"


def show_panel(page) -> None:
    assert page.evaluate("() => window.jupyterapp.hasPlugin('hermes-jupyter:plugin')"), (
        "the hermes-jupyter labextension is not installed: "
        "cd labextension && npm ci && npm run build (or pip install .)"
    )
    page.evaluate("() => window.jupyterapp.commands.execute('hermes-jupyter:open-panel')")
    page.locator(PANEL).wait_for(state="visible")


def test_delegate_shows_live_task_then_cancel_notifies_and_collects(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.default = SLOW
    open_notebook(page, "agents.ipynb")
    show_panel(page)
    wait_for_text(page, NOTICE, "not loaded")
    expect(page.locator(STATUS)).to_be_hidden()

    run_cell(page, LOAD)
    wait_for_text(page, NOTICE, "No tasks yet")
    # the quickstart's form: `scan` holds the Task
    run_cell(page, "scan = %delegate -n scan Scan the repository for TODO comments")
    task = wait_for_text(page, row("running"), "scan")
    wait_for_text(page, STATUS, "1 running · 0 queued")
    wait_for_text(page, f"{row('running')} .jp-HermesTask-output", "Reading the files")

    # The status bar item opens the panel.
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-right-area')")
    expect(page.locator(PANEL)).to_be_hidden()
    page.locator(STATUS).click()
    expect(page.locator(PANEL)).to_be_visible()

    steer = task.locator(".jp-HermesTask-steerInput")
    steer.fill("Only look at Python files")
    steer.press("Enter")
    wait_for_text(page, f"{PANEL} .jp-HermesTask-feedback", "Steering message queued")
    wait_for_text(page, f"{PANEL} .jp-HermesTask-steer", "Only look at Python files")
    # At the default sidebar width nothing is clipped: not the subtitle, not the steer box.
    clipped = page.evaluate("""() => {
        const edge = document.querySelector('.jp-HermesPanel').getBoundingClientRect().right;
        const parts = '.jp-HermesPanel-subtitle, .jp-HermesTask-steerForm > *';
        return [...document.querySelectorAll(parts)]
            .filter(e => e.getBoundingClientRect().right > edge + 0.5
                         || e.scrollWidth > e.clientWidth + 1)
            .map(e => e.className);
    }""")
    assert clipped == []
    screenshot(page, "labext-running")

    # a collect asked while the task runs: its reply line goes once the task ends
    task.locator(".jp-HermesTask-collect").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Collect").click()
    wait_for_text(page, f"{PANEL} .jp-HermesTask-feedback", "stored in `result_t1` when it ends")

    task.locator(".jp-HermesTask-cancel").click()
    wait_for_text(page, row("cancelled"), "scan")
    # "Cancelling t1." and "…when it ends" described a running task: gone with that state
    expect(page.locator(f"{PANEL} .jp-HermesTask-feedback")).to_be_hidden()
    toast = wait_for_text(page, TOAST, "scan (t1) was cancelled")
    wait_for_text(page, STATUS, "0 running · 0 queued")
    toast.evaluate("el => Promise.all(el.getAnimations().map(a => a.finished))")  # slid in
    screenshot(page, "labext-cancelled-notification")

    # The notification offers a free name, never the task's (`scan` holds the Task).
    toast.get_by_role("button", name="Collect into variable").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator("input")).to_have_value("result_t1")
    dialog.get_by_role("button", name="Collect").click()  # taken by the collect above
    wait_for_text(page, TOAST, "result stored in `result_t1_2`")

    # Typing a taken name asks first; Cancel leaves the variable alone, Replace replaces it.
    ended = page.locator(f"{PANEL} .jp-HermesTask[data-task-id=t1]")
    for choice, expected in (("Cancel", "Task"), ("Replace", "TaskResult")):
        ended.locator(".jp-HermesTask-collect").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator("input").fill("scan")
        dialog.get_by_role("button", name="Collect").click()
        wait_for_text(page, ".jp-Dialog", "`scan` already holds a value of type Task")
        if choice == "Cancel":
            screenshot(page, "labext-replace-variable")
        page.locator(".jp-Dialog").get_by_role("button", name=choice).click()
        cell = run_cell(page, "print(type(scan).__name__, type(result_t1).__name__)")
        expect(cell.locator(".jp-OutputArea-output")).to_have_text(f"{expected} TaskResult")


def test_reload_resyncs_and_restart_empties_the_list(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.default = Reply(text="Hello from the agent.")
    open_notebook(page, "restart.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, "%delegate -n hello Say hello")
    wait_for_text(page, row("succeeded"), "hello")
    wait_for_text(page, TOAST, "hello (t1) succeeded")

    page.reload()
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("() => window.jupyterapp.restored")
    open_notebook(page, "restart.ipynb")
    show_panel(page)
    wait_for_text(page, row("succeeded"), "hello")  # from the snapshot
    wait_for_text(page, f"{row('succeeded')} .jp-HermesTask-outcome", "Hello from the agent.")
    screenshot(page, "labext-after-reload")

    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()"
    )
    wait_for_text(page, NOTICE, "not loaded")
    expect(page.locator(f"{PANEL} .jp-HermesTask")).to_have_count(0)
    expect(page.locator(STATUS)).to_be_hidden()
    screenshot(page, "labext-after-restart")


def test_switching_notebooks_switches_kernels(page, lab_llm):
    from playwright.sync_api import expect

    lab_llm.default = SLOW
    open_notebook(page, "alpha.ipynb")
    show_panel(page)
    run_cell(page, LOAD)
    run_cell(page, "%delegate -n alpha Look at alpha")
    wait_for_text(page, row("running"), "alpha")

    open_notebook(page, "beta.ipynb")
    wait_for_text(page, NOTICE, "not loaded")  # a new kernel, without hermes yet
    run_cell(page, LOAD)
    run_cell(page, "%delegate -n beta Look at beta")
    wait_for_text(page, row("running"), "beta")
    expect(page.locator(f"{PANEL} .jp-HermesTask", has_text="alpha")).to_have_count(0)

    open_notebook(page, "alpha.ipynb")
    wait_for_text(page, row("running"), "alpha")
    expect(page.locator(f"{PANEL} .jp-HermesTask", has_text="beta")).to_have_count(0)
    screenshot(page, "labext-switched-back")
    run_cell(page, "%cancel_task --all")
    open_notebook(page, "beta.ipynb")
    run_cell(page, "%cancel_task --all")


def test_panel_connects_and_cancels_while_the_cell_that_loads_hermes_runs(page, lab_llm):
    """Over a kernel subshell: no "not loaded" while the cell that loads Hermes still runs."""
    from playwright.sync_api import expect

    lab_llm.default = SLOW
    open_notebook(page, "busy.ipynb")
    show_panel(page)
    wait_for_text(page, NOTICE, "not loaded")
    # The cell blocks until the task ends; only the panel can end it.
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    cells.last.locator(".cm-content").click()
    page.keyboard.insert_text(f"{LOAD}\nt = %delegate -n busy Work hard\nr = t.collect()")
    page.keyboard.press("Shift+Enter")
    task = wait_for_text(page, row("running"), "busy")
    expect(cells.first.locator(".jp-InputArea-prompt")).to_have_text("[*]:")
    wait_for_text(page, STATUS, "1 running · 0 queued")
    task.locator(".jp-HermesTask-cancel").click()
    wait_for_text(page, row("cancelled"), "busy")
    cell = run_cell(page, "print(r.state.value)")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("cancelled")


def test_a_kernel_without_subshells_says_it_waits_for_the_busy_cell(page, lab_llm):
    """Without subshells the panel cannot reach the kernel mid-cell: it says so plainly."""
    from playwright.sync_api import expect

    open_notebook(page, "old-kernel.ipynb", kernel=NO_SUBSHELL_KERNEL)
    show_panel(page)
    wait_for_text(page, NOTICE, "not loaded")
    run_cell(page, "import threading; gate = threading.Event()")
    # A cell that loads Hermes and then blocks (until the kernel is interrupted).
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    cells.last.locator(".cm-content").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    cells.last.locator(".cm-content").click()
    page.keyboard.insert_text(f"{LOAD}\nprint('loaded', flush=True)\ngate.wait()")
    page.keyboard.press("Shift+Enter")
    wait_for_text(page, ".jp-NotebookPanel:visible .jp-OutputArea-output", "loaded")
    wait_for_text(page, NOTICE, "Waiting for the kernel")
    expect(page.locator(NOTICE)).not_to_contain_text("not loaded")
    screenshot(page, "labext-waiting-for-kernel")
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.interrupt()"
    )
    wait_for_text(page, NOTICE, "No tasks yet")


def test_panel_lists_tasks_of_earlier_kernels_with_a_journal(page, lab_llm):
    """With a journal, the panel shows what earlier sessions ran, interrupted ones marked."""
    from playwright.sync_api import expect

    lab_llm.on("journal-old", Reply(text="Old work done."))
    lab_llm.on("journal-cut", SLOW)
    lab_llm.on("journal-now", Reply(text="Now done."))
    open_notebook(page, "journal.ipynb")
    show_panel(page)
    # Earlier "kernels": one session that finished its task, one whose journal stopped
    # recording while its task ran (as when a kernel dies).
    run_cell(page, (
        "import hermes_jupyter as hj\n"
        "with hj.Session(journal=True) as old:\n"
        "    old.delegate('journal-old: earlier work', name='earlier').collect(30)\n"
        "import threading\n"
        "cut, seen = hj.Session(journal=True), threading.Event()\n"
        "cut.subscribe(lambda event: seen.set())  # after the journal, which subscribed first\n"
        "cut.delegate('journal-cut: never finishes', name='cut')\n"
        "assert seen.wait(30)\n"
        "cut.journal.flush(); cut.journal.close()"
    ))
    run_cell(page, f"{LOAD}\n%config HermesJupyter.journal = True")
    run_cell(page, "%delegate -n now journal-now: current work")
    wait_for_text(page, row("succeeded"), "now")
    history = page.locator(f"{PANEL} .jp-HermesPanel-history")
    expect(history.locator("summary")).to_have_text("Earlier kernels: 2 tasks (1 interrupted)")
    history.locator("summary").click()
    interrupted = history.locator(".jp-HermesPanel-historyItem[data-state=interrupted]")
    expect(interrupted).to_have_text("t1 'cut' · interrupted — its kernel stopped before it ended")
    expect(history.locator(".jp-HermesPanel-historyItem[data-state=succeeded]")).to_contain_text(
        "t1 'earlier' · succeeded — Old work done.")
    screenshot(page, "labext-history")
    run_cell(page, "cut.close()")
