"""What every figure shares: result rows, percentiles, the fake model in its own process.

A `Row` is one line of a results table: a value, the baseline measured in the same run, and
the goal as both text (for people) and a predicate (for the "met?" column).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Row",
    "ServerProcess",
    "cpu_seconds",
    "pct",
    "session",
    "wait_until",
]

KEY = "sk-bench-0123456789abcdef"


@dataclass
class Row:
    """One measured figure; `ratio` is value / baseline when both are there."""

    figure: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    goal: str = "—"
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline:
            return None
        return self.value / self.baseline

    def well_formed(self) -> bool:
        """Finite numbers and the text fields a report needs (what the smoke test checks)."""
        numbers = [self.value] + ([self.baseline] if self.baseline is not None else [])
        return (
            bool(self.figure and self.metric and self.unit)
            and all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers)
            and (self.met is None or isinstance(self.met, bool))
        )


def pct(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    data = sorted(samples)
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def tail_rows(figure: str, label: str, data: Sequence[float], limit_ms: float, *,
              goal: str, note: str, baseline: float | None = None,
              baseline_label: str = "") -> list[Row]:
    """p50 and p99 rows of one latency sample (ms); the goal applies to p99."""
    rows = []
    for q in (50, 99):
        value = pct(data, q)
        rows.append(Row(figure, f"{label}, p{q}", value, "ms", baseline, baseline_label,
                        goal=goal if q == 99 else "—",
                        met=value <= limit_ms if q == 99 else None, note=note))
    return rows


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: waited {timeout}s for {what}")
        time.sleep(interval)


def cpu_seconds() -> float:
    """CPU time of this process, all threads, user + system (nanosecond clock on Linux)."""
    return time.process_time()


@contextlib.contextmanager
def session(base_url: str, **kwargs: Any) -> Iterator[Any]:
    """A `Session` pointed at `base_url`, closed on exit."""
    import hermes_jupyter as hj

    kwargs.setdefault("api_keys", [KEY])
    s = hj.Session(model="bench-model", base_url=base_url, **kwargs)
    try:
        yield s
    finally:
        s.close()


class ServerProcess:
    """`python -m hermes_jupyter.testing` in a child process; its threads never share our GIL.

    The child dies when we close its stdin (or exit), so a crashed bench leaves nothing behind.
    """

    def __init__(self, *, latency: float = 0.0, chunks: int = 8, chunk_delay: float = 0.0,
                 tool_rounds: int = 0, rate_limited: Sequence[str] = ()) -> None:
        self.args = [
            "--latency", str(latency), "--chunks", str(chunks),
            "--chunk-delay", str(chunk_delay), "--tool-rounds", str(tool_rounds),
        ]
        # `bench._server` adds key rules to the test server's command line.
        self.module = "bench._server" if rate_limited else "hermes_jupyter.testing"
        for key in rate_limited:
            self.args += ["--rate-limited", key]
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=_pythonpath())
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        assert self._proc.stdout is not None
        line = _readline(self._proc.stdout, timeout=30)
        if not line.startswith("http"):
            self.__exit__()
            raise RuntimeError(f"bench: the fake model server did not start ({line!r})")
        self.base_url = line.strip()
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{rest}" if rest else root


def _readline(stream: Any, timeout: float) -> str:
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0].decode() if out else ""
