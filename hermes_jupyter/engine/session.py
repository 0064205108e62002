"""`Session`: the engine every face stands on. Owns tasks, the worker loop, keys and events.

Threads: any Session method may be called from any thread. Agent loops and all model I/O run
on one engine loop thread (`EngineLoop`); blocking tools on a small thread pool; events reach
subscribers on the event bus's thread. The registry and the slots are guarded by `_lock`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..core import validate as check
from ..core.errors import CollectTimeout, ConfigurationError, HermesError, UnknownTaskError
from ..core.models import ExitReason, TaskResult, TaskState, TaskStatus, Usage
from ..tools import McpServerInfo, McpServers, ProcessPolicy, build_registry
from .approvals import Approvals
from .approving import Approving
from .arguments import delegate_args, session_args, task_limits
from .backends import check_cluster, make_backend
from .credentials import CredentialPool, resolve_keys
from .events import EventBus, Subscriber, TextBatcher
from .group import GroupBook, TaskGroup, fan_out
from .journal import Journal, JournalRecord, history_of
from .launching import Launching
from .loop import EngineLoop
from .pricing import Pricer, Spend, budget_spent, check_prices, total_cost
from .provider import (
    DEFAULT_COOLDOWN_CAP,
    DEFAULT_STALL_TIMEOUT,
    Provider,
    ProviderSetting,
    RetryPolicy,
)
from .reattaching import Reattaching
from .resuming import Resuming
from .retention import Retention, check_forget
from .scheduling import Slots
from .services import Attachments, EngineServices
from .structured import output_spec
from .subagent import DEFAULT_SYSTEM_PROMPT
from .task import Task, descendants_of, named_elsewhere

__all__ = ["Session", "TaskRef"]

TaskRef = Task | str
_T = TypeVar("_T")
DEFAULT_JOURNAL = Path(".hermes") / "tasks.sqlite"
DEFAULT_DETACH_TIMEOUT = 3600.0


class Session(Launching, Approving, Resuming, Reattaching):
    """Runs subagents in the background of a kernel or of a plain Python process.

    Model routing: a task's `model=` wins, else `subagent_model`, else `model`. Keys: `api_keys`
    (a list or comma-separated), else HERMES_API_KEYS, else OPENAI_API_KEY; the base URL:
    `base_url`, else OPENAI_BASE_URL. Every parameter: docs/configuration.md; a bad one raises
    `InvalidArgument`/`InvalidArgumentType` and changes nothing. With `cluster` (a
    `distributed.Client`, a cluster or a scheduler address) agent loops and tools run on Dask
    workers while this object keeps the registry (docs/architecture.md); with a journal too,
    they outlive the kernel (`detach`, `detach_timeout` seconds: reattaching.py).
    """

    stall_timeout = ProviderSetting(allow_none=True)
    cooldown_cap = ProviderSetting()

    def __init__(
        self,
        model: str | None = None,
        subagent_model: str | None = None,
        base_url: str | None = None,
        api_keys: Iterable[str] | str | None = None,
        max_concurrent: int = 8,
        max_iterations: int = 30,
        task_timeout: float | None = None,
        workspace: str | os.PathLike[str] | None = None,
        *,
        toolsets: Iterable[str] | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        approval: str = "ask",
        approval_allowlist: Iterable[str] = (),
        approval_timeout: float | None = None,
        approve_file_writes: bool = False,
        retry: RetryPolicy | None = None,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        cooldown_cap: float = DEFAULT_COOLDOWN_CAP,
        journal: str | os.PathLike[str] | bool | None = None,
        first_id: int = 1,
        keep_finished: int | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        session_budget_usd: float | None = None,
        tool_env_allowlist: Iterable[str] = (), tool_memory_limit_mb: int | None = None,
        mcp_servers: Mapping[str, Any] | None = None,
        tool_timeout: float | None = None,
        cluster: Any = None,
        detach_timeout: float | None = DEFAULT_DETACH_TIMEOUT,
    ) -> None:
        args = session_args(model, subagent_model, base_url, api_keys, max_concurrent,
                            max_iterations, task_timeout, workspace, toolsets, system_prompt,
                            retry, journal, first_id, keep_finished)
        cluster = check_cluster(cluster)
        detach_timeout = check.optional(check.seconds, "detach_timeout", detach_timeout,
                                        none_means="never cancel unattended tasks")
        self.model = args.model or os.environ.get("HERMES_MODEL") or ""
        if not self.model:
            raise ConfigurationError("No model set: pass Session(model=...) or set HERMES_MODEL.")
        self.subagent_model = args.subagent_model or os.environ.get("HERMES_SUBAGENT_MODEL") or None
        self.base_url = args.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.max_concurrent = args.max_concurrent
        self.max_iterations = args.max_iterations
        self.task_timeout = args.task_timeout
        self.workspace = (args.workspace or Path(os.getcwd())).resolve()
        self.toolsets = args.toolsets
        self.system_prompt = system_prompt
        self.set_approval(approval, approval_allowlist, approval_timeout, approve_file_writes)
        self._approvals = Approvals()
        self._pricer = Pricer(check_prices({} if prices is None else prices))
        self._spend = Spend()  # the known cost of every call so far (the session budget)
        self.tool_timeout = check.optional(check.seconds, "tool_timeout", tool_timeout,
                                           none_means="no limit")
        self.session_budget_usd = check.optional(check.amount, "session_budget_usd",
                                                 session_budget_usd)
        self._pool = CredentialPool(resolve_keys(args.api_keys, self.base_url))
        self._processes = ProcessPolicy.checked(self._pool.secrets, self.base_url,
                                                tool_env_allowlist, tool_memory_limit_mb)
        self.secrets = self._processes.secrets  # what every kept or sent string is redacted of
        self._mcp = McpServers(mcp_servers, self.secrets, self.workspace)  # secrets join it
        build_registry(None, self.toolsets, self.workspace, self._processes, self._mcp)
        self._provider = Provider(self._pool, self.base_url, retry)
        self.stall_timeout, self.cooldown_cap = stall_timeout, cooldown_cap  # checked there
        self._backend = make_backend(  # where agent loops run: here, or on a Dask cluster
            cluster, self._run, keys=self._pool.secrets, base_url=self.base_url,
            workspace=str(self.workspace), system_prompt=system_prompt, retry=retry,
            prices=prices, max_concurrent=self.max_concurrent,
            stall_timeout=self.stall_timeout, cooldown_cap=self.cooldown_cap,
            keep=bool(args.journal), detach_timeout=detach_timeout, mcp_key=self._mcp.key)
        self._bus = EventBus(self.secrets.redact_data)
        self.journal: Journal | None = None
        if args.journal:
            path = self.workspace / DEFAULT_JOURNAL if args.journal is True else args.journal
            self.journal = Journal(path, getattr(self._backend, "owner", None))
        self._engine = EngineLoop()
        self._tool_threads = ThreadPoolExecutor(max(4, self.max_concurrent), "hermes-tool")
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._by_name: dict[tuple[str | None, str], Task] = {}  # (owner, name) -> newest
        # The number in the next task's id (guarded by _lock); a kernel's later sessions go on
        # counting from it, and forgotten tasks' ids are never reused.
        self.next_id = args.first_id
        self._retention = Retention(self._tasks, self._by_name, self._lock, args.keep_finished)
        self._closed = False
        self.attachments = Attachments()  # per-session helpers of the faces, by key
        self.attachments.get("tool processes", lambda: self._processes.groups)
        self._slots = Slots(self.max_concurrent, self._lock, self._claim)
        self.services = EngineServices(self._engine, self._provider, self._tool_threads,
                                       lambda: self._closed, self._processes,
                                       lambda r, n, a: self._approvals.screen(
                                           r, n, a, self.approval_policy))
        # loop-thread only:
        self._text = TextBatcher(self._bus, lambda: self._engine.loop)
        self._reattach()  # an earlier kernel's tasks on this cluster, when the journal has some

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n) or "no tasks"
        return f"<Session model={self.model!r} keys={len(self._pool.keys)}: {counts}>"

    # ---- the six operations ------------------------------------------------------------
    def delegate(
        self,
        goal: str,
        context: str = "",
        *,
        name: str | None = None,
        model: str | None = None,
        tools: Iterable[Callable[..., Any]] | None = None,
        toolsets: Iterable[str] | None = None,
        max_iterations: int | None = None,
        timeout: float | None = None,
        owner: str | None = None,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
        tool_timeout: float | None = None,
        approval: str | None = None,
        approval_allowlist: Iterable[str] | None = None,
        approval_timeout: float | None = None,
        output_type: Any = None,
        group_id: str | None = None,
    ) -> Task:
        """Start a subagent on `goal` and return its handle at once (no network I/O here).

        `owner` says who started it: None for the user, an `Agent`'s `owner_id`, or the id of a
        task that delegates (the new task is then its child, one level deeper). Names are
        scoped to their owner: a child named "review" never shadows the user's "review".
        `approval`, `approval_allowlist`, `approval_timeout` override the session's policy.
        `max_total_tokens` / `max_cost_usd` (USD) are the task's budgets; `tool_timeout`
        (seconds) bounds each tool call (default: the session's). `output_type` (a pydantic
        model class, a dataclass, a TypedDict or a JSON-schema dict) makes the final answer
        typed: `result.data` holds it validated, `result.summary` its JSON text; an answer
        that stays invalid after one correction ends `failed` (`invalid_output`). `group_id`
        is set by `map` (the fan-out group the task belongs to). Once it returns, the task is
        in the journal (when kept).
        """
        a = delegate_args(goal, context, name, model, tools, toolsets, max_iterations, timeout)
        o = task_limits(owner, max_total_tokens, max_cost_usd, tool_timeout, output_type,
                        group_id)
        if spent := self._budget_spent():
            raise HermesError(spent)
        policy = self.approval_policy.replace(approval, approval_allowlist, approval_timeout)
        registry = build_registry(a.tools, self.toolsets if a.toolsets is None else a.toolsets,
                                  self.workspace, self._processes, self._mcp,
                                  self.approve_file_writes)
        with self._lock:
            if self._closed:
                raise HermesError("This session is closed: create a new Session.")
            parent = self._tasks.get(o.owner) if o.owner is not None else None
            task_id = f"t{self.next_id}"
            self.next_id += 1
            task = Task(
                self, task_id, a.name, a.goal, a.context,
                a.model or self.subagent_model or self.model, registry,
                a.max_iterations or self.max_iterations,
                a.timeout if a.timeout is not None else self.task_timeout,
                self._emit, self._text.add, self.secrets,
            )
            task.owner, task.group_id, task.output_type = o.owner, o.group_id, o.output_type
            task.max_total_tokens, task.max_cost_usd = o.max_total_tokens, o.max_cost_usd
            task.tool_timeout = self.tool_timeout if o.tool_timeout is None else o.tool_timeout
            task.approval = policy
            task.parent_id = parent.id if parent is not None else None
            task.depth = parent.depth + 1 if parent is not None else 1
            resumed, self._resuming = self._resuming, None  # set by `resume`, under _lock
            if resumed is not None:
                task.resumed_from, task.prior_messages = resumed.key, resumed.messages
            control = task.control_for(self)
            control.on_settle = self._on_settle
            control.on_cost = self._spend.add
            if self.journal is not None:  # its conversation, at each completed step
                control.conversation.listener = functools.partial(self.journal.kept, task)
            self._tasks[task_id] = task
            if a.name:
                self._by_name[(o.owner, a.name)] = task
        if self.journal is not None:  # durable before delegate returns
            self.journal.created(task)
        self._emit("created", task_id, name=a.name, model=task.model, goal=task.goal,
                   owner=o.owner, parent=task.parent_id, resumed_from=task.resumed_from)
        self._emit("queued", task_id)
        self._slots.schedule(task)
        return task

    def map(
        self,
        goal: str,
        items: Iterable[Any],
        *,
        output_type: Any = None,
        name: str | None = None,
        context: str = "",
        max_concurrent: int | None = None,
        **delegate_options: Any,
    ) -> TaskGroup:
        """Fan out: one task per item (a DataFrame's rows as dicts), put in the goal where it
        says `{item}` (else handed as context); returns a `TaskGroup` at once. `output_type`:
        as for `delegate`. `max_concurrent` caps this group's running tasks within the
        session's; `delegate_options` go to every `delegate`. Names: `name[0]`, ..."""
        if output_type is not None:  # checked once, before any task starts
            delegate_options = {**delegate_options, "output_type": output_spec(output_type)}
        return fan_out(self.delegate, goal, items, name, context, max_concurrent,
                       delegate_options, self.attachment("groups", lambda: GroupBook(self)))

    def check(self, ref: TaskRef) -> TaskStatus:
        """A consistent snapshot: state, counters, recent output, steering, error."""
        return self.task(ref).check()

    def steer(self, ref: TaskRef, message: str) -> None:
        """Queue `message`; the child sees it before its next model call."""
        check.text("steering message", message, what="what the subagent should do")
        self._backend.steer(self.task(ref).control_for(self), message.strip())

    def collect(self, ref: TaskRef, timeout: float | None = None) -> TaskResult:
        """Wait for the task's result (any terminal state); `CollectTimeout` leaves it running."""
        task = self.task(ref)
        check.optional(check.seconds, "timeout", timeout, allow_zero=True,
                       none_means="no limit")
        if self._engine.in_loop_thread() and not task.done():
            raise HermesError("collect() cannot wait on the engine thread: await the task "
                              "from a normal thread.")
        if not task.control_for(self).wait(timeout):
            raise CollectTimeout(
                f"Task {task.id} is still running after {timeout:g}s; it goes on: collect it "
                "again later or cancel it."
            )
        assert task.result is not None
        return task.result


    def cancel(self, ref: TaskRef) -> bool:
        """Stop the task within a second; False when it had ended or was already stopping."""
        task = self.task(ref)
        for child in self.descendants(task):  # cancelling a task cancels its descendants
            self._cancel_one(child)
        return self._cancel_one(task)

    def _cancel_one(self, task: Task) -> bool:
        control = task.control_for(self)
        stage = control.request_cancel()
        if stage is None:
            return False
        aio = control.aio_task()
        if stage == "queued":
            control.settle(ExitReason.CANCELLED)
        elif aio is not None:  # else `_launch` sees the request and settles it
            self._engine.loop.call_soon_threadsafe(aio.cancel)
        return True

    def cancel_all(self) -> int:
        """Cancel every live task; returns how many were newly asked to stop."""
        return sum(self.cancel(t) for t in self.tasks() if not t.done())

    def list_tasks(self) -> list[TaskStatus]:
        """Snapshots of every task, in creation order."""
        return [t.check() for t in self.tasks()]

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive every later `Event` on the event thread; returns the unsubscribe function."""
        return self._bus.subscribe(check.a_callable("callback", callback,
                                                    "a function taking one Event"))

    # ---- lookups and totals ------------------------------------------------------------
    def task(self, ref: TaskRef) -> Task:
        """The task for a handle, an id ("t3") or a name (the newest of the user's tasks of
        that name). Raises `UnknownTaskError`."""
        return self.task_of(None, ref, everyone=True)

    def task_of(self, owner: str | None, ref: TaskRef, *, everyone: bool = False) -> Task:
        """The task `ref` as `owner` sees it: its own tasks, by handle, id or name. With
        `everyone` (the user's view) any task is found by handle or id; names stay scoped to
        `owner`. Raises `UnknownTaskError` for anything else."""
        owner = check.optional(check.text, "owner", owner, what="an owner id, or None")
        everyone = check.a_bool("everyone", everyone)
        if isinstance(ref, Task):
            try:
                ref.control_for(self)  # a forgotten task's handle still works
            except PermissionError:
                raise UnknownTaskError(ref.id, None) from None
            if not (everyone or ref.owner == owner):
                raise UnknownTaskError(ref.id, None)
            return ref
        key = check.text("ref", ref, what="a Task, an id like 't1' or a task's name").strip()
        with self._lock:
            found = self._tasks.get(key)
            if found is not None and not (everyone or found.owner == owner):
                found = None
            found = found or self._by_name.get((owner, key))
            if found is None:
                known = [t.id for t in self._tasks.values() if everyone or t.owner == owner]
                raise UnknownTaskError(key, known, named_elsewhere(self._tasks.values(), key)
                                       if everyone else "")
            return found

    def descendants(self, ref: TaskRef) -> list[Task]:
        """Every task started, directly or not, by the task `ref`, children first."""
        return descendants_of(self.task(ref), self.tasks())

    def forget(self, *tasks: TaskRef, finished: bool = False) -> int:
        """Let go of ended tasks: the ones given, or with `finished=True` every ended one.
        Their handles keep working, ids and names no longer find them, the journal keeps them.
        Returns how many were let go. A live task is refused: cancel or collect it first."""
        check_forget(tasks, finished)
        chosen = [self.task(t) for t in tasks] if tasks else self.tasks()
        return self._retention.forget(chosen, strict=bool(tasks))

    def tasks(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    @property
    def keep_finished(self) -> int | None:
        """How many ended tasks are held in memory (None: all, until `forget`)."""
        return self._retention.keep

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in TaskState}
        for task in self.tasks():
            out[task.state.value] += 1
        return out

    def cost(self) -> tuple[float, int]:
        """The known cost of every task in USD, and how many tasks made calls whose cost is
        unknown (no reported cost, no price)."""
        return total_cost(task.control_for(self).usage for task in self.tasks())

    def _budget_spent(self) -> str | None:
        return budget_spent(self._spend.total, self.session_budget_usd)

    @property
    def usage(self) -> Usage:
        """Tokens, calls and known cost of every task, summed."""
        return sum((task.control_for(self).usage for task in self.tasks()), Usage())

    def free_slots(self) -> int:
        """How many more tasks could start now without waiting (0 when some queue)."""
        return self._slots.free()

    @property
    def key_count(self) -> int:
        """How many API keys the pool holds (never the keys themselves)."""
        return len(self._pool.keys)

    def mcp_status(self, *, connect: bool = False, timeout: float = 60.0) -> list[McpServerInfo]:
        """The MCP servers, their state and tool names (never env or header values);
        `connect=True` first starts those not running (waiting up to `timeout` s)."""
        return self.services.mcp_status(self._mcp, connect, timeout, self._closed)

    def history(self, limit: int | None = None) -> list[JournalRecord]:
        """Tasks of earlier sessions kept in the journal, oldest first (needs `journal=`)."""
        return history_of(self.journal, check.optional(check.count, "limit", limit))

    def attachment(self, key: str, make: Callable[[], _T]) -> _T:
        """The session's one helper under `key` (a refresher, a dashboard), made by `make()`
        on first use; thread-safe. Helpers with a `close()` method are closed with the session."""
        check.text("key", key, what="a key naming the helper")
        check.a_callable("make", make, "a function making the helper")
        return self.attachments.get(key, make)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
