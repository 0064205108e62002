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
from .loop import EngineLoop
from .pricing import Pricer
from .provider import DEFAULT_COOLDOWN_CAP, DEFAULT_STALL_TIMEOUT, Provider, RetryPolicy
from .runner import run_task
from .structured import OutputSpec, jsonable
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
    output_type: OutputSpec | None = None  # typed output (pickles as the user's schema)
    prior: tuple[dict[str, Any], ...] = ()  # the conversation to go on from (resumed, retried)


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

    def __init__(self, task: Task, secrets: Secrets) -> None:
        super().__init__(task, self._record_event, lambda _id, _text: None, secrets)
        self._ops: list[Op] = []
        self._ops_lock = threading.Lock()
        self.conversation.listener = lambda start, kept: self._log(("messages", start, kept))

    def drain(self) -> list[Op]:
        with self._ops_lock:
            ops, self._ops = self._ops, []
        return ops

    def _log(self, op: Op) -> None:
        with self._ops_lock:
            last = self._ops[-1] if self._ops else None
            if last is not None and op[0] in _MERGED and last[0] == op[0]:
                self._ops[-1] = (op[0], last[1] + op[1])
            elif (last is not None and op[0] == last[0] == "messages"
                  and last[1] <= op[1] <= last[1] + len(last[2])):  # steps of one drain: one op
                self._ops[-1] = ("messages", last[1], last[2][:op[1] - last[1]] + op[2])
            else:
                self._ops.append(op)

    def _record_event(self, kind: str, _task_id: str | None, **data: Any) -> None:
        if kind not in _QUIET:
            self._log(("event", kind, data))

    def accept_forwarded(self, message: str) -> None:
        """A steer the kernel forwards (the kernel records it itself)."""
        super().accept_steer(message)

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
               transcript: list[dict[str, Any]] | None = None, truncated: bool = False,
               data: Any = None) -> bool:
        settled = super().settle(exit_reason, summary=summary, error=error,
                                 transcript=transcript, truncated=truncated, data=data)
        if settled:  # typed output goes back as JSON; the kernel revives it as its own class
            self._log(("end", exit_reason, summary, error, transcript, truncated,
                       jsonable(data)))
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

    def configure(self, keys: list[str]) -> dict[str, Any]:
        """Take the session's keys (held in this process's memory only) and report what this
        worker can do: whether the workspace exists here, and its process id."""
        self._secrets = Secrets(keys)
        self._provider = Provider(CredentialPool(list(keys)), self._config.base_url,
                                  self._config.retry, stall_timeout=self._config.stall_timeout,
                                  cooldown_cap=self._config.cooldown_cap)
        return {"workspace": os.path.isdir(self._config.workspace), "pid": os.getpid()}

    def start(self, blob: bytes) -> str | None:
        """Start one task: `blob` is a cloudpickled `TaskSpec` (its tool functions by value).
        Returns why it cannot run here (one line), or None once it is started."""
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
        task.output_type = spec.output_type
        task.prior_messages = list(spec.prior) or None
        control = RemoteControl(task, self._secrets)
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

    def close(self) -> None:
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


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
