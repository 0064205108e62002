"""One refresher thread per session: the event stream, coalesced into ≤ 10 Hz updates.

Front-ends (the dashboard, the JupyterLab comm) register sinks; each tick hands every sink the
snapshots of the tasks that changed since the last tick, and nothing when nothing changed.
Whatever the number of tasks or tokens, a sink is called at most `hz` times a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .models import Event, TaskStatus

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Refresher", "Sink", "get_refresher", "session_totals"]

Sink = Callable[[list[TaskStatus], dict[str, Any]], None]
_log = logging.getLogger(__name__)
_lock = threading.Lock()


def get_refresher(session: Session, hz: float = 10.0) -> Refresher:
    """The session's refresher, made on first use (one per session, so one per kernel)."""
    with _lock:
        refresher: Refresher | None = getattr(session, "_refresher", None)
        if refresher is None:
            refresher = Refresher(session, hz)
            session._refresher = refresher  # type: ignore[attr-defined]
        return refresher


def session_totals(session: Session) -> dict[str, Any]:
    """Counts by state plus token and call totals: the header of every view."""
    usage = session.usage
    return {"counts": session.counts(), **usage.to_dict()}


class Refresher:
    def __init__(self, session: Session, hz: float = 10.0) -> None:
        self._session = session
        self._interval = 1.0 / hz
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._sinks: tuple[Sink, ...] = ()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.ticks = 0

    def add_sink(self, sink: Sink) -> Callable[[], None]:
        """Start receiving coalesced updates; returns the function that stops them."""
        with self._cond:
            self._sinks = (*self._sinks, sink)
            if self._thread is None:
                self._session.subscribe(self._on_event)
                self._thread = threading.Thread(
                    target=self._run, name="hermes-refresher", daemon=True
                )
                self._thread.start()

        def remove() -> None:
            with self._cond:
                self._sinks = tuple(s for s in self._sinks if s is not sink)

        return remove

    def mark(self, task_id: str) -> None:
        """Force a task into the next tick (for example after a sink re-opens)."""
        with self._cond:
            self._dirty.add(task_id)
            self._cond.notify()

    def stop(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify()

    def _on_event(self, event: Event) -> None:
        if event.task_id is not None:
            self.mark(event.task_id)

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self._cond:
                while not self._dirty and not self._stopped.is_set():
                    self._cond.wait()
                dirty, self._dirty = self._dirty, set()
                sinks = self._sinks
            if self._stopped.is_set():
                return
            changed = [self._session.check(task_id) for task_id in sorted(dirty, key=_order)]
            if sinks:
                totals = session_totals(self._session)
                for sink in sinks:
                    try:
                        sink(changed, totals)
                    except Exception:
                        _log.exception("hermes_jupyter refresher sink %r failed", sink)
            self.ticks += 1
            self._stopped.wait(self._interval)  # the rate limit: at most hz ticks a second


def _order(task_id: str) -> tuple[int, str]:
    digits = task_id[1:]
    return (int(digits), task_id) if digits.isdigit() else (0, task_id)
