"""Benchmarks of the engine against the loopback test model: `python -m bench [--quick]`.

One module per figure; each has `SIZES` ("full", "quick", "tiny") and `run(**sizes)`, which
returns `Row`s. Benchmarks are not tests: nothing here asserts a timing. The run writes
`bench/RESULTS.md` with the machine, every value, its baseline, ratio and goal.
"""

from __future__ import annotations

FIGURES = (
    "delegate",
    "parallel",
    "cancel",
    "kernel",
    "cpu",
    "dashboard",
    "memory",
    "credentials",
    "context",
    "fanout",
    "journal",
    "mcp",
    "dask",
)
