"""A rejected magic fails its cell in a real kernel, so nbclient (and Run All, papermill) stop
there with one line and no traceback."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HERMES_MODEL", "HERMES_SUBAGENT_MODEL",
       "HERMES_API_KEYS")


def run_until_failure(cells: tuple[str, ...], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[Any, CellExecutionError]:
    """Run `cells` as a notebook in a real kernel on the demo model (no key in the
    environment), expecting a cell to fail; the executed notebook and the error."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    client = NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as raised:
        client.execute()
    return nb, raised.value


def test_a_rejected_magic_stops_run_all_with_one_line(tmp_path, monkeypatch):
    nb, error = run_until_failure((
        "%load_ext hermes_jupyter\n%config HermesJupyter.demo_pace = 0",
        "t = %delegate -n first say hello\n_ = t.collect(30)",
        "r = %collect_task no-such-task",
        "after = 'this cell must not run'",
    ), tmp_path, monkeypatch)
    assert error.ename == "UsageError"
    failed = nb.cells[2]
    streams = [o for o in failed.outputs if o.output_type == "stream"]
    assert [o.name for o in streams] == ["stderr"] and len(failed.outputs) == 1
    assert streams[0].text == ("UsageError: %collect_task: No task 'no-such-task'. Known tasks: "
                               "t1 'first'. Use %list_tasks to see them.\n")
    assert "execution_count" not in nb.cells[3] or nb.cells[3].execution_count is None
    assert nb.cells[3].outputs == []


def test_a_collect_that_times_out_stops_run_all_and_binds_nothing(tmp_path, monkeypatch):
    nb, error = run_until_failure((
        "%load_ext hermes_jupyter\n%config HermesJupyter.demo_pace = 50",
        "t = %delegate -n survey a slow one",
        "r = %collect_task survey --timeout 0.2",
        "after = 'this cell must not run'",
    ), tmp_path, monkeypatch)
    assert error.ename == "UsageError"
    failed = nb.cells[2]
    assert [o.get("name") for o in failed.outputs] == ["stderr"]
    assert re.fullmatch(r"UsageError: %collect_task: t1 'survey' is still (queued|running) after "
                        r"0\.2s; it goes on: collect it later with %collect_task t1\.\n",
                        failed.outputs[0].text), failed.outputs[0].text
    assert nb.cells[3].outputs == [] and not nb.cells[3].get("execution_count")
