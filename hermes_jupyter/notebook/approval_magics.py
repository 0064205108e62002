"""`%approve_task` and `%deny_task`: decide on the tool calls a task waits on.

A task in state `awaiting_approval` shows its pending calls in `%check_task` and
`%list_tasks`; these magics decide through `Session.approve` / `Session.deny`. A rejected
line fails the cell with one line (a `UsageError`) and changes nothing.
"""

# IPython's magic decorators are untyped; everything else here is checked.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..core.errors import HermesError
from ..core.models import PendingApproval
from ..core.text import plural, short
from ..engine.task import Task
from . import kernel

__all__ = ["ApprovalMagics", "load"]


@magics_class
class ApprovalMagics(Magics):
    """`%approve_task ID [CALL] [--all] [--remember PATTERN]` and `%deny_task ID [REASON]`."""

    @line_magic
    @magic_arguments()
    @argument("task", metavar="ID", help="task id (t3), name, or a variable holding the Task")
    @argument("call", nargs="?", default=None, metavar="CALL",
              help="the pending call's id as %%check_task shows it (default: the oldest)")
    @argument("--all", action="store_true", help="approve every call the task waits on")
    @argument("--remember", metavar="PATTERN",
              help="also approve calls matching PATTERN (e.g. 'git status', 'ls *') for the "
                   "rest of the session")
    def approve_task(self, line: str) -> None:
        """Let the tool call a task waits on run (the oldest, CALL, or --all of them)."""
        args = _parse(ApprovalMagics.approve_task, line)
        if args.all and args.call:
            raise UsageError("%approve_task: give a CALL or --all, not both.")
        task = self._task(args.task)
        calls = [p.call_id for p in task.check().pending_approvals] if args.all else [args.call]
        if args.all and not calls:
            raise UsageError(f"%approve_task: task {task.id} has no tool call awaiting "
                             "approval.")
        done: list[PendingApproval] = []
        for call_id in calls:
            try:
                done.append(task.approve(call_id, remember=args.remember if not done else None))
            except HermesError as err:
                if not done:
                    raise UsageError(f"%approve_task: {err}") from None
        remembered = (f"; calls matching {args.remember!r} now run without asking"
                      if args.remember else "")
        shown = ", ".join(_call(p) for p in done)
        print(f"Approved {plural(len(done), 'call')} of {task.id}: {shown}{remembered}.")

    @line_magic
    def deny_task(self, line: str) -> None:
        """Refuse the oldest tool call a task waits on; the model reads REASON.

        Usage: `%deny_task ID [REASON]` (REASON is free text, e.g. not on this machine).
        """
        ref, _, reason = line.strip().partition(" ")
        if not ref:
            raise UsageError("%deny_task: give a task id (t3), then an optional reason.")
        if ref.startswith("-"):
            raise UsageError(f"%deny_task takes no option {ref!r}: %deny_task ID [REASON].")
        task = self._task(ref)
        try:
            pending = task.deny(None, reason.strip())
        except HermesError as err:
            raise UsageError(f"%deny_task: {err}") from None
        told = f"; the model reads: {reason.strip()!r}" if reason.strip() else ""
        print(f"Denied {task.id}'s call {_call(pending)}{told}.")

    def _task(self, ref: str) -> Task:
        try:
            return kernel.find_task(ref)
        except HermesError as err:
            held = self.shell.user_ns.get(ref.strip()) if self.shell is not None else None
            if isinstance(held, Task):
                return kernel.find_task(held)
            raise UsageError(str(err)) from None


def _parse(magic: Any, line: str) -> Any:
    try:
        shlex.split(line)
        return parse_argstring(magic, line)
    except (ValueError, UsageError) as err:
        raise UsageError(f"%{magic.__name__}: {' '.join(str(err).split())}") from None


def _call(pending: PendingApproval) -> str:
    return f"{pending.call_id} {pending.tool}({short(pending.arguments, 80)})"


def load(ip: Any) -> None:
    """Register `%approve_task` and `%deny_task` in `ip`."""
    ip.register_magics(ApprovalMagics)
