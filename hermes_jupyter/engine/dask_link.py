"""The kernel's connections to a session's `WorkerEngine` actors, and taking over the
engines of an earlier kernel's session (tasks that outlive the kernel, dask_attach.py).

Every call to an engine is `actor_execute` on the client's own connection pool, straight to
the worker, never through the scheduler (see docs/architecture.md, "Running on a Dask
cluster").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..core.errors import HermesError
from .dask_attach import Adopted, engines_dataset, tasks_dataset
from .dask_keeper import UNATTENDED_AFTER

__all__ = ["Engine", "WorkerLink"]


@dataclass
class Engine:
    address: str
    key: str
    workspace: bool
    pid: int
    actor: Any  # the actor's future: its status turns from "finished" when the worker goes
    running: int = 0
    lost: bool = False
    index: int = 0  # its place in the session's dataset (for the scheduler's copy)


class WorkerLink:
    """Calls to engines, and the engines taken over from earlier kernels (`adopted`)."""

    client: Any
    adopted: list[Engine]
    _datasets: list[str]  # what close() unpublishes

    def adopt(self, token: str) -> list[Adopted] | str | None:
        """Take over the tasks of the cluster session `token` (an earlier kernel's): each
        engine's tasks (facts and whole op history), read from the scheduler's copy when its
        worker is gone. None when the cluster no longer has that session; "attended" when a
        live kernel still follows it (then nothing is taken)."""
        from distributed import wait

        try:
            published = self.client.get_dataset(engines_dataset(token))
        except KeyError:
            return None
        with contextlib.suppress(TimeoutError):  # an actor whose worker died stays pending
            wait(published["actors"], timeout=2)  # type: ignore[no-untyped-call]
        pairs = list(zip(published["workers"], published["actors"], strict=True))
        reachable = [(a, str(f.key)) for a, f in pairs if f.status == "finished"]
        if not self._left_alone(reachable):
            return "attended"
        self._datasets.append(engines_dataset(token))
        found: list[Adopted] = []
        for i, (address, future) in enumerate(pairs):
            engine = Engine(address, str(future.key), True, -1, future, index=i)
            try:
                if future.status != "finished":
                    raise ConnectionError(f"its actor is {future.status}")
                taken = self._call_sync(address, engine.key, "attach")
                where: int | None = len(self.adopted)
                self.adopted.append(engine)
            except Exception:  # its worker is gone: the keeper's copy on the scheduler
                records = self.client.get_dataset(tasks_dataset(token, i), default={})
                taken, where = list(records.values()), None
            found += [Adopted(facts, history, where) for facts, history in taken]
        return found

    def _left_alone(self, engines: list[tuple[str, str]]) -> bool:
        """Wait until no kernel has called these engines for `UNATTENDED_AFTER` seconds (a
        kernel that just died): True. False as soon as one is seen called again (a live
        kernel follows them), or after that time and a second more."""
        deadline = time.monotonic() + UNATTENDED_AFTER + 1.0
        seen: dict[str, int] = {}
        while True:
            waits = []
            for address, key in engines:
                with contextlib.suppress(Exception):  # unreachable: its copy is read later
                    attended, idle, calls = self._call_sync(address, key, "attended")
                    if seen.setdefault(key, calls) != calls:
                        return False
                    if attended:
                        waits.append(UNATTENDED_AFTER - idle)
            if not waits:
                return True
            if time.monotonic() > deadline:
                return False
            threading.Event().wait(min(0.25, max(0.02, max(waits))))  # poll, bounded

    def _publish(self, name: str, data: object) -> None:
        self.client.publish_dataset(**{name: data})
        self._datasets.append(name)

    # ---- the kernel's side of the conversation ---------------------------------------

    def _call(self, engine: Engine, function: str, *args: Any) -> asyncio.Future[Any]:
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
