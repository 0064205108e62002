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
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from ..core.errors import ConfigurationError, HermesError, TaskFinishedError
from ..core.models import ExitReason
from ..core.text import plural, short
from ..tools import TOOLSETS, build_registry
from .dask_worker import EngineConfig, Op, TaskSpec, WorkerEngine
from .provider import DEFAULT_COOLDOWN_CAP, DEFAULT_STALL_TIMEOUT
from .task import TaskControl

if TYPE_CHECKING:
    from .provider import RetryPolicy

__all__ = ["TICK_S", "DaskBackend"]

TICK_S = 0.1  # the drain period: ≤ 10 batches a second reach the kernel
DRAIN_TIMEOUT_S = 10.0  # a worker that does not answer a drain this long is lost
CANCEL_WAIT_S = 1.0  # how long a cancelled task waits for its worker's own end


@dataclass
class _Engine:
    address: str
    key: str
    workspace: bool
    pid: int
    actor: Any  # the actor's future: its status turns from "finished" when the worker goes
    running: int = 0
    lost: bool = False


@dataclass
class _Remote:
    control: TaskControl
    engine: _Engine
    done: asyncio.Future[None]
    ready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    retried: bool = False  # moved once to another worker after its own was lost
    moving: asyncio.Task[None] | None = None  # that move, while it starts there


class DaskBackend:
    """Runs tasks on the workers of `cluster` (a `distributed.Client`, a cluster object such
    as `LocalCluster`, or a scheduler address). Raises `ConfigurationError` when distributed is
    not installed or the cluster has no worker."""

    def __init__(self, cluster: Any, *, keys: list[str], base_url: str | None, workspace: str,
                 system_prompt: str, retry: RetryPolicy | None,
                 prices: Mapping[str, tuple[float, float]] | None, max_concurrent: int,
                 stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
                 cooldown_cap: float = DEFAULT_COOLDOWN_CAP) -> None:
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
                              stall_timeout, cooldown_cap)
        workers = list(self.client.scheduler_info()["workers"])
        if not workers:
            raise ConfigurationError("The Dask cluster has no worker: start one (or scale the "
                                     "cluster) before Session(cluster=...).")
        token = uuid.uuid4().hex[:8]
        self._actors = [
            self.client.submit(WorkerEngine, config, actor=True, workers=[address],
                               allow_other_workers=False, pure=False,
                               key=f"hermes-engine-{token}-{i}")
            for i, address in enumerate(workers)
        ]
        self.engines: list[_Engine] = []
        for address, future in zip(workers, self._actors, strict=True):
            future.result(timeout=60)
            key = str(future.key)
            try:
                info = self._call_sync(address, key, "configure", keys)
            except OSError as err:
                self.close()
                raise ConfigurationError(
                    f"Cannot reach Dask worker {address} from here ({type(err).__name__}): "
                    "cluster= needs direct connections to the workers.") from err
            self.engines.append(_Engine(address, key, info["workspace"], info["pid"], future))

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
            self._ensure_pump()
            await asyncio.shield(remote.done)
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

    def close(self) -> None:
        for engine in self.engines:
            with contextlib.suppress(Exception):
                self._call_sync(engine.address, engine.key, "close", timeout=3.0)
        for future in self._actors:
            with contextlib.suppress(Exception):
                future.release()
        if self._owns_client:
            with contextlib.suppress(Exception):
                self.client.close()

    # ---- the kernel's side of the conversation ---------------------------------------
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
            if not engines:
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
                    self._apply(task_id, ops)

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
                _replay(remote.control, op)
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

    def _call(self, engine: _Engine, function: str, *args: Any) -> asyncio.Future[Any]:
        """Call an actor method from the engine loop; awaitable there."""
        return asyncio.wrap_future(self._submit(engine.address, engine.key, function, *args))

    def _call_sync(self, address: str, key: str, function: str, *args: Any,
                   timeout: float = 10.0) -> Any:
        return self._submit(address, key, function, *args).result(timeout)

    def _submit(self, address: str, key: str, function: str, *args: Any) -> Future[Any]:
        """`actor_execute` straight on the worker (the client's own connection pool), so the
        arguments never pass through the scheduler."""
        from distributed.protocol.serialize import to_serialize

        async def call() -> Any:
            reply = await self.client.rpc(address).actor_execute(
                actor=key, function=function, args=[to_serialize(a) for a in args],  # type: ignore[no-untyped-call]
                kwargs={})
            if reply["status"] != "OK":
                raise HermesError(f"worker {address}: {reply.get('exception')!r}")
            return reply["result"]

        return asyncio.run_coroutine_threadsafe(call(), self.client.loop.asyncio_loop)


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


def _replay(control: TaskControl, op: Op) -> None:
    """Apply one worker op to the kernel's control through its public methods."""
    kind = op[0]
    if kind == "text":
        control.on_text(op[1])
    elif kind == "reasoning":
        control.on_reasoning(op[1])
    elif kind == "hidden":
        control.note_answer(op[1])
    elif kind == "request":
        control.count_request()
    elif kind == "usage":
        control.add_usage(op[1], op[2], op[3], op[4])
    elif kind == "activity":
        control.set_activity(op[1], op[2])
    elif kind == "tool":
        control.record_tool(op[1])
    elif kind == "steer":
        with contextlib.suppress(HermesError):
            control.accept_steer(op[1])
    elif kind == "steers":
        control.take_steers(op[1])
    elif kind == "finish":
        control.try_finish()
    elif kind == "messages":  # the conversation from index op[1] on (journaled there)
        control.conversation.replace(op[1], op[2])
    elif kind == "event":
        control.emit(op[1], **op[2])
    elif kind == "end":
        _, reason, summary, error, transcript, truncated, data = op
        spec = control.task.output_type
        if spec is not None and data is not None:  # the worker checked the schema; the
            verdict = spec.revive(data)            # kernel's own class checks the rest
            data = verdict.value
            if not verdict.ok:
                reason, data = ExitReason.INVALID_OUTPUT, None
                error = (f"the answer matched the schema on the worker but not "
                         f"{spec.name} here: {'; '.join(verdict.errors)}")
        control.settle(reason, summary=summary, error=error, transcript=transcript,
                       truncated=truncated, data=data)
