"""`DaskBackend`: each task's agent loop and tools run on a Dask worker; the kernel keeps the
registry.

One `WorkerEngine` actor per worker (made when the session starts) holds that worker's tasks.
The kernel talks to each actor over a direct connection to its worker (`actor_execute` on the
client's connection pool), never through the scheduler: keys, goals and tool code never sit in
the scheduler's task graph. One pump coroutine on the engine loop drains every busy worker at
most 10 times a second and replays the ops on the kernel's `TaskControl`s, so a streamed answer
costs the kernel a few messages a second, not one per token. The session's slot count still
decides when a task starts: this backend only runs what the session has started.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from ..core.errors import ConfigurationError, HermesError, TaskFinishedError
from ..core.models import ExitReason, PendingApproval
from ..core.text import plural, short
from ..tools import TOOLSETS, build_registry
from ..tools.approval import check_pattern
from .dask_attach import engines_dataset, owner_of, replay, tasks_dataset
from .dask_link import Engine as _Engine
from .dask_link import WorkerLink
from .dask_worker import ENGINE_OPS, EngineConfig, Op, TaskSpec, WorkerEngine
from .provider import DEFAULT_COOLDOWN_CAP, DEFAULT_STALL_TIMEOUT
from .task import TaskControl

if TYPE_CHECKING:
    from .provider import RetryPolicy

__all__ = ["TICK_S", "DaskBackend"]

TICK_S = 0.1  # the drain period: ≤ 10 batches a second reach the kernel
DRAIN_TIMEOUT_S = 10.0  # a worker that does not answer a drain this long is lost
CANCEL_WAIT_S = 1.0  # how long a cancelled task waits for its worker's own end



@dataclass
class _Remote:
    control: TaskControl
    engine: _Engine
    done: asyncio.Future[None]
    ready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    retried: bool = False  # moved once to another worker after its own was lost
    moving: asyncio.Task[None] | None = None  # that move, while it starts there


class DaskBackend(WorkerLink):
    """Runs tasks on the workers of `cluster` (a `distributed.Client`, a cluster object such
    as `LocalCluster`, or a scheduler address). Raises `ConfigurationError` when distributed is
    not installed or the cluster has no worker."""

    def __init__(self, cluster: Any, *, keys: list[str], base_url: str | None, workspace: str,
                 system_prompt: str, retry: RetryPolicy | None,
                 prices: Mapping[str, tuple[float, float]] | None, max_concurrent: int,
                 stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
                 cooldown_cap: float = DEFAULT_COOLDOWN_CAP, keep: bool = False,
                 detach_timeout: float | None = None, mcp_key: str | None = None) -> None:
        try:
            from distributed import Client
        except ImportError as err:
            raise ConfigurationError("cluster= needs Dask: pip install 'hermes_jupyter[dask]'."
                                     ) from err
        self._owns_client = not isinstance(cluster, Client)
        try:
            self.client: Any = (Client(cluster)  # type: ignore[no-untyped-call]
                                if self._owns_client else cluster)
        except (OSError, ValueError, TypeError) as err:
            raise ConfigurationError(
                f"Cannot use cluster={cluster!r} ({type(err).__name__}): pass a "
                "distributed.Client, a cluster object or a reachable scheduler address "
                "like 'tcp://host:8786'.") from err
        self.workspace = workspace
        self._toolset_tools = set(build_registry(None, TOOLSETS, workspace).names)
        self._lock = threading.Lock()
        self._live: dict[str, _Remote] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # drain now, not at the next tick (loop only)
        self.batches = 0  # drains that brought ops to the kernel (for tests and benches)
        config = EngineConfig(base_url, workspace, system_prompt, retry,
                              dict(prices) if prices else None, max(4, max_concurrent),
                              stall_timeout, cooldown_cap, mcp_key)
        workers = list(self.client.scheduler_info()["workers"])
        if not workers:
            raise ConfigurationError("The Dask cluster has no worker: start one (or scale the "
                                     "cluster) before Session(cluster=...).")
        token = self.token = uuid.uuid4().hex[:8]
        self.scheduler = str(self.client.scheduler.address)  # type: ignore[union-attr]
        self.keep = keep  # tasks outlive the kernel (dask_attach.py)
        self.detached = False  # detach(): stop talking to the engines, cancel nothing
        self.adopted: list[_Engine] = []  # engines of earlier kernels' sessions taken over
        self._datasets: list[str] = []  # what close() unpublishes
        self._actors = [
            self.client.submit(WorkerEngine, config, actor=True, workers=[address],
                               allow_other_workers=False, pure=False,
                               key=f"hermes-engine-{token}-{i}")
            for i, address in enumerate(workers)
        ]
        self.engines: list[_Engine] = []
        for i, (address, future) in enumerate(zip(workers, self._actors, strict=True)):
            future.result(timeout=60)
            key = str(future.key)
            keeping = (tasks_dataset(token, i), detach_timeout) if keep else None
            try:
                info = self._call_sync(address, key, "configure", keys, keeping)
            except OSError as err:
                self.close()
                raise ConfigurationError(
                    f"Cannot reach Dask worker {address} from here ({type(err).__name__}): "
                    "cluster= needs direct connections to the workers.") from err
            self.engines.append(_Engine(address, key, info["workspace"], info["pid"], future,
                                        index=i))
        if keep:  # published futures stay wanted once this client is gone (dask_attach.py)
            self._publish(engines_dataset(token), {"actors": self._actors, "workers": workers})

    @property
    def owner(self) -> str:
        """The journal owner of this session's tasks: the cluster, not this process."""
        return owner_of(self.scheduler, self.token)

    # ---- the Backend interface ------------------------------------------------------
    async def run(self, control: TaskControl) -> None:
        """The task's coroutine on the kernel's engine loop: start it on the least busy
        worker, wait for its end (replayed by the pump), forward a cancel."""
        task = control.task
        alive = [e for e in self.engines if not e.lost]
        if not alive:
            control.settle(ExitReason.ERROR, error="every Dask worker of this session was "
                                                   "lost; start a new Session(cluster=...)")
            return
        engine = min(alive, key=lambda e: e.running)
        remote = _Remote(control, engine, asyncio.get_running_loop().create_future())
        with self._lock:
            self._live[task.id] = remote
            steering = control.snapshot().steering
        queued = tuple(s.message for s in steering if s.delivered_at is None)
        try:
            blob = cloudpickle.dumps(_spec(control, queued,
                                           bool(set(task.tools.names) & self._toolset_tools)))
        except Exception as err:  # a tool holding a lock, a socket, an open file...
            with self._lock:
                self._live.pop(task.id, None)
            control.settle(ExitReason.ERROR, error=(
                f"A tool of this task cannot be sent to a Dask worker ({type(err).__name__}: "
                f"{short(str(err), 120)}): pass functions that create what they need."))
            return
        engine.running += 1
        try:
            refused = await self._call(engine, "start", blob)
            if refused:  # checked there and then: e.g. the workspace is not mounted there
                control.settle(ExitReason.ERROR, error=refused)
                return
            self._forward_early_steers(remote, len(steering))
            await self._await_end(remote)
        except asyncio.CancelledError:
            await self._cancel_remote(remote)
        except Exception as err:  # the worker or the connection failed
            if remote.retried:  # lost while it started there, and moved: follow the retry
                await self._follow(remote)
                return
            control.settle(ExitReason.ERROR, error=(
                f"the Dask worker {engine.address} failed to run it ({type(err).__name__}: "
                f"{short(str(err), 200)}); delegate it again"))
        finally:
            remote.engine.running -= 1  # a retried task runs on another engine by now
            with self._lock:
                self._live.pop(task.id, None)

    async def _await_end(self, remote: _Remote) -> None:
        self._ensure_pump()
        await asyncio.shield(remote.done)

    async def follow(self, control: TaskControl, index: int) -> None:
        """The coroutine of a task taken over from an earlier kernel (`adopt`), on adopted
        engine `index`: replay what its engine sends until it ends; forward a cancel."""
        engine = self.adopted[index]
        remote = _Remote(control, engine, asyncio.get_running_loop().create_future(), True)
        with self._lock:
            self._live[control.task.id] = remote
        engine.running += 1
        try:
            await self._await_end(remote)
        except asyncio.CancelledError:
            await self._cancel_remote(remote)
        finally:
            remote.engine.running -= 1
            with self._lock:
                self._live.pop(control.task.id, None)

    def steer(self, control: TaskControl, message: str) -> None:
        """Queue on the worker first (it tells whether the task still takes steers), then in
        the kernel's record; a task not yet on its worker gets it when it starts there."""
        with self._lock:  # atomic with `run` registering the task and reading its steers
            remote = self._live.get(control.task.id)
            if remote is None:
                control.accept_steer(message)
                return
        with remote.lock:
            if not remote.ready:
                control.accept_steer(message)
                return
            refused = self._call_sync(remote.engine.address, remote.engine.key, "steer",
                                      control.task.id, message)
            if refused:
                raise TaskFinishedError(f"{refused} Steering needs a live task: delegate a new "
                                        "one instead.")
            control.accept_steer(message)

    def decide(self, control: TaskControl, call_id: str | None, approved: bool, reason: str,
               remember: str | None) -> PendingApproval | None:
        """A decision on a call waiting on the task's worker: sent there (the worker's desk
        runs or refuses it), then shown here at once. `remember` reaches every engine of the
        session. None when the task does not run on a worker (it has ended or not started)."""
        with self._lock:
            remote = self._live.get(control.task.id)
        if remote is None or not remote.ready:
            return None
        engine = remote.engine
        if remember is not None:
            remember = check_pattern(remember)
        answer = self._call_sync(engine.address, engine.key, "decide", control.task.id,
                                 call_id, approved, reason, remember)
        if isinstance(answer, str):
            raise HermesError(answer)
        control.resolve_approval(answer.call_id)  # the worker's own ops say so again later
        if remember is not None:
            for other in [*self.engines, *self.adopted]:
                if other is not engine and not other.lost:
                    with contextlib.suppress(Exception):
                        self._call_sync(other.address, other.key, "remember", remember)
        return answer  # type: ignore[no-any-return]

    def detach(self) -> None:
        """Leave the tasks running on the cluster on purpose (their engines' detach clocks
        start now) and let go of this kernel's side."""
        self.detached = True
        for engine in [*self.engines, *self.adopted]:
            with contextlib.suppress(Exception):
                self._call_sync(engine.address, engine.key, "detach", timeout=3.0)
        self._let_go()

    def close(self) -> None:
        for engine in [*self.engines, *self.adopted]:
            with contextlib.suppress(Exception):
                self._call_sync(engine.address, engine.key, "close", timeout=3.0)
        for name in self._datasets:
            with contextlib.suppress(Exception):
                self.client.unpublish_dataset(name)
        self._let_go()

    def _let_go(self) -> None:
        for future in self._actors:
            with contextlib.suppress(Exception):
                future.release()
        if self._owns_client:
            with contextlib.suppress(Exception):
                self.client.close()

    def _forward_early_steers(self, remote: _Remote, sent: int) -> None:
        """Steers accepted while the task was starting (after the first `sent`, which went
        with it): send them, then steer directly."""
        control = remote.control
        with remote.lock:
            for message in [s.message for s in control.snapshot().steering[sent:]]:
                self._call_sync(remote.engine.address, remote.engine.key, "steer",
                                control.task.id, message)
            remote.ready = True

    async def _cancel_remote(self, remote: _Remote) -> None:
        control = remote.control
        if self.detached:  # the session let go of it: it goes on on its worker
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._call(remote.engine, "cancel", control.task.id,
                                              control.cancel_reason or "cancelled"),
                                   CANCEL_WAIT_S)
        if self._wake is not None:  # the worker has settled it: fetch its end now
            self._wake.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(remote.done), CANCEL_WAIT_S)
        partial = control.partial_answer()
        control.settle(ExitReason.CANCELLED, summary=partial, truncated=bool(partial))

    def _ensure_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._wake = asyncio.Event()
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        """Drain every worker that runs a task, TICK_S apart (sooner after a cancel), while
        any task is live. One drain at a time: ops reach the kernel in the worker's order."""
        wake = self._wake
        assert wake is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), TICK_S)  # the coalescing period
            wake.clear()
            with self._lock:
                engines = {id(r.engine): r.engine for r in self._live.values()}
            if not engines or self.detached:
                return
            found = await asyncio.gather(*(self._drain(e) for e in engines.values()),
                                         return_exceptions=True)
            for engine, batch in zip(engines.values(), found, strict=True):
                if isinstance(batch, BaseException):
                    self._lose(engine, batch)
                    continue
                if batch:
                    self.batches += 1
                for task_id, ops in batch:
                    if task_id == ENGINE_OPS:  # before the ops of the tasks that saw them
                        await self._share(engine, ops)
                    else:
                        self._apply(task_id, ops)

    async def _share(self, source: _Engine, ops: list[Op]) -> None:
        """Relay the cooldowns one engine saw to the session's other engines (by key index),
        and wait (≤ 2 s) until they have them: a 429 on one worker stops the others using
        that key until it is over."""
        others = [e for e in [*self.engines, *self.adopted] if e is not source and not e.lost]
        calls = [self._call(e, "cool", index, seconds)
                 for _kind, index, seconds in ops for e in others]
        if calls:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 2.0)

    async def _drain(self, engine: _Engine) -> list[tuple[str, list[Op]]]:
        if engine.actor.status != "finished":
            raise ConnectionError(f"its actor is {engine.actor.status}")
        batch: list[tuple[str, list[Op]]] = await asyncio.wait_for(
            self._call(engine, "drain"), DRAIN_TIMEOUT_S)
        return batch

    def _apply(self, task_id: str, ops: list[Op]) -> None:
        with self._lock:
            remote = self._live.get(task_id)
        if remote is None:
            return
        with remote.lock:
            for op in ops:
                replay(remote.control, op)
                if op[0] == "end" and not remote.done.done():
                    remote.done.set_result(None)

    def _lose(self, engine: _Engine, err: BaseException) -> None:
        """A worker stopped answering: each of its tasks goes on once on another worker, from
        the conversation the kernel kept (so no tool call that returned runs again); lost a
        second time, or with no worker left, it ends with one line."""
        engine.lost = True
        with self._lock:
            lost = [r for r in self._live.values() if r.engine is engine]
        why = f"the Dask worker {engine.address} running it was lost ({type(err).__name__})"
        for remote in lost:
            spare = [e for e in self.engines if not e.lost]
            if remote.retried or not spare:
                done = ", after one retry on another worker" if remote.retried else ""
                self._end(remote, f"{why}{done}; delegate it again")
                continue
            target = min(spare, key=lambda e: e.running)
            with remote.lock:  # from now on the pump drains, and steers go to, the target
                remote.retried, remote.engine, remote.ready = True, target, False
                engine.running -= 1
                target.running += 1
            remote.moving = asyncio.get_running_loop().create_task(
                self._retry(remote, engine, why))

    async def _retry(self, remote: _Remote, lost: _Engine, why: str) -> None:
        """Start a task of a lost worker again on `remote.engine` from its last conversation;
        the lost worker is asked to drop it, in case it was only slow to answer."""
        control, target = remote.control, remote.engine
        # none yet (it died before its first reply): what it was resumed from, if anything
        conversation = (control.conversation.messages()
                        or list(control.task.prior_messages or ()))
        control.set_activity("retrying", f"↻ {why}: retrying once on {target.address} from "
                             f"its last conversation ({plural(len(conversation), 'message')})")
        control.emit("retried", lost=lost.address, worker=target.address,
                     messages=len(conversation))
        with self._lock:
            steering = control.snapshot().steering
        queued = tuple(s.message for s in steering if s.delivered_at is None)
        needs = bool(set(control.task.tools.names) & self._toolset_tools)
        dropping = asyncio.ensure_future(self._drop(lost, control.task.id))
        try:
            blob = cloudpickle.dumps(_spec(control, queued, needs, tuple(conversation)))
            refused = await self._call(target, "start", blob)
        except Exception as err:  # the other worker failed too
            refused = (f"{why}, and its retry on {target.address} failed "
                       f"({type(err).__name__}: {short(str(err), 120)}); delegate it again")
        if refused:
            self._end(remote, refused)
        else:
            self._forward_early_steers(remote, len(steering))
        await dropping

    async def _follow(self, remote: _Remote) -> None:
        try:
            await asyncio.shield(remote.done)
        except asyncio.CancelledError:
            await self._cancel_remote(remote)

    async def _drop(self, engine: _Engine, task_id: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._call(engine, "cancel", task_id, "moved"), CANCEL_WAIT_S)

    @staticmethod
    def _end(remote: _Remote, error: str) -> None:
        remote.control.settle(ExitReason.ERROR, error=error)
        if not remote.done.done():
            remote.done.set_result(None)

def _spec(control: TaskControl, steers: tuple[str, ...], needs_workspace: bool,
          prior: tuple[dict[str, Any], ...] | None = None) -> TaskSpec:
    """The task as its worker runs it; `prior`: the conversation to go on from (default:
    the one it was resumed from, if any)."""
    task = control.task
    return TaskSpec(task.id, task.name, task.goal, task.context, task.model, task.tools,
                    task.max_iterations, task.timeout, task.max_total_tokens,
                    task.max_cost_usd, steers, task.approval, needs_workspace,
                    task.output_type,
                    tuple(task.prior_messages or ()) if prior is None else prior)
