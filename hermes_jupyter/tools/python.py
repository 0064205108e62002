"""The `python` toolset: run code in a fresh subprocess, killed on timeout or cancel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PythonRunner"]

_MAX_OUTPUT = 20_000


class PythonRunner:
    """Runs snippets with the kernel's interpreter in `cwd`; never in the notebook's process."""

    def __init__(self, cwd: str | os.PathLike[str], default_timeout: float = 60.0) -> None:
        self.cwd = Path(cwd)
        self.default_timeout = default_timeout

    def tools(self) -> list[Callable[..., Any]]:
        return [self.run_python]

    async def run_python(self, code: str, timeout: float | None = None) -> str:
        """Run Python code in a new process and return what it printed (stdout and stderr).

        Args:
            code: the program text; print what you want to see.
            timeout: seconds before the process is killed.
        """
        limit = self.default_timeout if timeout is None else min(timeout, 600.0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", code,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit)
        except asyncio.TimeoutError:
            _kill(proc)
            await proc.wait()
            return f"Error: the code ran past its {limit:g} s timeout and was stopped"
        except BaseException:  # cancelled: the task was cancelled, so the process must die
            _kill(proc)
            raise
        text = out.decode("utf-8", errors="replace")
        if len(text) > _MAX_OUTPUT:
            text = text[:_MAX_OUTPUT] + "\n… [output cut]"
        status = "" if proc.returncode == 0 else f"\n[exit code {proc.returncode}]"
        return (text or "(no output)") + status


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
