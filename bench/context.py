"""`%delegate -c VAR` of a large DataFrame and dict: time on the kernel's thread.

A real IPython shell with the extension loaded runs `%delegate -c df ...` on the offline demo
model; we time the magic call only (context text + delegate), after one warm-up task. The
baseline is what the context cost before it was bounded by the limit: `to_csv()` of the
whole frame and `pprint.pformat` of the whole dict, then cut to the limit.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import pprint
import statistics
import time
from collections.abc import Callable
from typing import Any

from ._common import Row

SIZES = {
    "full": {"rows": 1_000_000, "keys": 200_000, "repeats": 7, "baseline": True},
    "quick": {"rows": 1_000_000, "keys": 200_000, "repeats": 3, "baseline": False},
    "tiny": {"rows": 2_000, "keys": 1_000, "repeats": 1, "baseline": False},
}
GOAL_MS = 50.0
LIMIT = 20_000  # HermesJupyter.context_limit's default


def run(rows: int, keys: int, repeats: int, baseline: bool) -> list[Row]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"c{i}": rng.random(rows) if i % 2 else rng.integers(0, 1000, rows)
                          for i in range(8)})
    mapping = {f"key{i}": i for i in range(keys)}
    shell = _shell({"df": frame, "d": mapping})
    try:
        df_ms = _median_ms(lambda: shell.run_line_magic("delegate", "-c df describe df"),
                           repeats)
        dict_ms = _median_ms(lambda: shell.run_line_magic("delegate", "-c d describe d"),
                             repeats)
    finally:
        _close(shell)
    df_base = _median_ms(lambda: frame.to_csv()[:LIMIT], 1) if baseline else None
    dict_base = _median_ms(lambda: pprint.pformat(mapping, width=100)[:LIMIT], 1) \
        if baseline else None
    return [
        Row("context", f"%delegate -c df ({rows:,} x 8 DataFrame)", df_ms, "ms", df_base,
            "to_csv of the whole frame (before)" if baseline else "",
            goal=f"≤ {GOAL_MS:g} ms", met=df_ms <= GOAL_MS,
            note=f"median of {repeats}; shape, dtypes, head, statistics of 1,000 rows"),
        Row("context", f"%delegate -c d ({keys:,}-key dict)", dict_ms, "ms", dict_base,
            "pprint.pformat of the whole dict (before)" if baseline else "",
            goal=f"≤ {GOAL_MS:g} ms", met=dict_ms <= GOAL_MS,
            note=f"median of {repeats}; items written until the {LIMIT:,}-character limit"),
    ]


def _shell(values: dict[str, Any]) -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from hermes_jupyter.notebook import kernel

    kernel._reset()
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    atexit.unregister(shell.atexit_operations)
    shell.run_line_magic("load_ext", "hermes_jupyter")
    shell.run_line_magic("config", "HermesJupyter.model = 'demo'")
    shell.run_line_magic("config", "HermesJupyter.demo_pace = 0")
    shell.user_ns.update(values)
    shell.run_line_magic("delegate", "warm up").collect(30)
    return shell


def _close(shell: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from hermes_jupyter.notebook import kernel

    kernel._reset()
    InteractiveShell.clear_instance()


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with contextlib.redirect_stdout(io.StringIO()):  # the magic's "was cut" notes
            t0 = time.perf_counter()
            action()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
