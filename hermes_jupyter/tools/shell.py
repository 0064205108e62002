"""The `shell` toolset: `bash -c` in the workspace, through the supervised process runner.

Like the `python` toolset (see `process.py`): its own process group and session, killed whole
on cancel or timeout, output capped while read, the scrubbed environment. Every call needs
approval (under the task's approval policy: `ask` by default).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from .approval import tool
from .process import ProcessToolset, run_process
from .refusal import refusal

__all__ = ["ShellRunner"]



class ShellRunner(ProcessToolset):
    """Runs shell commands with `bash -c` in `cwd` (the workspace)."""

    def tools(self) -> list[Callable[..., Any]]:
        return [self.run_shell]

    @tool(requires_approval=True, approval_reason="run_shell runs a shell command")
    async def run_shell(self, command: str, timeout: float | None = None) -> str:
        """Run a shell command with bash in the workspace; returns its output (stdout and
        stderr) and exit code. A person may have to approve the command first.

        Args:
            command: the command line, as you would type it in a terminal.
            timeout: seconds before the command and everything it started are killed.
        """
        refused = refusal(command, workspace=str(self.cwd.resolve()))
        if refused:  # the approval policy refuses it first; this knows the workspace's path
            raise PermissionError(f"refused: {refused}; this command never runs")
        limit = self.limit(timeout)
        bash = shutil.which("bash") or "/bin/bash"
        result = await run_process([bash, "-c", command], cwd=self.cwd, policy=self.policy,
                                   timeout=limit)
        text = result.output or "(no output)"
        if result.timed_out:
            return (f"Error: the command ran past its {limit:g} s timeout and was stopped "
                    f"with everything it started; output until then:\n{text}")
        if result.signal is not None:
            return f"Error: the command was killed by {result.signal}; output until then:\n{text}"
        return f"{text.rstrip()}\n[exit code {result.returncode}]"
