"""`%resume_task ID|NAME`: start an interrupted task of an earlier kernel again (`Session.resume`).

`%list_tasks --history` shows the tasks earlier kernels kept in the journal; an
`interrupted ⚠` one (its kernel died while it ran) goes on from its journaled conversation as
a new task of this kernel. A rejected line fails the cell with one line (a `UsageError`) and
changes nothing.
"""

# IPython's magic decorators are untyped; everything else here is checked.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.errors import HermesError
from ..core.text import plural
from ..engine.task import Task
from . import kernel
from .binding import check_variable_name
from .magic_args import comma_list, one_line_errors, parse_line

__all__ = ["ResumeMagics", "load"]


@magics_class
class ResumeMagics(Magics):
    """`%resume_task ID|NAME [-t FUNC] [--toolsets files,python]`."""

    @line_magic
    @one_line_errors("resume_task")
    @magic_arguments()
    @argument("task", metavar="ID",
              help="the interrupted task: t3, kernel/t3 as %%list_tasks --history shows it, "
                   "or its name (quoted when it has spaces)")
    @argument("-t", "--tools", action="append", metavar="FUNC",
              help="notebook function the task may call again (they are not journaled); "
                   "repeat or use commas")
    @argument("--toolsets", metavar="files,python",
              help="toolsets for the resumed task ('none' for none; default: "
                   "HermesJupyter.toolsets)")
    def resume_task(self, line: str) -> Task:
        """Go on with an interrupted task of an earlier kernel from its journaled
        conversation, as a new task of this kernel; returns its Task at once. Tool calls
        that had returned are not run again."""
        args = parse_line(ResumeMagics.resume_task, line)
        tools = [self._function(name) for name in comma_list(args.tools)]
        toolsets = None if args.toolsets is None else [
            t for t in comma_list([args.toolsets]) if t.lower() != "none"]
        task = kernel.get_session().resume(args.task, tools=tools or None, toolsets=toolsets)
        done = len(task.prior_messages or ())
        label = f"{task.id} {task.name!r}" if task.name else task.id
        print(f"Resumed {task.resumed_from} as {label} from {plural(done, 'message')} of its "
              "conversation.")
        return task

    def _function(self, name: str) -> Callable[..., Any]:
        value = self.shell.user_ns.get(check_variable_name(name)) if self.shell else None
        if not callable(value):
            raise HermesError(f"{name!r} is not a function in the notebook: -t takes "
                              "functions defined in the notebook.")
        return value  # type: ignore[no-any-return]


def load(ip: Any) -> None:
    """Register `%resume_task` in `ip`."""
    ip.register_magics(ResumeMagics)
