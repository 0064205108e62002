"""The notebook face: `%delegate`, `%check_task`, `%steer_task`, `%collect_task`, ...

Each magic parses its line, calls the kernel-wide Session (`hermes_jupyter.notebook.kernel`) and
returns something that renders. Bad input is one `UsageError` line (no traceback) that fails
the cell and changes nothing; no magic ever prints from a background thread. `%delegate?` and
friends print their real help.
"""

# IPython's magic decorators are untyped; everything else here is checked.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    needs_local_scope,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from ..core.errors import CollectTimeout, HermesError, UnknownTaskError
from ..core.models import TaskResult
from ..core.text import plural
from ..engine.group import TaskGroup
from ..engine.task import Task
from . import kernel
from .binding import VariableExistsError, check_free, check_variable_name, collect_into
from .context import context_text
from .each import items_of, output_type_of
from .goal import expand
from .magic_args import (
    TASK_HELP,
    TASK_MAGICS,
    comma_list,
    complete_task_refs,
    find_task,
    keep_question_marks,
    one_line_errors,
    parse_line,
    parser_of,
    seconds,
    split_options,
)
from .settings import resolve
from .views import HistoryTable, SettingsView, TaskReport, TaskTable, elapsed, mcp_status_of

__all__ = ["HermesMagics", "load_ipython_extension"]

F = TypeVar("F", bound=Callable[..., Any])
# Placeholders of a goal filled by the engine, not the notebook, in `--each VAR` mode;
# `expand` passes them through as typed.
ENGINE_PLACEHOLDERS: frozenset[str] = frozenset({"item"})


def _bundle(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several `@argument`s as one decorator, so magics share option sets."""
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


_timeout_option = argument(
    "--timeout", type=seconds, metavar="S", default=None,
    help="seconds: for %%delegate, the task's time limit; for %%collect_task, how long to wait",
)
_task_option = argument(
    "task", nargs="?", default=None, metavar="ID",
    help=f"{TASK_HELP}; default: the most recent task",
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
             help="toolsets for this task: files, python, mcp:SERVER[/tool1+tool2] ('none' "
                  "for none; default: HermesJupyter.toolsets)"),
    argument("--max-iterations", type=int, metavar="N", help="model calls the task may make"),
    _timeout_option,
    argument("--output-type", metavar="NAME",
             help="a pydantic model class, dataclass, TypedDict or JSON-schema dict in the "
                  "notebook: the answer is validated into it (result.data)"),
    argument("--each", metavar="VAR",
             help="one task per item of notebook variable VAR (a list, a DataFrame's rows): "
                  "{item} in GOAL is each item; returns the TaskGroup"),
    argument("goal", nargs="*", metavar="GOAL",
             help="what the subagent should do; {expr} is filled in from the notebook. With "
                  "%%%%delegate the cell body is the goal, taken verbatim (no filling in)."),
)


@magics_class
class HermesMagics(Magics):
    """Delegate work to background subagents and collect their results into variables."""

    @line_cell_magic
    @no_var_expand
    @needs_local_scope
    @one_line_errors("delegate")
    @magic_arguments()
    @_delegate_options
    def delegate(self, line: str, cell: str | None = None,
                 local_ns: dict[str, Any] | None = None) -> Task | TaskGroup | None:
        """Start a background subagent on GOAL and return its Task at once.

        The notebook stays free: check, steer, collect or cancel the task by id or name.
        Options go before the goal: %delegate -n sizes -c df Summarise the columns of df
        {expr} and $name in the line are filled in from the notebook ({{ }} and $$ keep them);
        a %%delegate cell's body is the goal as typed (only options go on its line).
        With --each VAR: one task per item, {item} left for the engine; g = %delegate --each
        rows ... binds the TaskGroup (g.collect(), g.to_pandas()).
        """
        parser = parser_of(HermesMagics.delegate)
        namespace = {**self._ns, **(local_ns or {})}
        words, goal = split_options(parser, line)
        if cell is not None and goal:
            raise UsageError(f"%%delegate takes only options on its line, not {goal!r}: the "
                             "cell body is the goal")
        args = parser.parse_args([expand(word, namespace, what="options") for word in words])
        goal = cell.strip() if cell is not None else expand(
            goal, namespace, keep=ENGINE_PLACEHOLDERS if args.each else ())
        if not goal.strip():
            raise UsageError("missing GOAL: say what the subagent should do")
        limit = kernel.get_config().context_limit
        context, notes = self._context(comma_list(args.context), limit)
        tools = self._functions(comma_list(args.tools))
        toolsets = None if args.toolsets is None else [
            t for t in comma_list([args.toolsets]) if t.lower() != "none"]
        output_type = output_type_of(namespace, args.output_type)
        session = kernel.get_session()
        options = {"model": args.model, "tools": tools, "toolsets": toolsets,
                   "max_iterations": args.max_iterations, "timeout": args.timeout}
        earlier = None if args.each else self._named(args.name)
        started: Task | TaskGroup = (
            session.map(goal, items_of(namespace, args.each), output_type=output_type,
                        name=args.name, context=context, **options) if args.each else
            session.delegate(goal, context, name=args.name, output_type=output_type,
                             **options))
        for note in notes:
            print(f"%delegate: {note}")
        if isinstance(started, Task) and earlier is not None:
            print(f"%delegate: the name {args.name!r} now means {started.id} (it meant "
                  f"{earlier}).")
        if args.model and getattr(session, "is_demo", False):
            print(f"%delegate: -m {args.model} ignored: tasks run on the demo model until an "
                  "API key or endpoint is set.")
        return started

    @line_magic
    @one_line_errors("check_task")
    @magic_arguments()
    @_task_option
    @argument("-l", "--lines", type=int, default=6, metavar="N",
              help="lines of recent output to show (default 6)")
    def check_task(self, line: str) -> TaskReport | None:
        """Show a task's state, time, calls, tokens, steering and last lines of output."""
        args = parse_line(HermesMagics.check_task, line)
        task = self._task(args.task)
        return TaskReport(task.check(), tail=max(0, args.lines))

    @line_magic
    @no_var_expand
    @needs_local_scope
    @one_line_errors("steer_task")
    @magic_arguments()
    @argument("task", metavar="ID", help=TASK_HELP)
    @argument("message", nargs="*", metavar="MESSAGE",
              help="what the subagent should do differently; {expr} and $name are filled in "
                   "from the notebook ({{ }} and $$ keep them)")
    def steer_task(self, line: str, local_ns: dict[str, Any] | None = None) -> None:
        """Send a running task a message; it reads it before its next model call."""
        parser = parser_of(HermesMagics.steer_task)
        namespace = {**self._ns, **(local_ns or {})}
        words, message = split_options(parser, line, leading=1)
        args = parser.parse_args([expand(word, namespace, what="options") for word in words])
        message = expand(message, namespace, what="message")
        if not message:
            raise UsageError("missing MESSAGE: say what the subagent should do differently")
        task = self._task(args.task)
        task.steer(message)
        print(f"Steered {task.check().label}: it reads the message before its next model call.")

    @line_magic
    @one_line_errors("collect_task")
    @magic_arguments()
    @_task_option
    @_timeout_option
    @argument("-o", "--output", metavar="VAR",
              help="also store the result in notebook variable VAR; a VAR that holds another "
                   "value, a built-in or an IPython name is refused without --replace")
    @argument("--replace", action="store_true",
              help="with -o: replace what VAR holds now")
    def collect_task(self, line: str) -> TaskResult:
        """Wait for a task and return its TaskResult: r = %collect_task t1.

        No result by the timeout, or an interrupted wait, fails the cell in one line and
        changes nothing: the task goes on; collect it later.
        """
        args = parse_line(HermesMagics.collect_task, line)
        task = self._task(args.task)
        variable = self._free(task, args.output, args.replace) if args.output else None
        result = self._wait(task, args.timeout)
        if variable is not None:
            collect_into(self._ns, task, variable, overwrite=args.replace)
        return result

    @line_magic
    @one_line_errors("cancel_task")
    @magic_arguments()
    @argument("task", nargs="?", metavar="ID",
              help=TASK_HELP)
    @argument("--all", action="store_true", help="cancel every queued or running task")
    def cancel_task(self, line: str) -> None:
        """Stop a task (within about a second) or, with --all, every live task."""
        args = parse_line(HermesMagics.cancel_task, line)
        if args.all == bool(args.task):
            raise UsageError("give a task id or --all (not both)")
        if args.all:
            session = kernel.peek_session()
            n = session.cancel_all() if session is not None else 0
            print(f"Cancelled {plural(n, 'task')}." if n else
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
    @one_line_errors("list_tasks")
    @magic_arguments()
    @argument("--history", action="store_true",
              help="the tasks of earlier kernels kept in the journal (HermesJupyter.journal)")
    def list_tasks(self, line: str) -> TaskTable | HistoryTable | None:
        """A table of every task of this kernel: state, model, time, calls, tokens.

        With --history, the tasks earlier kernels kept in the journal (interrupted ones are
        those a kernel left unfinished); collect one with hj.get_session().history().
        """
        args = parse_line(HermesMagics.list_tasks, line)
        if args.history:
            return HistoryTable(kernel.history())
        return TaskTable(kernel.all_statuses())

    @line_magic
    @one_line_errors("hermes_config")
    @magic_arguments()
    @argument("--connect", action="store_true",
              help="start the MCP servers not running yet, to list their tools")
    def hermes_config(self, line: str) -> SettingsView | None:
        """The effective settings and where each comes from; keys only as a count, MCP
        servers with their tools but never their env or headers."""
        args = parse_line(HermesMagics.hermes_config, line)
        settings = resolve(kernel.get_config())
        session = kernel.get_session() if args.connect else kernel.peek_session()
        servers = (session.mcp_status(connect=args.connect) if session is not None
                   else mcp_status_of(settings.mcp_servers))
        if session is None:
            state = "session: not started yet (it starts with the first task)"
        else:
            counts = ", ".join(f"{n} {s}" for s, n in session.counts().items() if n)
            journal = "journal on" if session.journal is not None else "no journal"
            state = f"session: running on {session.model} · {counts or 'no tasks'} · {journal}"
        pending = kernel.pending_change()
        return SettingsView(settings.rows(), f"{state}; {pending}" if pending else state,
                            servers)

    @line_magic
    @one_line_errors("hermes_dashboard")
    @magic_arguments()
    def hermes_dashboard(self, line: str) -> None:
        """Show the live dashboard of this kernel's tasks."""
        parse_line(HermesMagics.hermes_dashboard, line)
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
        return find_task(ref, self._ns)

    def _free(self, task: Task, variable: str, replace: bool) -> str:
        """`-o VAR` checked before any wait: a free name, or one line saying what to use."""
        try:
            return check_free(self._ns, task, variable, overwrite=replace)
        except VariableExistsError as err:
            raise HermesError(f"`{err.variable}` {err.what}: use -o {err.suggestion} (free), "
                              "or add --replace to replace it.") from None

    def _named(self, name: str | None) -> str | None:
        """The id of the task `name` means now, if any (it will mean the new one)."""
        if not name:
            return None
        try:
            return kernel.find_task(name).id
        except UnknownTaskError:
            return None

    def _context(self, names: list[str], limit: int) -> tuple[str, list[str]]:
        """The `-c` variables as one text, and one line per variable not sent whole."""
        parts, notes = [], []
        for name in dict.fromkeys(names):
            check_variable_name(name)
            if name not in self._ns:
                raise HermesError(f"no variable {name!r} in the notebook for -c.")
            part = context_text(name, self._ns[name], limit)
            parts.append(part.text)
            if part.note is not None:
                notes.append(part.note)
        return "\n\n".join(parts), notes

    def _functions(self, names: list[str]) -> list[Callable[..., Any]]:
        functions = []
        for name in names:
            value = self._ns.get(check_variable_name(name))
            if not callable(value):
                raise HermesError(f"{name!r} is not a function in the notebook: -t takes "
                                  "functions defined in the notebook.")
            functions.append(value)
        return functions

    def _wait(self, task: Task, timeout: float | None) -> TaskResult:
        """The task's result; `HermesError` (one line, the task goes on) when the wait ends
        without one, at the timeout or at a kernel interrupt.

        After `wait_notice_after` seconds it says once that it waits and how to stop.
        """
        quiet = kernel.get_config().wait_notice_after
        later = f"collect it later with %collect_task {task.id}."
        try:
            if task.done() or (timeout is not None and timeout <= quiet):
                return task.collect(timeout)
            try:
                return task.collect(quiet)
            except CollectTimeout:
                status = task.check()
                print(f"Waiting for {status.label} ({status.state.value}, "
                      f"{elapsed(status.elapsed_s)}); interrupt the kernel to stop waiting, "
                      "the task keeps running.", flush=True)
            return task.collect(None if timeout is None else timeout - quiet)
        except CollectTimeout:
            raise HermesError(f"{task.check().label} is still {task.state.value} after "
                              f"{timeout:g}s; it goes on: {later}") from None
        except KeyboardInterrupt:
            raise HermesError(f"stopped waiting for {task.check().label}; it is still "
                              f"{task.state.value}: {later}") from None


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext hermes_jupyter`: register the magics, the settings and tab completion."""
    ip.register_magics(HermesMagics)
    from . import agent_magics, approval_magics, resume_magics

    agent_magics.load(ip)
    approval_magics.load(ip)
    resume_magics.load(ip)
    if keep_question_marks not in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.append(keep_question_marks)
    for name in TASK_MAGICS:
        ip.set_hook("complete_command", complete_task_refs, str_key=f"%{name}")
    kernel.install(ip)
    from . import comm

    comm.register(ip)  # silent until a JupyterLab panel opens the comm


for _magic in (HermesMagics.delegate, HermesMagics.steer_task):
    parser_of(_magic).allow_abbrev = False  # options are scanned by their full names
