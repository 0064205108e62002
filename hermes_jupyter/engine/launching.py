"""The engine side of a `Session` on the loop thread: starting, running and settling tasks.

A mixin of `Session`: a task that got a slot (`Slots`) is claimed (queued → running,
journaled), its coroutine launched on the engine loop, and its end made durable before anyone
sees it (`_on_settle`). A task cancelled before its coroutine ran is settled here too, so
every task reaches a terminal state.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from ..core.models import Event, ExitReason, TaskResult
from .runner import run_task
from .task import Task, TaskControl

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from ..core.secrets import Secrets
    from .approvals import Approvals
    from .backends import Backend
    from .events import EventBus, TextBatcher
    from .journal import Journal
    from .loop import EngineLoop
    from .pricing import Pricer
    from .provider import Provider
    from .retention import Retention
    from .scheduling import Slots

__all__ = ["Launching"]


class Launching:
    """Claim, launch, run and settle tasks; for `Session`, whose state it uses."""

    _engine: EngineLoop
    _bus: EventBus
    _text: TextBatcher
    _slots: Slots
    _provider: Provider
    _tool_threads: ThreadPoolExecutor
    _pricer: Pricer
    _approvals: Approvals
    _backend: Backend
    _retention: Retention
    journal: Journal | None
    system_prompt: str
    secrets: Secrets

    def _budget_spent(self) -> str | None:
        raise NotImplementedError

    def _emit(self, kind: str, task_id: str | None, **data: Any) -> None:
        if kind == "finished" and task_id and self._engine.in_loop_thread():
            self._text.flush(task_id)  # the last text comes before the end
        self._bus.emit(Event(kind, task_id, data))

    def _claim(self, task: Task) -> bool:
        """Mark a task that got a slot as running and start it; False if it was cancelled."""
        control = task.control_for(self)
        spent = self._budget_spent()
        if spent:
            control.settle(ExitReason.BUDGET, error=spent)
            return False
        if not control.claim():
            return False
        if self.journal is not None:
            self.journal.started(task)
        self._emit("started", task.id)
        self._engine.post(functools.partial(self._launch, task))
        return True

    def _launch(self, task: Task) -> None:
        """Loop thread: create the task's coroutine, unless it was cancelled before this."""
        control = task.control_for(self)
        if control.done() or control.cancel_reason is not None:
            control.settle(ExitReason.CANCELLED)
            self._slots.release()
            return
        aio = self._engine.loop.create_task(self._backend.run(control))
        aio.add_done_callback(functools.partial(self._release, control))
        if not control.bind(aio):  # a cancel came between the check and the bind
            aio.cancel()

    def _release(self, control: TaskControl, _done: asyncio.Future[None]) -> None:
        # A task cancelled before its coroutine ran never entered `_run`: settle it here.
        control.settle(ExitReason.CANCELLED)
        self._slots.release()

    async def _run(self, control: TaskControl) -> None:
        await run_task(control, self._provider, self._tool_threads, self.system_prompt,
                       self._pricer, self.secrets.redact, self._approvals)

    def _on_settle(self, task: Task, result: TaskResult) -> None:
        """Before a result is visible: commit it to the journal, then apply keep_finished."""
        if self.journal is not None and result.exit_reason is not ExitReason.DETACHED:
            self.journal.finished(task, result)  # a detached task goes on: its row stays live
        self._retention.on_ended(task)
