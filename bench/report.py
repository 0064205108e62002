"""`RESULTS.md`: the machine, then one table per figure, then the engine fixes."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ._common import Row

__all__ = ["FigureRun", "machine", "render"]

PACKAGES = ("openai", "aiohttp", "httpx2", "ipykernel", "jupyter_client", "anywidget",
            "ipywidgets")


@dataclass
class FigureRun:
    """One figure's rows, how long it took, and the error if it broke."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def machine() -> dict[str, str]:
    """What the numbers depend on: cores, CPU, Python, package versions, load, date."""
    info = {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": _cpu_model(),
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "OS": f"{platform.system()} {platform.release()}",
    }
    for name in PACKAGES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = "not installed"
    info["engine HTTP transport"] = _transport()
    info["engine event loop"] = _event_loop()
    info["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return info


def render(runs: list[FigureRun], info: dict[str, str], profile: str, seconds: float,
           fixes: str = "") -> str:
    goals = [r for run in runs for r in run.rows if r.met is not None]
    missed = [r for r in goals if not r.met]
    out = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench{_flag(profile)}` ({profile} sizes) in {seconds:.0f} s. "
        "Loopback fake model (`hermes_jupyter.testing`) with scripted latencies; benchmarks "
        "are not tests, nothing here is asserted. Wall times and tail latencies depend on "
        "what else the machine runs: see the load averages below.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "## Summary",
        "",
        f"{len(goals) - len(missed)} of {len(goals)} goals met.",
    ]
    if missed:
        out += ["", "Missed:", ""]
        out += [f"- {r.figure}: {r.metric} = {_num(r.value, r.unit)}"
                + (f", {r.ratio:.2f}x" if r.ratio is not None else "") + f" (goal {r.goal})"
                for r in missed]
    broken = [run for run in runs if run.error]
    if broken:
        out += ["", "Figures that failed to run:", ""]
        out += [f"- {run.name}: `{run.error}`" for run in broken]
    for run in runs:
        out += ["", f"## {run.name}: {run.title}", "", f"_{run.seconds:.0f} s_", ""]
        if run.error:
            out += [f"**Failed:** `{run.error}`"]
        if run.rows:
            out += [
                "| metric | value | baseline | ratio | goal | met? | notes |",
                "|---|---|---|---|---|---|---|",
                *(_line(r) for r in run.rows),
            ]
    if fixes:
        out += ["", fixes.strip()]
    return "\n".join(out) + "\n"


def _line(r: Row) -> str:
    baseline = f"{_num(r.baseline, r.unit)} ({r.baseline_label})" if r.baseline is not None else "—"
    ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "—"
    met = "—" if r.met is None else ("yes" if r.met else "**no**")
    return (f"| {r.metric} | {_num(r.value, r.unit)} | {baseline} | {ratio} | {r.goal} | "
            f"{met} | {r.note} |")


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 or unit == "tasks":
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    return f"{text} {unit}"


def _flag(profile: str) -> str:
    return {"full": "", "quick": " --quick"}.get(profile, f" --sizes {profile}")


def _transport() -> str:
    """Which HTTP stack the provider streams over (it prefers aiohttp when installed)."""
    try:
        from hermes_jupyter.engine.provider import _http_client
    except ImportError:  # an engine from before the aiohttp transport
        return "httpx2 (SDK default)"
    client = _http_client()
    return "httpx2 (SDK default)" if client is None else f"aiohttp ({type(client).__name__})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _event_loop() -> str:
    """The loop class the engine runs on (uvloop when installed)."""
    from hermes_jupyter.engine.loop import _new_loop

    loop = _new_loop()
    try:
        return f"{type(loop).__module__}.{type(loop).__name__}"
    finally:
        loop.close()
