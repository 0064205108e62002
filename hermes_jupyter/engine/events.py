"""The session's event stream: typed facts delivered to subscribers off the task threads."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..core.models import Event

__all__ = ["EventBus", "Subscriber"]

Subscriber = Callable[[Event], None]
Redactor = Callable[[dict[str, Any]], dict[str, Any]]
_log = logging.getLogger(__name__)
_STOP = object()


class EventBus:
    """Fan-out of events to subscribers on one dispatcher thread.

    `emit` only enqueues, so a slow or failing subscriber never slows or breaks a task; the
    dispatcher starts with the first subscriber and events emitted with none are dropped.
    `redact` (the session's `Secrets.redact_data`) cleans every event's data on the
    dispatcher thread before any subscriber (journal, refresher, comm, user) sees it: the one
    choke point of the event path, whoever emits.
    """

    def __init__(self, redact: Redactor | None = None) -> None:
        self._redact = redact
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(event)` for every later event; returns the unsubscribe function."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._dispatch, name="hermes-events", daemon=True
                )
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def emit(self, event: Event) -> None:
        if self._subscribers:
            self._queue.put(event)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued, then stop the dispatcher."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _dispatch(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Event)
            if self._redact is not None and item.data:
                item = replace(item, data=self._redact(item.data))
            for callback in self._subscribers:
                try:
                    callback(item)
                except Exception:  # a broken subscriber must not break the stream
                    _log.exception("hermes_jupyter event subscriber %r failed", callback)
