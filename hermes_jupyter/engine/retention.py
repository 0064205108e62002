"""Which ended tasks a session still holds in memory: `Session.forget` and `keep_finished`.

A session's tasks live in two dicts (by id, by name) guarded by the session's lock; this
module only removes from them. A forgotten task's handle keeps its result for whoever holds
it; ids and names stop finding it; the journal, when kept, still has it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from ..core.errors import InvalidArgument, InvalidArgumentType
from .task import Task

__all__ = ["Retention", "check_forget"]


def check_forget(tasks: Sequence[object], finished: object) -> None:
    """The arguments of `Session.forget(*tasks, finished=False)`."""
    if not isinstance(finished, bool):
        raise InvalidArgumentType(f"Bad finished: got {type(finished).__name__}; pass True "
                                  "to forget every ended task.")
    if bool(tasks) == finished:
        raise InvalidArgument("Bad forget() call: pass tasks, or finished=True for every "
                              "ended task (not both).")
    for ref in tasks:
        if not isinstance(ref, (Task, str)):
            raise InvalidArgumentType(f"Bad tasks: got {type(ref).__name__}; pass Tasks, ids "
                                      "like 't1' or task names.")


class Retention:
    """Forgets tasks from the session's registry, on request or past `keep` ended ones."""

    def __init__(self, tasks: dict[str, Task], by_name: dict[tuple[str | None, str], Task],
                 lock: threading.RLock, keep: int | None) -> None:
        self._tasks = tasks
        self._by_name = by_name
        self._lock = lock
        self.keep = keep
        self._ended: deque[str] = deque()  # ids in the order they ended (only with `keep`)

    def forget(self, chosen: list[Task], *, strict: bool) -> int:
        """Forget the ended tasks of `chosen`; with `strict`, refuse if any is still live."""
        live = [t.id for t in chosen if not t.done()]
        if strict and live:
            raise InvalidArgument(f"Bad tasks: {', '.join(live)} still running; cancel or "
                                  "collect them first, then forget them.")
        with self._lock:
            return sum(self._drop(t.id, t) for t in chosen if t.done())

    def on_ended(self, task: Task) -> None:
        """A task settled: keep only the newest `keep` ended tasks."""
        if self.keep is None:
            return
        with self._lock:
            self._ended.append(task.id)
            while len(self._ended) > self.keep:
                self._drop(self._ended.popleft())

    def _drop(self, task_id: str, expected: Task | None = None) -> bool:
        """Forget one task (under the lock); its name goes back to the newest task left."""
        task = self._tasks.get(task_id)
        if task is None or (expected is not None and task is not expected):
            return False
        del self._tasks[task_id]
        key = (task.owner, task.name or "")
        if task.name and self._by_name.get(key) is task:
            del self._by_name[key]
            for other in reversed(self._tasks.values()):
                if other.name == task.name and other.owner == task.owner:
                    self._by_name[key] = other
                    break
        return True
