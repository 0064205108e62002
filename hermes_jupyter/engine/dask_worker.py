"""The worker side of a session run on a Dask cluster: one `WorkerEngine` actor per worker.

The actor holds many tasks. Its agent loops run on its own `EngineLoop` thread (never the
worker's IO loop, whose heartbeats must stay on time), its blocking tools on its own threads.
Each task's `RemoteControl` keeps the task's state on the worker (what the loop checks) and
logs every change as an op; the kernel drains the ops (at most 10 times a second) and replays
them on its own `TaskControl` through the same public methods, so the kernel's registry is
the one every face reads. Keys arrive once per actor through `configure`, never as task
arguments (see docs/architecture.md, "Running on a Dask cluster").
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..core.errors import HermesError
from ..core.models import ExitReason, ToolTraceEntry, Usage
from ..core.secrets import Secrets
from ..tools import ToolRegistry
from ..tools.approval import ApprovalPolicy
from .approvals import Approvals, TaskClock
from .credentials import CredentialPool
from .dask_keeper import DETACHED, Keeper, Records
from .loop import EngineLoop
from .pricing import Pricer
from .provider import DEFAULT_COOLDOWN_CAP, DEFAULT_STALL_TIMEOUT, Provider, RetryPolicy
from .runner import run_task
from .task import Task, TaskControl

__all__ = ["EngineConfig", "RemoteControl", "TaskSpec", "WorkerApprovals", "WorkerEngine"]

Op = tuple[Any, ...]
_MERGED = frozenset({"text", "reasoning", "hidden"})  # streamed pieces: one op per run
_QUIET = frozenset({"steer_queued", "steer_delivered", "finished"})  # the kernel emits these


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


class _NoHost:
    """A worker-side task has no session: its operations come from the kernel."""

    def steer(self, ref: Task, message: str) -> None:
        raise HermesError("steer worker-side tasks through the kernel's session")

    def collect(self, ref: Task, timeout: float | None = None) -> Any:
        raise HermesError("collect worker-side tasks through the kernel's session")

    def cancel(self, ref: Task) -> bool:
        raise HermesError("cancel worker-side tasks through the kernel's session")

    def approve(self, ref: Task, call_id: str | None = None, *, remember: str | None = None
                ) -> Any:
        raise HermesError("a task on a Dask worker has no approval desk (see WorkerApprovals)")

    def deny(self, ref: Task, call_id: str | None = None, reason: str = "") -> Any:
        raise HermesError("a task on a Dask worker has no approval desk (see WorkerApprovals)")


class WorkerApprovals(Approvals):
    """A worker has no approval desk (no one can answer there): a call that needs a
    person's approval runs only when the task's policy or allowlist lets it, else the model
    reads why it did not run. It never waits."""

    async def review(self, control: TaskControl, calls: list[dict[str, Any]],
                     clock: TaskClock | None) -> dict[str, str]:
        refused: dict[str, str] = {}
        for call in calls:
            fn = call.get("function") or call  # the wire format: {"id", "function": {...}}
            name = str(fn["name"])
            text = self.screen(control.task.tools, name, str(fn["arguments"]),
                               control.task.approval)
            if text is not None and "parent agent" in text:  # "ask": no one to ask here
                text = (f"Error: this call needs a person's approval, and a task on a Dask "
                        f"worker cannot wait for one, so {name} was not run. Do without it, "
                        "or ask the user to allow it (approval_allowlist) or run it locally.")
            if text is not None:
                refused[call["id"]] = text
            control.emit("approval_decided", call_id=call["id"], tool=name,
                         approved=text is None, by="policy", reason="on a Dask worker")
        return refused


class RemoteControl(TaskControl):
    """A task's control on the worker: its own state for the loop, plus an op log of every
    change for the kernel (consecutive text pieces merged into one op)."""

    def __init__(self, task: Task, secrets: Secrets, facts: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(task, self._record_event, lambda _id, _text: None, secrets)
        self.facts = facts or {}  # what a kernel that re-attaches rebuilds the task from
        self._ops: list[Op] = []  # since the kernel's last drain
        self._history: list[Op] = []  # every op since the start (text runs as lists)
        self._ops_lock = threading.Lock()
        self.changed = False  # since the keeper last copied it to the scheduler

    def drain(self) -> list[Op]:
        with self._ops_lock:
            ops, self._ops = self._ops, []
        return ops

    def history(self, attach: bool = False) -> list[Op]:
        """Every op since the start, in order; with `attach` (a kernel takes the task over)
        the ops not yet drained are dropped, since the history holds them."""
        with self._ops_lock:
            if attach:
                self._ops = []
            self.changed = False
            return [(op[0], "".join(op[1])) if op[0] in _MERGED else op
                    for op in self._history]

    def _log(self, op: Op, kernel: bool = True) -> None:
        with self._ops_lock:
            self.changed = True
            if kernel:
                if op[0] in _MERGED and self._ops and self._ops[-1][0] == op[0]:
                    self._ops[-1] = (op[0], self._ops[-1][1] + op[1])
                else:
                    self._ops.append(op)
            if op[0] in _MERGED and self._history and self._history[-1][0] == op[0]:
                self._history[-1][1].append(op[1])
            elif op[0] in _MERGED:
                self._history.append((op[0], [op[1]]))
            else:
                self._history.append(op)

    def _record_event(self, kind: str, _task_id: str | None, **data: Any) -> None:
        if kind not in _QUIET:
            self._log(("event", kind, data))

    def accept_forwarded(self, message: str) -> None:
        """A steer the kernel forwards (the kernel records it itself; a kernel that
        re-attaches reads it in the history)."""
        super().accept_steer(message)
        self._log(("steer", message), kernel=False)

    def accept_steer(self, message: str) -> None:  # the worker's own, e.g. the wrap-up
        super().accept_steer(message)
        self._log(("steer", message))

    def take_steers(self, limit: int | None = None) -> list[str]:
        messages = super().take_steers(limit)
        if messages:
            self._log(("steers", len(messages)))
        return messages

    def try_finish(self) -> bool:
        finished = super().try_finish()
        if finished:
            self._log(("finish",))
        return finished

    def set_activity(self, activity: str, line: str | None = None) -> None:
        super().set_activity(activity, line)
        self._log(("activity", activity, line))

    def on_text(self, text: str) -> None:
        super().on_text(text)
        self._log(("text", text))

    def on_reasoning(self, text: str) -> None:
        super().on_reasoning(text)
        self._log(("reasoning", text))

    def note_answer(self, text: str) -> None:
        super().note_answer(text)
        self._log(("hidden", text))

    def add_usage(self, prompt: int, completion: int, cost_usd: float | None = None,
                  estimated: bool = False) -> Usage:
        usage = super().add_usage(prompt, completion, cost_usd, estimated)
        self._log(("usage", prompt, completion, cost_usd, estimated))
        return usage

    def count_request(self) -> None:
        super().count_request()
        self._log(("request",))

    def record_tool(self, entry: ToolTraceEntry) -> None:
        super().record_tool(entry)
        self._log(("tool", entry))

    def settle(self, exit_reason: ExitReason, *, summary: str = "", error: str | None = None,
               transcript: list[dict[str, Any]] | None = None, truncated: bool = False) -> bool:
        if (exit_reason is ExitReason.CANCELLED and error is None
                and self.cancel_reason == DETACHED):
            error = ("no kernel re-attached to it within detach_timeout; it was cancelled on "
                     "its Dask worker")
        settled = super().settle(exit_reason, summary=summary, error=error,
                                 transcript=transcript, truncated=truncated)
        if settled:
            self._log(("end", exit_reason, summary, error, transcript, truncated))
        return settled


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
        self._approvals = WorkerApprovals()
        self._lock = threading.Lock()
        self._controls: dict[str, RemoteControl] = {}
        self._cancelled_early: set[str] = set()  # a cancel that overtook its task's start
        self._keeper: Keeper | None = None

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
        self._provider = Provider(CredentialPool(list(keys)), self._config.base_url,
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
        task = Task(_NoHost(), spec.id, spec.name, spec.goal, spec.context, spec.model,
                    spec.tools, spec.max_iterations, spec.timeout,
                    lambda *a, **k: None, lambda _id, _text: None, self._secrets)
        task.max_total_tokens = spec.max_total_tokens
        task.max_cost_usd = spec.max_cost_usd
        task.approval = spec.approval
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
        """Every held task as (facts, history), when one changed since the last copy."""
        with self._lock:
            controls = list(self._controls.items())
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
        calls that need a person's approval are screened by `WorkerApprovals`."""
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
            "max_cost_usd": spec.max_cost_usd, "approval": spec.approval}


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
