"""The concurrency cap: slots held, and the FIFO of tasks waiting for one.

A task gets a slot in `schedule` when one is free (so it is `running` when `delegate`
returns), else it waits; a freed slot passes to the oldest task still waiting. Any thread:
the count and the queue are guarded by the session's lock. Starting a task (`start`) happens
outside the lock and may refuse (the task was cancelled meanwhile, or a budget is spent): the
slot then passes on.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .task import Task

__all__ = ["Slots"]


class Slots:
    """At most `limit` tasks hold a slot; `start(task)` is called when one gets it."""

    def __init__(self, limit: int, lock: threading.RLock, start: Callable[[Task], bool]) -> None:
        self.limit = limit
        self._lock = lock
        self._start = start
        self._queue: deque[Task] = deque()
        self._running = 0

    def schedule(self, task: Task) -> None:
        """Give `task` a slot now if one is free, else queue it (FIFO)."""
        with self._lock:
            if self._running >= self.limit:
                self._queue.append(task)
                return
            self._running += 1
        if not self._start(task):
            self.release()

    def release(self) -> None:
        """Hand a freed slot to the oldest queued task still waiting, or give it up."""
        while True:
            with self._lock:
                if not self._queue:
                    self._running -= 1
                    return
                nxt = self._queue.popleft()
            if self._start(nxt):
                return

    def free(self) -> int:
        """How many more tasks could start now without waiting (0 while some wait)."""
        with self._lock:
            return 0 if self._queue else max(0, self.limit - self._running)
