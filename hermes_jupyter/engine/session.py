"""`Session`: the engine every face stands on. Owns tasks, the worker loop, keys and events.

Threads: any Session method may be called from any thread. Agent loops and all model I/O run
on one engine loop thread (`EngineLoop`); blocking tools run on a small thread pool; events
reach subscribers on the event bus's thread. The scheduler's queue is touched only on the loop
thread; the task registry is guarded by `_lock`; each task guards its own state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import CollectTimeout, ConfigurationError, HermesError, UnknownTaskError
from ..core.models import Event, ExitReason, TaskResult, TaskState, TaskStatus, Usage
from ..tools import ToolOutcome, ToolRegistry, build_registry
from .backends import make_backend
from .credentials import CredentialPool, redact
from .events import EventBus, Subscriber
from .group import TaskGroup, check_items
from .journal import Journal, JournalRecord
from .loop import EngineLoop
from .pricing import Pricer
from .provider import Completion, Provider, ProviderError, RetryPolicy
from .subagent import DEFAULT_SYSTEM_PROMPT, WRAP_UP, LimitReached, run_agent
from .task import Task, TaskControl

__all__ = ["Session", "TaskRef"]

TaskRef = Task | str
_T = TypeVar("_T")
DEFAULT_JOURNAL = Path(".hermes") / "tasks.sqlite"
_MAP_OPTIONS = frozenset({"model", "tools", "toolsets", "max_iterations", "timeout", "owner",
                          "max_total_tokens", "max_cost_usd"})


class Session:
    """Runs subagents in the background of a kernel or of a plain Python process.

    Model routing: a task's `model=` wins, else `subagent_model`, else `model`. Keys come from
    `api_keys` (list or comma-separated), else HERMES_API_KEYS, else OPENAI_API_KEY; the base
    URL from `base_url`, else OPENAI_BASE_URL, else the openai default. With `cluster` (a
    `distributed.Client`, a cluster or a scheduler address) agent loops and tools run on Dask
    workers while this object keeps the registry (docs/architecture.md).
    """

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
        retry: RetryPolicy | None = None,
        journal: str | os.PathLike[str] | bool | None = None,
        first_id: int = 1,
        prices: Mapping[str, tuple[float, float]] | None = None,
        session_budget_usd: float | None = None,
        cluster: Any = None,
    ) -> None:
        self.model = model or os.environ.get("HERMES_MODEL") or ""
        if not self.model:
            raise ConfigurationError("No model set: pass Session(model=...) or set HERMES_MODEL.")
        self.subagent_model = subagent_model or os.environ.get("HERMES_SUBAGENT_MODEL") or None
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        _check_positive("max_concurrent", max_concurrent)
        _check_positive("max_iterations", max_iterations)
        if task_timeout is not None:
            _check_positive("task_timeout", task_timeout)
        self.max_concurrent = int(max_concurrent)
        self.max_iterations = int(max_iterations)
        self.task_timeout = task_timeout
        self.workspace = Path(workspace or os.getcwd()).resolve()
        self.toolsets = tuple(toolsets or ())
        build_registry(None, self.toolsets, self.workspace)  # fail now on unknown names
        self.system_prompt = system_prompt
        self._pricer = Pricer(prices)
        if session_budget_usd is not None:
            _check_positive("session_budget_usd", session_budget_usd)
        self.session_budget_usd = session_budget_usd
        self._pool = CredentialPool(_resolve_keys(api_keys, self.base_url))
        self._provider = Provider(self._pool, self.base_url, retry)
        self._backend = make_backend(  # where agent loops run: here, or on a Dask cluster
            cluster, self._run, keys=self._pool.secrets, base_url=self.base_url,
            workspace=str(self.workspace), system_prompt=system_prompt, retry=retry,
            prices=prices, max_concurrent=self.max_concurrent)
        self._bus = EventBus()
        self.journal: Journal | None = None
        if journal:
            path = self.workspace / DEFAULT_JOURNAL if journal is True else Path(journal)
            self.journal = Journal(path)
            self.journal.attach(self)
        self._engine = EngineLoop()
        self._tool_threads = ThreadPoolExecutor(
            max_workers=max(4, self.max_concurrent), thread_name_prefix="hermes-tool"
        )
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._by_name: dict[tuple[str | None, str], Task] = {}  # (owner, name) -> newest
        self._ids = itertools.count(first_id)  # a kernel's later sessions go on counting
        self._closed = False
        self._attachments: dict[str, Any] = {}  # per-session helpers of the faces, by key
        self._queue: deque[Task] = deque()  # waiting for a slot, guarded by _lock
        self._running = 0  # slots held, guarded by _lock
        # loop-thread only:
        self._text_flush_scheduled = False
        self._text_pending: dict[str, list[str]] = {}

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
    ) -> Task:
        """Start a subagent on `goal` and return its handle at once (no network I/O here).

        `owner` says who started it: None for the user, an `Agent`'s `owner_id`, or the id of a
        task that delegates (the new task is then its child, one level deeper). Names are
        scoped to their owner: a child named "review" never shadows the user's "review".
        """
        if not isinstance(goal, str) or not goal.strip():
            raise HermesError("The goal is empty: say what the subagent should do.")
        for label, value in (("max_total_tokens", max_total_tokens),
                             ("max_cost_usd", max_cost_usd)):
            if value is not None:
                _check_positive(label, value)
        spent = self._budget_spent()
        if spent:
            raise HermesError(spent)
        if max_iterations is not None:
            _check_positive("max_iterations", max_iterations)
        if timeout is not None:
            _check_positive("timeout", timeout)
        if name is not None and (not name.strip() or name.strip() != name):
            raise HermesError(f"Bad task name {name!r}: use a non-empty name without spaces "
                              "at either end.")
        registry = build_registry(
            tools, self.toolsets if toolsets is None else toolsets, self.workspace
        )
        with self._lock:
            if self._closed:
                raise HermesError("This session is closed: create a new Session.")
            parent = self._tasks.get(owner) if owner is not None else None
            task_id = f"t{next(self._ids)}"
            task = Task(
                self, task_id, name, goal.strip(), str(context or ""),
                model or self.subagent_model or self.model, registry,
                max_iterations or self.max_iterations,
                timeout if timeout is not None else self.task_timeout,
                self._emit, self._on_task_text,
            )
            task.owner = owner
            task.max_total_tokens = max_total_tokens
            task.max_cost_usd = max_cost_usd
            task.parent_id = parent.id if parent is not None else None
            task.depth = parent.depth + 1 if parent is not None else 1
            self._tasks[task_id] = task
            if name:
                self._by_name[(owner, name)] = task
        self._emit("created", task_id, name=name, model=task.model, goal=task.goal,
                   owner=owner, parent=task.parent_id)
        self._emit("queued", task_id)
        self._schedule(task)
        return task

    def map(
        self,
        goal: str,
        items: Iterable[Any],
        *,
        name: str | None = None,
        context: str = "",
        max_concurrent: int | None = None,
        **delegate_options: Any,
    ) -> TaskGroup:
        """Fan out: one task per item, the item put in the goal where it says `{item}` (else
        handed as context). Returns a `TaskGroup` at once. `max_concurrent` caps this group's
        running tasks within the session's cap; `delegate_options` go to every `delegate`
        (model, tools, toolsets, max_iterations, timeout). Task names are `name[0]`, ..."""
        if not isinstance(goal, str) or not goal.strip():
            raise HermesError("The goal is empty: say what each subagent should do with its "
                              "{item}.")
        listed = check_items(items)
        if max_concurrent is not None:
            _check_positive("max_concurrent", max_concurrent)
        unknown = set(delegate_options) - _MAP_OPTIONS
        if unknown:
            raise HermesError(f"map() takes no {sorted(unknown)[0]!r}: pass delegate options "
                              f"({', '.join(sorted(_MAP_OPTIONS))}).")

        def start(item_goal: str, item_context: str, item_name: str | None) -> Task:
            return self.delegate(item_goal, item_context, name=item_name, **delegate_options)

        limit = int(max_concurrent) if max_concurrent is not None else None
        return TaskGroup(name, goal.strip(), listed, str(context or ""), start, limit)

    def check(self, ref: TaskRef) -> TaskStatus:
        """A consistent snapshot: state, counters, recent output, steering, error."""
        return self.task(ref).check()

    def steer(self, ref: TaskRef, message: str) -> None:
        """Queue `message`; the child sees it before its next model call."""
        if not isinstance(message, str) or not message.strip():
            raise HermesError("The steering message is empty: say what the subagent should do.")
        self._backend.steer(self.task(ref).control_for(self), message.strip())

    def collect(self, ref: TaskRef, timeout: float | None = None) -> TaskResult:
        """Wait for the task's result (any terminal state); `CollectTimeout` leaves it running."""
        task = self.task(ref)
        if timeout is not None and timeout < 0:
            raise HermesError(f"Bad timeout {timeout!r}: use a number of seconds ≥ 0.")
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
        if stage == "queued":
            control.settle(ExitReason.CANCELLED)
        else:
            aio = control.aio_task()
            if aio is not None:  # else `_launch` sees the request and settles it
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
        return self._bus.subscribe(callback)

    # ---- lookups and totals ------------------------------------------------------------
    def task(self, ref: TaskRef) -> Task:
        """The task for a handle, an id ("t3") or a name (the newest of the user's tasks of
        that name). Raises `UnknownTaskError`."""
        return self.task_of(None, ref, everyone=True)

    def task_of(self, owner: str | None, ref: TaskRef, *, everyone: bool = False) -> Task:
        """The task `ref` as `owner` sees it: its own tasks, by handle, id or name. With
        `everyone` (the user's view) any task is found by handle or id; names stay scoped to
        `owner`. Raises `UnknownTaskError` for anything else."""
        if isinstance(ref, Task):
            with self._lock:
                mine = self._tasks.get(ref.id) is ref
            if not mine or not (everyone or ref.owner == owner):
                raise UnknownTaskError(ref.id, None)
            return ref
        if not isinstance(ref, str):
            raise HermesError(
                f"Bad task reference {ref!r}: pass a Task, an id like 't1' or a name."
            )
        key = ref.strip()
        with self._lock:
            found = self._tasks.get(key)
            if found is not None and not (everyone or found.owner == owner):
                found = None
            found = found or self._by_name.get((owner, key))
            if found is None:
                known = [t.id for t in self._tasks.values() if everyone or t.owner == owner]
                raise UnknownTaskError(key, known)
            return found

    def descendants(self, ref: TaskRef) -> list[Task]:
        """Every task started, directly or not, by the task `ref`, children first."""
        root = self.task(ref)
        with self._lock:
            tasks = list(self._tasks.values())
        out: list[Task] = []
        frontier = [root.id]
        while frontier:
            children = [t for t in tasks if t.parent_id in frontier]
            out += children
            frontier = [t.id for t in children]
        return out

    def tasks(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in TaskState}
        for task in self.tasks():
            out[task.state.value] += 1
        return out

    def cost(self) -> tuple[float, int]:
        """The known cost of every task in USD, and how many tasks made calls whose cost is
        unknown (no reported cost, no price)."""
        total, unknown = 0.0, 0
        for task in self.tasks():
            usage = task.control_for(self).usage
            if usage.cost_usd is not None:
                total += usage.cost_usd
            elif usage.api_calls:
                unknown += 1
        return total, unknown

    def _budget_spent(self) -> str | None:
        if self.session_budget_usd is None:
            return None
        spent, _ = self.cost()
        if spent < self.session_budget_usd:
            return None
        return (f"The session budget is spent (${spent:.4f} of session_budget_usd="
                f"{self.session_budget_usd:g}): no new task starts; raise the budget or make a "
                "new Session.")

    @property
    def usage(self) -> Usage:
        total = Usage()
        for task in self.tasks():
            total = total + task.control_for(self).usage
        return total

    # ---- engine services for the parent Agent ----------------------------------------
    def submit(self, coro: Coroutine[Any, Any, _T]) -> Future[_T]:
        """Run `coro` on the engine loop (from any thread but that one); its future."""
        if self._closed:
            coro.close()
            raise HermesError("This session is closed: create a new Session.")
        return asyncio.run_coroutine_threadsafe(coro, self._engine.loop)

    async def stream_completion(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: Callable[[str], None],
    ) -> Completion:
        """One streamed model turn through the session's keys, retries and dialects
        (engine loop only)."""
        return await self._provider.complete(
            model, messages, tools, on_text=on_text, on_event=lambda kind, data: None,
            on_request=lambda: None,
        )

    async def run_tool(self, registry: ToolRegistry, name: str, arguments: str) -> ToolOutcome:
        """Run one tool call of `registry` on the session's tool threads (engine loop only)."""
        return await registry.run(name, arguments, self._tool_threads)

    def free_slots(self) -> int:
        """How many more tasks could start now without waiting (0 when some queue)."""
        with self._lock:
            return 0 if self._queue else max(0, self.max_concurrent - self._running)

    @property
    def key_count(self) -> int:
        """How many API keys the pool holds (never the keys themselves)."""
        return len(self._pool.keys)

    def close(self, timeout: float = 2.0) -> None:
        """Cancel what runs and stop the engine threads; returns within about `timeout`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        live = [t for t in self.tasks() if not t.done()]
        for task in live:
            self.cancel(task)
        deadline = time.monotonic() + timeout
        for task in live:
            control = task.control_for(self)
            control.wait(max(0.0, deadline - time.monotonic()))
            control.settle(ExitReason.SESSION_CLOSED)
        if self._engine._loop is not None:
            with contextlib.suppress(Exception):
                self._engine.run(self._provider.aclose(), timeout=1.0)
        self._backend.close()
        self._engine.close()
        self._tool_threads.shutdown(wait=False, cancel_futures=True)
        for attachment in self._attachments.values():
            closer = getattr(attachment, "close", None)
            if callable(closer):
                with contextlib.suppress(Exception):
                    closer()
        self._bus.close()
        if self.journal is not None:
            self.journal.close()

    def history(self, limit: int | None = None) -> list[JournalRecord]:
        """Tasks of earlier sessions kept in the journal, oldest first (needs `journal=`)."""
        if self.journal is None:
            raise ConfigurationError("This session keeps no journal: create it with "
                                     "Session(..., journal=True) to keep tasks across kernels.")
        mine = self.journal.session_id
        past = [r for r in self.journal.records() if r.session != mine]
        return past if limit is None else past[-limit:]

    def attachment(self, key: str, make: Callable[[], _T]) -> _T:
        """The session's one helper under `key` (a refresher, a dashboard), made by `make()`
        on first use; thread-safe. Helpers with a `close()` method are closed with the session."""
        with self._lock:
            found = self._attachments.get(key)
            if found is None:
                found = self._attachments[key] = make()
            return found

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- engine side (loop thread) ---------------------------------------------------
    def _emit(self, kind: str, task_id: str | None, **data: Any) -> None:
        if kind == "finished" and task_id and self._engine.in_loop_thread():
            parts = self._text_pending.pop(task_id, None)  # the last text comes before the end
            if parts:
                self._bus.emit(Event("text", task_id, {"text": "".join(parts)}))
        self._bus.emit(Event(kind, task_id, data))

    def _schedule(self, task: Task) -> None:
        """Give the task a slot now if one is free (it is `running` when delegate returns),
        else queue it FIFO. Any thread; the slot count and queue are guarded by `_lock`."""
        with self._lock:
            if self._running >= self.max_concurrent:
                self._queue.append(task)
                return
            self._running += 1
        if not self._claim(task):
            self._free_slot()

    def _claim(self, task: Task) -> bool:
        """Mark a task that got a slot as running and start it; False if it was cancelled."""
        control = task.control_for(self)
        spent = self._budget_spent()
        if spent:
            control.settle(ExitReason.BUDGET, error=spent)
            return False
        if not control.claim():
            return False
        self._emit("started", task.id)
        self._engine.post(functools.partial(self._launch, task))
        return True

    def _launch(self, task: Task) -> None:
        """Loop thread: create the task's coroutine, unless it was cancelled before this."""
        control = task.control_for(self)
        if control.done() or control.cancel_reason is not None:
            control.settle(ExitReason.CANCELLED)
            self._free_slot()
            return
        aio = self._engine.loop.create_task(self._backend.run(control))
        aio.add_done_callback(functools.partial(self._release, control))
        if not control.bind(aio):  # a cancel came between the check and the bind
            aio.cancel()

    def _release(self, control: TaskControl, _done: asyncio.Future[None]) -> None:
        # A task cancelled before its coroutine ran never entered `_run`: settle it here.
        control.settle(ExitReason.CANCELLED)
        self._free_slot()

    def _free_slot(self) -> None:
        """Hand a freed slot to the oldest queued task still waiting (FIFO), or give it up."""
        while True:
            with self._lock:
                if not self._queue:
                    self._running -= 1
                    return
                nxt = self._queue.popleft()
            if self._claim(nxt):
                return

    async def _run(self, control: TaskControl) -> None:
        task = control.task
        loop = asyncio.get_running_loop()
        timers = []
        if task.timeout is not None:
            timers = [loop.call_later(task.timeout, self._time_out, control),
                      loop.call_later(_warn_at(task.timeout), _warn_to_wrap_up, control)]
        transcript: list[dict[str, Any]] = []
        try:
            end = await run_agent(control, self._provider, self._tool_threads,
                                  self.system_prompt, transcript, self._pricer)
            control.settle(end.reason, summary=end.summary, transcript=transcript,
                           truncated=end.truncated)
        except asyncio.CancelledError:
            partial = control.partial_answer()  # what was written is kept, marked truncated
            if control.cancel_reason == "timeout":
                control.settle(
                    ExitReason.TIMEOUT, transcript=transcript, summary=partial,
                    truncated=bool(partial),
                    error=f"stopped after its {task.timeout:g}s timeout; raise timeout= or "
                          "narrow the goal",
                )
            else:
                control.settle(ExitReason.CANCELLED, transcript=transcript, summary=partial,
                               truncated=bool(partial))
        except LimitReached as err:
            control.settle(err.reason, error=str(err), transcript=transcript,
                           summary=err.partial, truncated=bool(err.partial))
        except (ProviderError, HermesError) as err:
            control.settle(ExitReason.PROVIDER_ERROR if isinstance(err, ProviderError)
                           else ExitReason.ERROR, error=str(err), transcript=transcript)
        except Exception as err:  # a bug of ours or of a library: keep it as a result
            message = redact(f"{type(err).__name__}: {err}", self._pool.secrets)
            control.settle(ExitReason.ERROR, error=message[:500], transcript=transcript)
        finally:
            for timer in timers:
                timer.cancel()

    def _time_out(self, control: TaskControl) -> None:
        if control.request_cancel("timeout") is not None:
            aio = control.aio_task()
            if aio is not None:
                aio.cancel()

    def _on_task_text(self, task_id: str, text: str) -> None:
        """Streamed text reaches subscribers as events coalesced over 100 ms (loop thread)."""
        if not self._bus.has_subscribers:
            return
        self._text_pending.setdefault(task_id, []).append(text)
        if not self._text_flush_scheduled:
            self._text_flush_scheduled = True
            self._engine.loop.call_later(0.1, self._flush_text)

    def _flush_text(self) -> None:
        self._text_flush_scheduled = False
        pending, self._text_pending = self._text_pending, {}
        for task_id, parts in pending.items():
            self._bus.emit(Event("text", task_id, {"text": "".join(parts)}))


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"Bad {name} {value!r}: use a positive number.")


def _resolve_keys(api_keys: Iterable[str] | str | None, base_url: str | None) -> list[str]:
    if api_keys is None:
        api_keys = os.environ.get("HERMES_API_KEYS") or os.environ.get("OPENAI_API_KEY") or ""
    if isinstance(api_keys, str):
        api_keys = api_keys.split(",")
    keys = [k.strip() for k in api_keys if k and k.strip()]
    if not keys and base_url:
        keys = ["no-key-needed"]  # local servers (Ollama, vLLM, llama.cpp) accept any key
    if not keys:
        raise ConfigurationError(
            "No API key: pass api_keys=[...] or set OPENAI_API_KEY (or HERMES_API_KEYS for a "
            "pool); for a local server set base_url."
        )
    return list(dict.fromkeys(keys))


def _warn_at(timeout: float) -> float:
    """When to ask a task to wrap up: 30 s before its timeout, or at 80% of a short one."""
    return max(timeout - 30.0, timeout * 0.8)


def _warn_to_wrap_up(control: TaskControl) -> None:
    """Engine loop: a visible steer asking the child to finish before its timeout."""
    with contextlib.suppress(HermesError):
        control.accept_steer(WRAP_UP)
