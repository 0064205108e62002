"""`python -m bench [--quick] [--only a,b] [--out PATH]`: run the figures, write RESULTS.md.

Full sizes take about 8 minutes on 2 cores, `--quick` about 3; `--sizes tiny` is what the
smoke test runs (seconds, numbers meaningless).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from . import FIGURES
from .report import FigureRun, machine, render

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a faster pass")
    parser.add_argument("--sizes", choices=("full", "quick", "tiny"), default=None,
                        help="size profile (default full; --quick means quick)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {FIGURES}")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="report path")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(FIGURES)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    profile = args.sizes or ("quick" if args.quick else "full")
    info = machine()
    info["load average at start"] = _load()
    started = time.monotonic()
    runs = [_run_one(name, profile) for name in names]
    info["load average at end"] = _load()
    fixes_file = HERE / "FIXES.md"
    fixes = fixes_file.read_text() if fixes_file.exists() else ""
    report = render(runs, info, profile, time.monotonic() - started, fixes)
    args.out.write_text(report)
    print(f"\nwrote {args.out} in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if any(run.error for run in runs) else 0


def _run_one(name: str, profile: str) -> FigureRun:
    module = importlib.import_module(f".{name}", __package__)
    title = (module.__doc__ or name).strip().splitlines()[0].rstrip(".")
    run = FigureRun(name, title)
    print(f"{name}: {title}", flush=True)
    t0 = time.monotonic()
    try:
        run.rows = module.run(**module.SIZES[profile])
    except Exception as err:  # one broken figure must not lose the others
        run.error = f"{type(err).__name__}: {err}"
        traceback.print_exc()
    run.seconds = time.monotonic() - t0
    for row in run.rows:
        met = "" if row.met is None else ("  ok" if row.met else "  MISSED")
        ratio = f" ({row.ratio:.2f}x baseline)" if row.ratio is not None else ""
        print(f"  {row.metric}: {row.value:.3g} {row.unit}{ratio}{met}", flush=True)
    return run


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
