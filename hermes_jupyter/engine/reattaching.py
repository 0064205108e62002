"""How a session ends, and tasks that outlive the kernel (`Session(cluster=...,
journal=...)`): `close()`, `detach()`, and re-attaching to an earlier kernel's tasks when the
session opens.

A mixin of `Session`. At start, every journal row still live whose owner is a session on this
session's cluster (engine/dask_attach.py) is taken over: its engine hands back the task's facts
and whole op history, which are replayed on a new `TaskControl` (on the engine loop, as the
pump replays ops), so the task shows as live again in every face, with its id when that id is
free here. Its later rows go to its own journal row. A row whose cluster session is gone is
marked `interrupted`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..core import validate as check
from ..core.errors import ConfigurationError
from ..core.models import ExitReason, TaskResult, TaskState
from ..tools import build_registry
from .dask_attach import Adopted, replay, session_of
from .task import Task

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from ..core.secrets import Secrets
    from ..tools import McpServers
    from .backends import Backend
    from .dask_backend import DaskBackend
    from .events import EventBus, TextBatcher
    from .journal import Journal
    from .loop import EngineLoop
    from .services import Attachments, EngineServices

__all__ = ["Reattaching"]


class Reattaching:
    """`close()`, `detach()` and the re-attach at start; for `Session`, whose state it
    uses."""

    _backend: Backend
    _engine: EngineLoop
    _lock: threading.RLock
    _tasks: dict[str, Task]
    _by_name: dict[tuple[str | None, str], Task]
    _text: TextBatcher
    _closed: bool
    _bus: EventBus
    _mcp: McpServers
    _tool_threads: ThreadPoolExecutor
    attachments: Attachments
    services: EngineServices
    journal: Journal | None
    next_id: int
    secrets: Secrets
    workspace: Path

    def _emit(self, kind: str, task_id: str | None, **data: Any) -> None:
        raise NotImplementedError

    def _on_settle(self, task: Task, result: TaskResult) -> None:
        raise NotImplementedError

    def tasks(self) -> list[Task]:
        raise NotImplementedError

    def cancel(self, ref: Task | str) -> bool:
        raise NotImplementedError

    def close(self, timeout: float = 2.0) -> None:
        """Cancel what runs and stop the engine threads; returns within about `timeout`."""
        timeout = check.seconds("timeout", timeout, allow_zero=True)
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
        self._backend.close()
        self._release_engine()

    def _release_engine(self) -> None:
        self.services.shutdown(self._mcp)
        self._tool_threads.shutdown(wait=False, cancel_futures=True)
        self.attachments.close()
        self._bus.close()
        if self.journal is not None:
            self.journal.close()

    def detach(self) -> int:
        """Let go of this session and leave its tasks running on the Dask cluster: a Session
        opened later on the same journal and cluster (in this kernel or a new one)
        re-attaches to them; tasks no kernel re-attaches to within `detach_timeout` seconds
        are cancelled there. Queued tasks (not on the cluster yet) are cancelled. Here, the
        running tasks end `interrupted` (exit reason `detached`), their journal rows stay
        live. Returns how many were left running. Needs `cluster=` and a journal
        (`ConfigurationError`); without them use `close()`."""
        if not getattr(self._backend, "keep", False):
            raise ConfigurationError("detach() needs Session(cluster=..., journal=True): "
                                     "without them nothing outlives the session; use close().")
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
        self._backend.detach()
        left = 0
        for task in self.tasks():
            control = task.control_for(self)
            if control.state is TaskState.QUEUED:
                control.request_cancel("closed")
                control.settle(ExitReason.SESSION_CLOSED)
            elif control.settle(ExitReason.DETACHED, error=(
                    "detached: it goes on on the cluster; a Session on the same journal and "
                    "cluster re-attaches to it")):
                left += 1
        self._release_engine()
        return left

    def _reattach(self) -> None:
        """Take over the live tasks the journal says a session on this cluster runs."""
        backend: DaskBackend | None = self._backend if getattr(self._backend, "keep",
                                                                False) else None  # type: ignore[assignment]
        if backend is None or self.journal is None:
            return
        journal = self.journal
        rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for session, task_id, owner in journal.live_rows():
            token = session_of(owner, backend.scheduler)
            if token is not None:
                rows[token].append((session, task_id))
        for token, wanted in rows.items():
            adopted = backend.adopt(token)
            if isinstance(adopted, str):  # a live kernel follows them: leave its rows be
                continue
            found = {a.facts["id"]: a for a in adopted or ()}
            for session, task_id in wanted:
                one = found.get(task_id)
                if one is None:  # its engine forgot it, or the cluster session is gone
                    journal.interrupt(session, task_id)
                    continue
                task = self._adopted_task(one.facts)
                journal.adopt(task.id, session, task_id)
                self._engine.run(self._replay_adopted(task, one))

    def _adopted_task(self, facts: dict[str, Any]) -> Task:
        with self._lock:
            task_id = facts["id"]
            if task_id in self._tasks:
                task_id = f"t{self.next_id}"
            if task_id[1:].isdigit():
                self.next_id = max(self.next_id, int(task_id[1:]) + 1)
            task = Task(self, task_id, facts["name"], facts["goal"],  # type: ignore[arg-type]
                        facts["context"], facts["model"], build_registry(None, (),
                                                                         self.workspace),
                        facts["max_iterations"], facts["timeout"], self._emit,
                        self._text.add, self.secrets)
            task.max_total_tokens = facts["max_total_tokens"]
            task.max_cost_usd = facts["max_cost_usd"]
            task.approval = facts["approval"]
            task.control_for(self).on_settle = self._on_settle
            self._tasks[task_id] = task
            if task.name:
                self._by_name[(None, task.name)] = task
        return task

    async def _replay_adopted(self, task: Task, adopted: Adopted) -> None:
        """Engine loop: rebuild the task from its history, then follow it on its engine."""
        control = task.control_for(self)
        self._emit("created", task.id, name=task.name, model=task.model, goal=task.goal,
                   owner=None, parent=None, reattached=True)
        control.claim(adopted.facts.get("started_at"))  # its time goes on from its start
        self._emit("started", task.id)
        for op in adopted.history:
            replay(control, op)
        if control.done():
            return
        if adopted.engine is None:
            control.settle(ExitReason.ERROR, error=(
                "its Dask worker was lost while no kernel was attached; this is its last "
                "state kept on the scheduler"))
            return
        backend: DaskBackend = self._backend  # type: ignore[assignment]
        aio = self._engine.loop.create_task(backend.follow(control, adopted.engine))
        aio.add_done_callback(functools.partial(_settle_cancelled, control))
        if not control.bind(aio):
            aio.cancel()


def _settle_cancelled(control: Any, _done: object) -> None:
    control.settle(ExitReason.CANCELLED)
