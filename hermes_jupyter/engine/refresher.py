"""One refresher thread per session: the event stream, coalesced into ≤ 10 Hz updates.

Front-ends (the dashboard, the JupyterLab comm) register sinks; each tick hands every sink the
snapshots of the tasks that changed since the last tick, and nothing when nothing changed.
Whatever the number of tasks or tokens, a sink is called at most `hz` times a second.

Some changes emit no event (a task starting a model call turns "thinking" and counts the call,
then streams nothing for a while): while tasks are live the refresher also compares their
versions once a second (`poll`), so views catch up. With no live task it sleeps until the next
event, so an idle session costs no wake-ups and no messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.models import Event, TaskStatus

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Refresher", "Sink", "get_refresher", "session_totals"]

Sink = Callable[[list[TaskStatus], dict[str, Any]], None]
TOTALS_EVENTS = frozenset({"agent_inbox"})
"""Session events (no task) that change the header: a tick goes out with no task in it."""
_log = logging.getLogger(__name__)


def get_refresher(session: Session, hz: float = 10.0) -> Refresher:
    """The session's refresher, made on first use (one per session, so one per kernel)."""
    return session.attachment("refresher", lambda: Refresher(session, hz))


def session_totals(session: Session) -> dict[str, Any]:
    """The header of every view: counts by state, token and call totals, `cost_usd` (the
    known cost in USD, None when no call had a known cost) and `cost_unknown` (tasks that made
    calls of unknown cost); `groups` (fan-out groups: id, name, goal, total, done, failed,
    counts, tokens, cost_usd) and `agents` (parent agents: name, owner, waiting = results
    queued for the agent's next turn, children, live)."""
    usage = session.usage  # its cost_usd: the known costs summed, None when none is known
    return {"counts": session.counts(), **usage.to_dict(), "cost_unknown": session.cost()[1],
            "groups": _summaries(session, "groups"), "agents": _summaries(session, "agents")}


def _summaries(session: Session, key: str) -> list[dict[str, Any]]:
    book = session.attachments.peek(key)
    return list(book.summaries()) if book is not None else []


class Refresher:
    def __init__(self, session: Session, hz: float = 10.0, poll: float = 1.0) -> None:
        self._session = session
        self._interval = 1.0 / hz
        self._poll = poll
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._totals_dirty = False
        self._live: set[str] = set()  # tasks created and not finished (from events)
        self._seen: dict[str, int] = {}  # task id -> version handed to the sinks
        self._next_poll = 0.0
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
                # Tasks created before we listened are polled too; each sink reads its own
                # snapshot when it starts, so what exists now counts as seen.
                for task in self._session.tasks():
                    self._seen[task.id] = task.version
                    if not task.done():
                        self._live.add(task.id)
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

    def close(self) -> None:
        """Stop the thread (the session calls this when it closes)."""
        self._stopped.set()
        with self._cond:
            self._cond.notify()

    def _on_event(self, event: Event) -> None:
        if event.task_id is None:
            if event.kind in TOTALS_EVENTS:  # no task changed, but the header did
                with self._cond:
                    self._totals_dirty = True
                    self._cond.notify()
            return
        with self._cond:
            if event.kind == "finished":
                self._live.discard(event.task_id)
            elif event.kind == "created":
                self._live.add(event.task_id)
            self._dirty.add(event.task_id)
            self._cond.notify()

    def _wait_for_changes(self) -> set[str]:
        """Block until some task changed (or stop); returns the ids and empties `_dirty`."""
        while True:
            with self._cond:
                now = time.monotonic()
                poll_due = bool(self._live) and now >= self._next_poll
                if not poll_due and (self._dirty or self._totals_dirty
                                     or self._stopped.is_set()):
                    dirty, self._dirty = self._dirty, set()
                    self._totals_dirty = False
                    return dirty
                if not poll_due:
                    self._cond.wait(self._next_poll - now if self._live else None)
                    continue
                self._next_poll = now + self._poll
                live = list(self._live)
            moved = self._moved_silently(live)  # outside _cond: it takes task locks
            with self._cond:
                self._dirty.update(moved)

    def _moved_silently(self, live: list[str]) -> list[str]:
        """Live tasks whose version moved past what the sinks last saw; forgets ended ones."""
        moved, ended = [], []
        for task_id in live:
            try:
                task = self._session.task(task_id)
            except Exception:  # cannot happen for our own session's ids; never kill the loop
                ended.append(task_id)
                continue
            if task.version != self._seen.get(task_id):
                moved.append(task_id)
            elif task.done():
                ended.append(task_id)
        with self._cond:
            self._live.difference_update(ended)
        return moved

    def _run(self) -> None:
        while not self._stopped.is_set():
            dirty = self._wait_for_changes()
            if self._stopped.is_set():
                return
            with self._cond:
                sinks = self._sinks
            if not sinks:
                continue  # nobody listens: skip the snapshots (a sink added later re-reads)
            changed = [self._session.check(task_id) for task_id in sorted(dirty, key=_order)]
            with self._cond:
                for status in changed:
                    self._seen[status.id] = status.version
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
