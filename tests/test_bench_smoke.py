"""The benchmarks keep working: each figure at tiny sizes yields well-formed rows.

Benchmarks are not tests: no timing is asserted here, only the shape of what they report.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench import FIGURES
from bench.__main__ import main
from bench._common import Row, pct
from bench.report import FigureRun, machine, render

KERNEL_FIGURES = {"kernel", "dashboard"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.kernel) if n in KERNEL_FIGURES
     else pytest.param(n, marks=pytest.mark.dask) if n == "dask" else n for n in FIGURES],
)
def test_figure_runs_at_tiny_sizes(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert set(module.SIZES) == {"full", "quick", "tiny"}
    rows = module.run(**module.SIZES["tiny"])
    assert rows, f"{name} produced no rows"
    for row in rows:
        assert isinstance(row, Row) and row.well_formed(), row
        assert row.figure == name
        assert (row.met is None) == (row.goal in ("—", "")), row


def test_runner_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    assert main(["--sizes", "tiny", "--only", "credentials", "--out", str(out)]) == 0
    text = out.read_text()
    for heading in ("## Machine", "## Summary", "## credentials", "| metric | value |"):
        assert heading in text
    assert "cores (nproc)" in text and "openai" in text


def test_report_marks_missed_goals_and_errors() -> None:
    rows = [Row("x", "p99", 12.0, "ms", 3.0, "idle", goal="≤ 5 ms", met=False),
            Row("x", "p50", 1.0, "ms")]
    text = render([FigureRun("x", "A figure", rows, 1.0),
                   FigureRun("y", "Broken", error="RuntimeError: boom")],
                  machine(), "tiny", 2.0, "## Fixes\n\nnone")
    assert "0 of 1 goals met" in text and "**no**" in text and "4.00x" in text
    assert "RuntimeError: boom" in text and text.rstrip().endswith("none")


def test_percentiles() -> None:
    assert pct([3.0, 1.0, 2.0], 50) == 2.0
    assert pct(list(range(101)), 99) == 99.0
    with pytest.raises(ValueError):
        pct([], 50)
