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

import asyncio
import contextlib
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cloudpickle

from ..core.errors import HermesError
from ..core.models import ExitReason, ToolTraceEntry, Usage
from ..tools import ToolRegistry
from .credentials import CredentialPool, redact
from .loop import EngineLoop
from .pricing import Pricer
from .provider import Provider, ProviderError, RetryPolicy
from .subagent import WRAP_UP, LimitReached, run_agent
from .task import Task, TaskControl

__all__ = ["EngineConfig", "RemoteControl", "TaskSpec", "WorkerEngine"]

Op = tuple[Any, ...]
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


class _NoHost:
    """A worker-side task has no session: its operations come from the kernel."""

    def steer(self, ref: Task, message: str) -> None:
        raise HermesError("steer worker-side tasks through the kernel's session")

    def collect(self, ref: Task, timeout: float | None = None) -> Any:
        raise HermesError("collect worker-side tasks through the kernel's session")

    def cancel(self, ref: Task) -> bool:
        raise HermesError("cancel worker-side tasks through the kernel's session")


class RemoteControl(TaskControl):
    """A task's control on the worker: its own state for the loop, plus an op log of every
    change for the kernel (consecutive text pieces merged into one op)."""

    def __init__(self, task: Task) -> None:
        super().__init__(task, self._record_event, lambda _id, _text: None)
        self._ops: list[Op] = []
        self._ops_lock = threading.Lock()

    def drain(self) -> list[Op]:
        with self._ops_lock:
            ops, self._ops = self._ops, []
        return ops

    def _log(self, op: Op) -> None:
        with self._ops_lock:
            if op[0] == "text" and self._ops and self._ops[-1][0] == "text":
                self._ops[-1] = ("text", self._ops[-1][1] + op[1])
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

    def add_usage(self, prompt: int, completion: int, cost_usd: float | None = None) -> Usage:
        usage = super().add_usage(prompt, completion, cost_usd)
        self._log(("usage", prompt, completion, cost_usd))
        return usage

    def count_request(self) -> None:
        super().count_request()
        self._log(("request",))

    def record_tool(self, entry: ToolTraceEntry) -> None:
        super().record_tool(entry)
        self._log(("tool", entry))

    def settle(self, exit_reason: ExitReason, *, summary: str = "", error: str | None = None,
               transcript: list[dict[str, Any]] | None = None, truncated: bool = False) -> bool:
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
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self._controls: dict[str, RemoteControl] = {}
        self._cancelled_early: set[str] = set()  # a cancel that overtook its task's start

    def configure(self, keys: list[str]) -> dict[str, Any]:
        """Take the session's keys (held in this process's memory only) and report what this
        worker can do: whether the workspace exists here, and its process id."""
        self._secrets = list(keys)
        self._provider = Provider(CredentialPool(self._secrets), self._config.base_url,
                                  self._config.retry)
        return {"workspace": os.path.isdir(self._config.workspace), "pid": os.getpid()}

    def start(self, blob: bytes) -> None:
        """Start one task: `blob` is a cloudpickled `TaskSpec` (its tool functions by value)."""
        spec: TaskSpec = cloudpickle.loads(blob)
        task = Task(_NoHost(), spec.id, spec.name, spec.goal, spec.context, spec.model,
                    spec.tools, spec.max_iterations, spec.timeout,
                    lambda *a, **k: None, lambda _id, _text: None)
        task.max_total_tokens = spec.max_total_tokens
        task.max_cost_usd = spec.max_cost_usd
        control = RemoteControl(task)
        control.claim()
        for message in spec.steers:
            control.accept_forwarded(message)
        with self._lock:
            self._controls[spec.id] = control
            if spec.id in self._cancelled_early:
                self._cancelled_early.discard(spec.id)
                control.request_cancel()
        self._engine.post(lambda: self._launch(control))

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
        self._secrets = []

    def _control(self, task_id: str) -> RemoteControl | None:
        with self._lock:
            return self._controls.get(task_id)

    def _launch(self, control: RemoteControl) -> None:
        aio = self._engine.loop.create_task(self._run(control))
        aio.add_done_callback(lambda _f: control.settle(ExitReason.CANCELLED))
        if not control.bind(aio):
            aio.cancel()

    async def _run(self, control: RemoteControl) -> None:
        """The worker's twin of `Session._run`: run the loop and settle as the kernel would."""
        task = control.task
        loop = asyncio.get_running_loop()
        timers = []
        if task.timeout is not None:
            timers = [loop.call_later(task.timeout, self._time_out, control),
                      loop.call_later(max(task.timeout - 30.0, task.timeout * 0.8),
                                      _wrap_up, control)]
        transcript: list[dict[str, Any]] = []
        try:
            if self._provider is None:
                raise HermesError("this worker got no keys: the session did not configure it")
            end = await run_agent(control, self._provider, self._threads,
                                  self._config.system_prompt, transcript, self._pricer)
            control.settle(end.reason, summary=end.summary, transcript=transcript,
                           truncated=end.truncated)
        except asyncio.CancelledError:
            partial = control.partial_answer()
            if control.cancel_reason == "timeout":
                control.settle(ExitReason.TIMEOUT, transcript=transcript, summary=partial,
                               truncated=bool(partial),
                               error=f"stopped after its {task.timeout:g}s timeout; raise "
                                     "timeout= or narrow the goal")
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
            message = redact(f"{type(err).__name__}: {err}", self._secrets)
            control.settle(ExitReason.ERROR, error=message[:500], transcript=transcript)
        finally:
            for timer in timers:
                timer.cancel()

    def _time_out(self, control: RemoteControl) -> None:
        if control.request_cancel("timeout") is not None:
            aio = control.aio_task()
            if aio is not None:
                aio.cancel()


def _wrap_up(control: RemoteControl) -> None:
    with contextlib.suppress(HermesError):
        control.accept_steer(WRAP_UP)
