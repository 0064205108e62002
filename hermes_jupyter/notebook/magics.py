"""The notebook face: `%delegate`, `%check_task`, `%steer_task`, `%collect_task`, ...

Each magic parses its line, calls the kernel-wide Session (`hermes_jupyter.notebook.kernel`) and
returns something that renders. Bad input costs one line on stderr and changes nothing; no
magic ever prints from a background thread. `%delegate?` and friends print their real help.
"""

# IPython's magic decorators are untyped; everything else here is checked.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from ..core.errors import CollectTimeout, HermesError, UnknownTaskError
from ..core.models import TaskResult
from ..engine.task import Task
from . import kernel
from .binding import check_variable_name, collect_into
from .magic_args import comma_list, context_text, split_options
from .settings import resolve
from .views import SettingsView, TaskReport, TaskTable, elapsed

__all__ = ["HermesMagics", "load_ipython_extension"]

F = TypeVar("F", bound=Callable[..., Any])
TASK_MAGICS = ("check_task", "steer_task", "collect_task", "cancel_task")


def _bundle(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several `@argument`s as one decorator, so magics share option sets."""
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


_timeout_option = argument(
    "--timeout", type=float, metavar="S", default=None,
    help="seconds: for %%delegate, the task's time limit; for %%collect_task, how long to wait",
)
_task_option = argument(
    "task", nargs="?", default=None, metavar="ID",
    help="task id (t3), name, or a variable holding the Task; default: the most recent task",
)
_delegate_options = _bundle(
    argument("-n", "--name", help="a name to address the task by, instead of its id"),
    argument("-m", "--model", help="model for this task (default: HermesJupyter.subagent_model"
                                   " or model)"),
    argument("-c", "--context", action="append", metavar="VAR",
             help="notebook variable handed to the task as text; repeat or use commas"),
    argument("-t", "--tools", action="append", metavar="FUNC",
             help="notebook function the task may call; repeat or use commas"),
    argument("--toolsets", metavar="files,python",
             help="built-in toolsets for this task ('none' for none; default: "
                  "HermesJupyter.toolsets)"),
    argument("--max-iterations", type=int, metavar="N", help="model calls the task may make"),
    _timeout_option,
    argument("goal", nargs="*", metavar="GOAL",
             help="what the subagent should do; {expr} is filled in from the notebook. With "
                  "%%%%delegate the cell body is the goal (taken verbatim)."),
)


def _one_line_errors(name: str) -> Callable[[F], F]:
    """Turn expected failures into one line on stderr (no traceback), returning None."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def magic(self: HermesMagics, *args: Any, **kwargs: Any) -> Any:
            kernel.flush_notices()
            try:
                return fn(self, *args, **kwargs)
            except UsageError as err:
                print(f"%{name}: {_flat(err)} (see %{name}?)", file=sys.stderr)
            except HermesError as err:
                print(f"%{name}: {_flat(err)}", file=sys.stderr)
            return None
        return magic  # type: ignore[return-value]
    return wrap


@magics_class
class HermesMagics(Magics):
    """Delegate work to background subagents and collect their results into variables."""

    @line_cell_magic
    @_one_line_errors("delegate")
    @magic_arguments()
    @_delegate_options
    def delegate(self, line: str, cell: str | None = None) -> Task | None:
        """Start a background subagent on GOAL and return its Task at once.

        The notebook stays free: check, steer, collect or cancel the task by id or name.
        Options go before the goal: %delegate -n sizes -c df Summarise the columns of df
        """
        parser = _parser(HermesMagics.delegate)
        words, goal = split_options(parser, line)
        args = parser.parse_args(words)
        if cell is not None:
            goal = "\n".join(part for part in (goal, cell.strip()) if part)
        if not goal.strip():
            raise UsageError("missing GOAL: say what the subagent should do")
        limit = kernel.get_config().context_limit
        context, cut = self._context(comma_list(args.context), limit)
        tools = self._functions(comma_list(args.tools))
        toolsets = None if args.toolsets is None else [
            t for t in comma_list([args.toolsets]) if t.lower() != "none"]
        session = kernel.get_session()
        task = session.delegate(
            goal, context, name=args.name, model=args.model, tools=tools, toolsets=toolsets,
            max_iterations=args.max_iterations, timeout=args.timeout,
        )
        for var, full in cut:
            print(f"%delegate: -c {var} was cut to {limit} of {full} characters "
                  "(HermesJupyter.context_limit).")
        if args.model and getattr(session, "is_demo", False):
            print(f"%delegate: -m {args.model} ignored: tasks run on the demo model until an "
                  "API key or endpoint is set.")
        return task

    @line_magic
    @_one_line_errors("check_task")
    @magic_arguments()
    @_task_option
    @argument("-l", "--lines", type=int, default=6, metavar="N",
              help="lines of recent output to show (default 6)")
    def check_task(self, line: str) -> TaskReport | None:
        """Show a task's state, time, calls, tokens, steering and last lines of output."""
        args = parse_argstring(HermesMagics.check_task, line)
        task = self._task(args.task)
        return TaskReport(task.check(), tail=max(0, args.lines))

    @line_magic
    @_one_line_errors("steer_task")
    @magic_arguments()
    @argument("task", metavar="ID", help="task id (t3), name, or a variable holding the Task")
    @argument("message", nargs="*", metavar="MESSAGE",
              help="what the subagent should do differently")
    def steer_task(self, line: str) -> None:
        """Send a running task a message; it reads it before its next model call."""
        parser = _parser(HermesMagics.steer_task)
        words, message = split_options(parser, line, leading=1)
        args = parser.parse_args(words)
        if not message:
            raise UsageError("missing MESSAGE: say what the subagent should do differently")
        task = self._task(args.task)
        task.steer(message)
        print(f"Steered {task.check().label}: it reads the message before its next model call.")

    @line_magic
    @_one_line_errors("collect_task")
    @magic_arguments()
    @_task_option
    @_timeout_option
    @argument("-o", "--output", metavar="VAR",
              help="also store the result in notebook variable VAR (later, if you stop "
                   "waiting)")
    def collect_task(self, line: str) -> TaskResult | None:
        """Wait for a task and return its TaskResult: r = %collect_task t1.

        Interrupting the kernel stops the waiting, not the task.
        """
        args = parse_argstring(HermesMagics.collect_task, line)
        variable = check_variable_name(args.output) if args.output else None
        if args.timeout is not None and args.timeout < 0:
            raise UsageError("--timeout must be >= 0 seconds")
        task = self._task(args.task)
        result, later = self._wait(task, args.timeout)
        if variable is None:
            if later:
                print(f"{later} Collect it later with %collect_task {task.id}.")
            return result
        stored = collect_into(self._ns, task, variable)
        if later:
            print(f"{later} {stored}")
        return result

    @line_magic
    @_one_line_errors("cancel_task")
    @magic_arguments()
    @argument("task", nargs="?", metavar="ID",
              help="task id (t3), name, or a variable holding the Task")
    @argument("--all", action="store_true", help="cancel every queued or running task")
    def cancel_task(self, line: str) -> None:
        """Stop a task (within about a second) or, with --all, every live task."""
        args = parse_argstring(HermesMagics.cancel_task, line)
        if args.all == bool(args.task):
            raise UsageError("give a task id or --all (not both)")
        if args.all:
            session = kernel.peek_session()
            n = session.cancel_all() if session is not None else 0
            print(f"Cancelled {n} task{'s' if n != 1 else ''}." if n else
                  "No queued or running task to cancel.")
            return
        task = self._task(args.task)
        label = task.check().label
        if task.cancel():
            print(f"Cancelled {label}.")
        elif not task.done():
            print(f"{label} is already being cancelled.")
        else:
            print(f"{label} had already {task.state.value}; nothing to cancel.")

    @line_magic
    @_one_line_errors("list_tasks")
    @magic_arguments()
    def list_tasks(self, line: str) -> TaskTable | None:
        """A table of every task of this kernel: state, model, time, calls, tokens."""
        parse_argstring(HermesMagics.list_tasks, line)
        return TaskTable(kernel.all_statuses())

    @line_magic
    @_one_line_errors("hermes_config")
    @magic_arguments()
    def hermes_config(self, line: str) -> SettingsView | None:
        """The effective settings and where each comes from; keys only as a count."""
        parse_argstring(HermesMagics.hermes_config, line)
        settings = resolve(kernel.get_config())
        session = kernel.peek_session()
        if session is None:
            state = "session: not started yet (it starts with the first task)"
        else:
            counts = ", ".join(f"{n} {s}" for s, n in session.counts().items() if n)
            state = f"session: running on {session.model} · {counts or 'no tasks'}"
        pending = kernel.pending_change()
        return SettingsView(settings.rows(), f"{state}; {pending}" if pending else state)

    @line_magic
    @_one_line_errors("hermes_dashboard")
    @magic_arguments()
    def hermes_dashboard(self, line: str) -> None:
        """Show the live dashboard of this kernel's tasks."""
        parse_argstring(HermesMagics.hermes_dashboard, line)
        try:
            from .widgets.dashboard import dashboard
        except ImportError as err:
            raise HermesError(f"the dashboard is not available here ({err}).") from None
        display(dashboard(kernel.get_session()))

    # ---- helpers -----------------------------------------------------------------------
    @property
    def _ns(self) -> dict[str, Any]:
        assert self.shell is not None  # magics always run in a shell
        return self.shell.user_ns  # type: ignore[no-any-return]

    def _task(self, ref: str | None) -> Task:
        """By id or name; else a notebook variable holding a Task (`t = %delegate ...`)."""
        if ref is None:
            return kernel.latest_task()
        try:
            return kernel.find_task(ref)
        except UnknownTaskError:
            held = self._ns.get(ref.strip())
            if isinstance(held, Task):
                return kernel.find_task(held)
            raise

    def _context(self, names: list[str], limit: int) -> tuple[str, list[tuple[str, int]]]:
        parts, cut = [], []
        for name in dict.fromkeys(names):
            check_variable_name(name)
            if name not in self._ns:
                raise HermesError(f"no variable {name!r} in the notebook for -c.")
            text, full = context_text(name, self._ns[name], limit)
            parts.append(text)
            if full is not None:
                cut.append((name, full))
        return "\n\n".join(parts), cut

    def _functions(self, names: list[str]) -> list[Callable[..., Any]]:
        functions = []
        for name in names:
            value = self._ns.get(check_variable_name(name))
            if not callable(value):
                raise HermesError(f"{name!r} is not a function in the notebook: -t takes "
                                  "functions defined in the notebook.")
            functions.append(value)
        return functions

    def _wait(self, task: Task, timeout: float | None) -> tuple[TaskResult | None, str | None]:
        """(result, None), or (None, one line saying why the wait ended without a result).

        After `wait_notice_after` seconds it says once that it waits and how to stop.
        """
        quiet = kernel.get_config().wait_notice_after
        try:
            if task.done() or (timeout is not None and timeout <= quiet):
                return task.collect(timeout), None
            try:
                return task.collect(quiet), None
            except CollectTimeout:
                status = task.check()
                print(f"Waiting for {status.label} ({status.state.value}, "
                      f"{elapsed(status.elapsed_s)}); interrupt the kernel to stop waiting, "
                      "the task keeps running.", flush=True)
            return task.collect(None if timeout is None else timeout - quiet), None
        except CollectTimeout:
            return None, (f"{task.check().label} is still {task.state.value} after "
                          f"{timeout:g}s; it goes on.")
        except KeyboardInterrupt:
            label = task.check().label
            return None, f"Stopped waiting for {label}; it is still {task.state.value}."


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hermes_jupyter`: register the magics, the settings and tab completion."""
    ip.register_magics(HermesMagics)
    from . import agent_magics, approval_magics

    agent_magics.load(ip)
    approval_magics.load(ip)
    if keep_question_marks not in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.append(keep_question_marks)
    for name in TASK_MAGICS:
        ip.set_hook("complete_command", _complete_task_refs, str_key=f"%{name}")
    kernel.install(ip)
    from . import comm

    comm.register(ip)  # silent until a JupyterLab panel opens the comm


_PROSE_MAGIC = re.compile(
    r"^(?P<indent>\s*)(?P<assign>[A-Za-z_]\w*\s*=\s*)?%(?P<name>delegate|steer_task|hermes)"
    r"\s+(?P<rest>.*\S)\s*$"
)


def keep_question_marks(lines: list[str]) -> list[str]:
    """Keep `%delegate what is the total?` a goal: IPython reads a line ending in `word?` as a
    request for help on `word`. `%delegate?` alone still shows the magic's help."""
    if next((line for line in lines if line.strip()), "").lstrip().startswith("%%"):
        return lines  # a cell magic's body is its goal, verbatim
    out = []
    for line in lines:
        match = _PROSE_MAGIC.match(line.rstrip("\n"))
        if match and match["rest"].endswith("?") and match["rest"] not in ("?", "??"):
            call = f"get_ipython().run_line_magic({match['name']!r}, {match['rest']!r})"
            line = f"{match['indent']}{match['assign'] or ''}{call}\n"
        out.append(line)
    return out


def _complete_task_refs(shell: Any, event: Any) -> list[str]:
    """Task ids and names for the first argument of the task magics."""
    before = event.text_until_cursor.split()
    typing_first = len(before) == 1 or (len(before) == 2 and not event.text_until_cursor[-1:]
                                        .isspace())
    if not typing_first:
        return []
    refs: list[str] = []
    for status in kernel.all_statuses():
        refs.append(status.id)
        if status.name:
            refs.append(status.name)
    if before[0] == "%cancel_task":
        refs.append("--all")
    return list(dict.fromkeys(refs))


def _flat(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _parser(magic: Any) -> argparse.ArgumentParser:
    """The argparse parser `@magic_arguments` built for `magic`."""
    parser: argparse.ArgumentParser = magic.parser
    return parser


for _magic in (HermesMagics.delegate, HermesMagics.steer_task):
    _parser(_magic).allow_abbrev = False  # options are scanned by their full names
