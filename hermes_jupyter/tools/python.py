"""The `python` toolset: run code in a fresh, supervised subprocess (see `process.py`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .process import ProcessToolset, run_process

__all__ = ["ProcessKilled", "PythonRunner"]



class ProcessKilled(RuntimeError):
    """A tool process died of a signal: its output is partial, never a normal result."""


class PythonRunner(ProcessToolset):
    """Runs snippets with the kernel's interpreter in `cwd`; never in the notebook's process.

    `policy` sets the environment allowlist, memory cap and output cap, and the session's
    process registry that `close()` kills; the default scrubs only by variable name.
    """

    def tools(self) -> list[Callable[..., Any]]:
        return [self.run_python]

    async def run_python(self, code: str, timeout: float | None = None) -> str:
        """Run Python code in a new process and return what it printed (stdout and stderr).

        Args:
            code: the program text; print what you want to see.
            timeout: seconds before the process is killed.
        """
        limit = self.limit(timeout)
        result = await run_process(
            [sys.executable, "-I", "-c", code], cwd=self.cwd, policy=self.policy, timeout=limit
        )
        text = result.output
        if result.timed_out:
            return (f"Error: the code ran past its {limit:g} s timeout and was stopped; "
                    f"output until then:\n{text}")
        if result.signal is not None:
            cap = self.policy.memory_limit_mb
            hint = f" (the memory cap is {cap} MB)" if cap else ""
            raise ProcessKilled(
                f"the process was killed by {result.signal}{hint} and did not finish; "
                f"output until then:\n{text or '(none)'}"
            )
        status = "" if result.returncode == 0 else f"\n[exit code {result.returncode}]"
        return (text or "(no output)") + status
