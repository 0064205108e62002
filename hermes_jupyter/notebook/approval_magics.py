"""`%approve_task` and `%deny_task`: decide on the tool calls a task waits on.

A task in state `awaiting_approval` shows its pending calls in `%check_task` and
`%list_tasks`; these magics decide through `Session.approve` / `Session.deny`. They read the
task ID as every task magic does (`magic_args`: one shell word, `'my task'` quoted); a rejected
line fails the cell with one line (a `UsageError`, `%approve_task: ...`) and changes nothing.
"""

# IPython's magic decorators are untyped; everything else here is checked.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.errors import HermesError
from ..core.models import PendingApproval
from ..core.text import plural, short
from ..engine.task import Task
from .magic_args import TASK_HELP, find_task, one_line_errors, parse_line, parser_of, split_options

__all__ = ["ApprovalMagics", "load"]


@magics_class
class ApprovalMagics(Magics):
    """`%approve_task ID [CALL] [--all] [--remember PATTERN]` and `%deny_task ID [REASON]`."""

    @line_magic
    @one_line_errors("approve_task")
    @magic_arguments()
    @argument("task", metavar="ID", help=TASK_HELP)
    @argument("call", nargs="?", default=None, metavar="CALL",
              help="the pending call's id as %%check_task shows it (default: the oldest)")
    @argument("--all", action="store_true", help="approve every call the task waits on")
    @argument("--remember", metavar="PATTERN",
              help="also approve calls matching PATTERN (e.g. 'git status', 'ls *') for the "
                   "rest of the session")
    def approve_task(self, line: str) -> None:
        """Let the tool call a task waits on run (the oldest, CALL, or --all of them)."""
        args = parse_line(ApprovalMagics.approve_task, line)
        if args.all and args.call:
            raise UsageError("give a CALL or --all, not both")
        task = self._task(args.task)
        calls = [p.call_id for p in task.check().pending_approvals] if args.all else [args.call]
        if args.all and not calls:
            raise HermesError(f"task {task.id} has no tool call awaiting approval.")
        done: list[PendingApproval] = []
        gone: list[str] = []  # decided meanwhile (a timeout, the panel): said, not hidden
        for n, call_id in enumerate(calls, 1):
            # the pattern is remembered with the last call, so it approves none of these first
            remember = args.remember if n == len(calls) else None
            try:
                done.append(task.approve(call_id, remember=remember))
            except HermesError:
                if len(calls) == 1:
                    raise
                gone.append(call_id)
        if not done:
            raise HermesError(f"the calls of {task.id} were decided meanwhile: "
                              f"{', '.join(gone)}.")
        remembered = (f"; calls matching {args.remember!r} now run without asking"
                      if args.remember and calls[-1] not in gone else "")
        skipped = f" ({', '.join(gone)} decided meanwhile)" if gone else ""
        shown = ", ".join(_call(p) for p in done) + skipped
        print(f"Approved {plural(len(done), 'call')} of {task.id}: {shown}{remembered}.")

    @line_magic
    @one_line_errors("deny_task")
    @magic_arguments()
    @argument("task", metavar="ID", help=TASK_HELP)
    @argument("reason", nargs="*", metavar="REASON",
              help="free text the model reads, e.g. not on this machine (taken as typed)")
    def deny_task(self, line: str) -> None:
        """Refuse the oldest tool call a task waits on; the model reads REASON."""
        parser = parser_of(ApprovalMagics.deny_task)
        words, reason = split_options(parser, line, leading=1)
        args = parser.parse_args(words)
        task = self._task(args.task)
        pending = task.deny(None, reason)
        told = f"; the model reads: {reason!r}" if reason else ""
        print(f"Denied {task.id}'s call {_call(pending)}{told}.")

    def _task(self, ref: str) -> Task:
        return find_task(ref, self.shell.user_ns if self.shell is not None else {})


def _call(pending: PendingApproval) -> str:
    return f"{pending.call_id} {pending.tool}({short(pending.arguments, 80)})"


def load(ip: Any) -> None:
    """Register `%approve_task` and `%deny_task` in `ip`."""
    ip.register_magics(ApprovalMagics)
