"""The worker side of a session run on a Dask cluster: one `WorkerEngine` actor per worker.

The actor holds many tasks. Its agent loops run on its own `EngineLoop` thread (never the
worker's IO loop, whose heartbeats must stay on time), its blocking tools on its own threads.
Each task's `RemoteControl` keeps the task's state on the worker (what the loop checks) and
logs every change as an op; the kernel drains the ops (at most 10 times a second) and replays
them on its own `TaskControl` through the same public methods, so the kernel's registry is
the one every face reads. Keys arrive once per actor through `configure`, never as task
arguments (see docs/architecture.md, "Running on a Dask cluster"). The per-task pieces
(`RemoteControl`, `SharedPool`) are in dask_remote.py; the keeper of tasks
that outlive the kernel in dask_keeper.py.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..core.errors import HermesError
from ..core.models import ExitReason, PendingApproval
from ..core.secrets import Secrets
from ..tools import ToolRegistry
from ..tools.approval import ApprovalPolicy
from ..tools.mcp import release_shared
from .approvals import Approvals
from .dask_keeper import Keeper, Records
from .dask_remote import ENGINE_OPS, NoHost, Op, RemoteControl, SharedPool
from .loop import EngineLoop
from .pricing import Pricer
from .provider import DEFAULT_COOLDOWN_CAP, DEFAULT_STALL_TIMEOUT, Provider, RetryPolicy
from .runner import run_task
from .structured import OutputSpec
from .task import Task

__all__ = ["ENGINE_OPS", "EngineConfig", "Op", "TaskSpec", "WorkerEngine"]



@dataclass(frozen=True)
class EngineConfig:
    """What every task of one session shares on a worker; no secret in it (it goes through
    the scheduler as the actor's argument)."""

    base_url: str | None
    workspace: str
    system_prompt: str
    retry: RetryPolicy | None
    prices: Mapping[str, tuple[float, float]] | None
    threads: int
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    cooldown_cap: float = DEFAULT_COOLDOWN_CAP
    mcp_key: str | None = None  # the session's MCP servers, started here on first use


@dataclass(frozen=True)
class TaskSpec:
    """One task as the worker runs it; `tools` is the task's `ToolRegistry` (by value)."""

    id: str
    name: str | None
    goal: str
    context: str
    model: str
    tools: ToolRegistry
    max_iterations: int
    timeout: float | None
    max_total_tokens: int | None
    max_cost_usd: float | None
    steers: tuple[str, ...] = ()  # queued in the kernel before the task reached its worker
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)  # as the kernel set it
    needs_workspace: bool = False  # it has a tool of the files/python/shell toolsets
    output_type: OutputSpec | None = None  # typed output (pickles as the user's schema)
    prior: tuple[dict[str, Any], ...] = ()  # the conversation to go on from (resumed, retried)


class WorkerEngine:
    """A Dask actor: the engine of one session on one worker. Methods are called from the
    kernel over a direct connection to the worker (see `DaskBackend`)."""

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._engine = EngineLoop("hermes-worker-engine")
        self._threads = ThreadPoolExecutor(max_workers=config.threads,
                                           thread_name_prefix="hermes-worker-tool")
        self._pricer = Pricer(config.prices)
        self._provider: Provider | None = None
        self._secrets = Secrets()
        self._approvals = Approvals()  # decisions come from the kernel (`decide`)
        self._lock = threading.Lock()
        self._controls: dict[str, RemoteControl] = {}
        self._cancelled_early: set[str] = set()  # a cancel that overtook its task's start
        self._keeper: Keeper | None = None
        self._pool: SharedPool | None = None

    def configure(self, keys: list[str], keep: tuple[str, float | None] | None = None
                  ) -> dict[str, Any]:
        """Take the session's keys (held in this process's memory only) and report what this
        worker can do: whether the workspace exists here, and its process id. With `keep`
        (the scheduler dataset's name, detach_timeout in seconds) the tasks outlive the
        kernel (see `Keeper`)."""
        self._secrets = Secrets(keys)
        if keep is not None and self._keeper is None:
            self._keeper = Keeper(keep[0], keep[1], self._records, self._live, self.cancel,
                                  lambda: self._secrets)
        self._pool = SharedPool(list(keys))
        self._provider = Provider(self._pool, self._config.base_url,
                                  self._config.retry, stall_timeout=self._config.stall_timeout,
                                  cooldown_cap=self._config.cooldown_cap)
        return {"workspace": os.path.isdir(self._config.workspace), "pid": os.getpid()}

    def start(self, blob: bytes) -> str | None:
        """Start one task: `blob` is a cloudpickled `TaskSpec` (its tool functions by value).
        Returns why it cannot run here (one line), or None once it is started."""
        self._contact()
        spec: TaskSpec = cloudpickle.loads(blob)
        if spec.needs_workspace and not os.path.isdir(self._config.workspace):
            return (f"The workspace {self._config.workspace} is not on worker "
                    f"{_worker_address()}: mount it at the same path there, or delegate "
                    "without the files/python/shell toolsets.")
        task = Task(NoHost(), spec.id, spec.name, spec.goal, spec.context, spec.model,
                    spec.tools, spec.max_iterations, spec.timeout,
                    lambda *a, **k: None, lambda _id, _text: None, self._secrets)
        task.max_total_tokens = spec.max_total_tokens
        task.max_cost_usd = spec.max_cost_usd
        task.approval = spec.approval
        task.output_type = spec.output_type
        task.prior_messages = list(spec.prior) or None
        control = RemoteControl(task, self._secrets, _facts(spec))
        control.claim()
        for message in spec.steers:
            control.accept_forwarded(message)
        with self._lock:
            self._controls[spec.id] = control
            if spec.id in self._cancelled_early:
                self._cancelled_early.discard(spec.id)
                control.request_cancel()
        self._engine.post(lambda: self._launch(control))
        return None

    def steer(self, task_id: str, message: str) -> str | None:
        """Queue a steer; the reason as text when the task no longer takes one."""
        self._contact()
        control = self._control(task_id)
        if control is None:
            return f"Task {task_id} has already ended on its worker."
        try:
            control.accept_forwarded(message)
        except HermesError as err:
            return str(err)
        return None

    def cancel(self, task_id: str, reason: str = "cancelled") -> bool:
        """Stop the task and wait (≤ 0.5 s) until it has settled; its end comes back
        through `drain`."""
        with self._lock:
            control = self._controls.get(task_id)
            if control is None:
                self._cancelled_early.add(task_id)
                return False
        if control.request_cancel(reason) is None:
            return False
        aio = control.aio_task()
        if aio is not None:
            self._engine.loop.call_soon_threadsafe(aio.cancel)
        control.wait(0.5)
        return True

    def drain(self) -> list[tuple[str, list[Op]]]:
        """Every task's ops since the last drain; ended tasks are forgotten once drained."""
        self._contact()
        with self._lock:
            controls = list(self._controls.items())
        out = []
        cooled = self._pool.take_cooled() if self._pool is not None else []
        if cooled:  # first: the kernel shares them before it applies the tasks' ops
            out.append((ENGINE_OPS, cooled))
        for task_id, control in controls:
            ops = control.drain()
            if ops:
                out.append((task_id, ops))
            if control.done() and not ops:
                with self._lock:
                    self._controls.pop(task_id, None)
        return out

    def attach(self) -> list[tuple[dict[str, Any], list[Op]]]:
        """A kernel takes this engine's tasks over (after its own kernel stopped or
        detached): every task's facts and whole op history; later drains give what follows.
        The scheduler's copy is dropped: this kernel journals from here on."""
        if self._keeper is not None:
            self._keeper.attach()
        with self._lock:
            controls = list(self._controls.values())
        return [(c.facts, c.history(attach=True)) for c in controls]

    def decide(self, task_id: str, call_id: str | None, approved: bool, reason: str = "",
               remember: str | None = None) -> PendingApproval | str:
        """The kernel's decision on a call waiting here (None: the task's oldest); the call
        decided, or why there is none (one line)."""
        self._contact()
        control = self._control(task_id)
        if control is None:
            return f"Task {task_id} has already ended on its worker."
        try:
            return self._approvals.decide(control, call_id, approved, reason, remember)
        except HermesError as err:
            return str(err)

    def remember(self, pattern: str) -> int:
        """A pattern approved for the rest of the session on another worker: here too."""
        return self._approvals.remember(pattern)

    def cool(self, index: int, seconds: float) -> None:
        """A 429 on key `index` seen by another worker of the session: cool it here too."""
        if self._pool is not None:
            self._pool.cool_from_peer(index, seconds)

    def attended(self) -> tuple[bool, float, int]:
        """Whether a kernel is attached (it called within `UNATTENDED_AFTER` seconds and did
        not detach), how long ago it called (seconds), and how many calls it made."""
        if self._keeper is None:
            return True, 0.0, 0
        return not self._keeper.unattended(), self._keeper.idle(), self._keeper.contacts

    def detach(self) -> int:
        """The kernel leaves its tasks running here on purpose: the detach clock starts now
        and their state is copied to the scheduler now. Returns how many are live."""
        if self._keeper is not None:
            self._keeper.detach()
        return len(self._live())

    def close(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
            self._keeper.forget()
        for _task_id, control in list(self._controls.items()):
            self.cancel(_task_id, "closed")
            control.wait(1.0)
        mcp = release_shared(self._config.mcp_key) if self._config.mcp_key else None
        if mcp is not None:  # the servers this session's tasks started on this worker
            with contextlib.suppress(Exception):
                self._engine.run(mcp.aclose(), timeout=6.0)
        if self._provider is not None:
            with contextlib.suppress(Exception):
                self._engine.run(self._provider.aclose(), timeout=1.0)
        self._engine.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._secrets = Secrets()

    def _control(self, task_id: str) -> RemoteControl | None:
        with self._lock:
            return self._controls.get(task_id)

    def _contact(self) -> None:
        if self._keeper is not None:
            self._keeper.contact()

    def _live(self) -> list[str]:
        with self._lock:
            return [i for i, c in self._controls.items() if not c.done()]

    def _records(self, everything: bool) -> Records | None:
        """Every task a kernel has not taken the end of, as (facts, history), when one changed
        since the last copy (or always, with `everything`)."""
        with self._lock:
            controls = [(i, c) for i, c in self._controls.items() if not c.delivered]
        if not everything and not any(c.changed for _i, c in controls):
            return None
        return {task_id: (c.facts, c.history()) for task_id, c in controls}

    def _launch(self, control: RemoteControl) -> None:
        aio = self._engine.loop.create_task(self._run(control))
        aio.add_done_callback(lambda _f: control.settle(ExitReason.CANCELLED))
        if not control.bind(aio):
            aio.cancel()

    async def _run(self, control: RemoteControl) -> None:
        """The kernel's `run_task` (the same loop, timeout and ends), on this worker; tool
        calls that need a person's approval wait here for the kernel's `decide`."""
        if self._provider is None:
            control.settle(ExitReason.ERROR,
                           error="this worker got no keys: the session did not configure it")
            return
        await run_task(control, self._provider, self._threads, self._config.system_prompt,
                       self._pricer, self._secrets.redact, self._approvals)


def _facts(spec: TaskSpec) -> dict[str, Any]:
    """The task's facts a re-attaching kernel rebuilds its handle from (no tools: they may
    hold the session's secrets, and they stay on the worker)."""
    return {"id": spec.id, "name": spec.name, "goal": spec.goal, "context": spec.context,
            "model": spec.model, "max_iterations": spec.max_iterations,
            "timeout": spec.timeout, "max_total_tokens": spec.max_total_tokens,
            "max_cost_usd": spec.max_cost_usd, "approval": spec.approval,
            "started_at": time.time()}


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
