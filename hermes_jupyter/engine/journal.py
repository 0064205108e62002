"""A durable journal of tasks in SQLite, so results outlive the kernel that made them.

One file per notebook folder (by default `.hermes/tasks.sqlite` under the workspace), in WAL
mode, written by one background thread that batches the session's events into transactions:
a task never waits on the disk. When a journal is opened, tasks that a dead kernel left
`queued` or `running` become `interrupted`. Keys are never stored (messages are redacted).
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.models import (
    LIVE_STATES,
    Event,
    ExitReason,
    TaskResult,
    TaskState,
    ToolTraceEntry,
    Usage,
)

if TYPE_CHECKING:
    from .task import Task

__all__ = ["Journal", "JournalRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    session TEXT NOT NULL, id TEXT NOT NULL, name TEXT, goal TEXT NOT NULL, model TEXT NOT NULL,
    state TEXT NOT NULL, created_at REAL NOT NULL, ended_at REAL, exit_reason TEXT, error TEXT,
    summary TEXT, result TEXT, PRIMARY KEY (session, id)
);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
"""
_FLUSH_EVERY = 0.2
_STOP = object()


@dataclass(frozen=True)
class JournalRecord:
    """One task as the journal knows it; `result()` rebuilds its `TaskResult` when it ended."""

    session: str
    id: str
    name: str | None
    goal: str
    model: str
    state: TaskState
    created_at: float
    ended_at: float | None
    exit_reason: str | None
    error: str | None
    summary: str | None
    _result_json: str | None

    def result(self) -> TaskResult | None:
        if not self._result_json:
            return None
        data = json.loads(self._result_json)
        data["state"] = TaskState(data["state"])
        data["exit_reason"] = _exit_reason(data["exit_reason"])
        data["usage"] = Usage(**data["usage"])
        data["tool_trace"] = [ToolTraceEntry(**t) for t in data["tool_trace"]]
        return TaskResult(**data)


class JournalSource(Protocol):
    """What the journal needs of a session: its events and its tasks."""

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...
    def task(self, ref: str) -> Task: ...


class Journal:
    """Records every task of the sessions attached to it; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session_id = uuid.uuid4().hex[:8]
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db_lock = threading.Lock()
        with self._db_lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self.interrupted = self._db.execute(
                "UPDATE tasks SET state = ?, exit_reason = 'interrupted', ended_at = ? "
                f"WHERE state IN ({', '.join('?' * len(LIVE_STATES))})",
                (TaskState.INTERRUPTED.value, time.time(), *sorted(s.value for s in LIVE_STATES)),
            ).rowcount
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._writer = threading.Thread(target=self._write_loop, name="hermes-journal",
                                        daemon=True)
        self._writer.start()

    def attach(self, session: JournalSource) -> None:
        """Journal every later event of `session` (its tasks are keyed by this journal's id)."""
        session.subscribe(lambda event: self._on_event(session, event))

    def records(self, limit: int | None = None) -> list[JournalRecord]:
        """Every journalled task, oldest first (the last `limit` when given)."""
        sql = "SELECT * FROM tasks ORDER BY created_at, rowid"
        with self._db_lock:
            rows = self._db.execute(sql).fetchall()
        records = [_record(row) for row in rows]
        return records if limit is None else records[-limit:]

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is on disk."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self.flush()
        self._queue.put(_STOP)
        self._writer.join(5)
        with self._db_lock:
            self._db.close()

    # ---- writer side -------------------------------------------------------------------
    def _on_event(self, session: JournalSource, event: Event) -> None:
        if event.kind not in ("created", "started", "finished") or event.task_id is None:
            return
        task = session.task(event.task_id)
        if event.kind == "created":
            row: tuple[Any, ...] = (
                "insert", self.session_id, task.id, task.name, task.goal, task.model,
                TaskState.QUEUED.value, time.time(),
            )
        elif event.kind == "started":
            row = ("state", TaskState.RUNNING.value, self.session_id, task.id)
        else:
            result = task.result
            if result is None:
                return
            row = ("finish", result.state.value, time.time(), result.exit_reason.value,
                   result.error, result.summary, _result_json(result), self.session_id, task.id)
        with self._idle:
            self._pending += 1
        self._queue.put(row)

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + _FLUSH_EVERY
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(item)
            self._write(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _write(self, batch: list[object]) -> None:
        with self._db_lock:
            self._db.execute("BEGIN")
            for item in batch:
                assert isinstance(item, tuple)
                kind, *values = item
                if kind == "insert":
                    self._db.execute(
                        "INSERT OR REPLACE INTO tasks (session, id, name, goal, model, state, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
                elif kind == "state":
                    self._db.execute(
                        "UPDATE tasks SET state = ? WHERE session = ? AND id = ? "
                        "AND state = 'queued'", values)
                else:
                    self._db.execute(
                        "UPDATE tasks SET state = ?, ended_at = ?, exit_reason = ?, error = ?, "
                        "summary = ?, result = ? WHERE session = ? AND id = ?", values)
            self._db.execute("COMMIT")


def _result_json(result: TaskResult) -> str:
    data = asdict(result)
    data["state"] = result.state.value
    data["usage"] = {k: v for k, v in data["usage"].items() if k != "total_tokens"}
    return json.dumps(data, default=str)


def _exit_reason(value: str) -> ExitReason:
    """Rows written before the `ExitReason` table said 'session closed' or 'error'."""
    try:
        return ExitReason(value.replace(" ", "_"))
    except ValueError:
        return ExitReason.ERROR


def _record(row: tuple[Any, ...]) -> JournalRecord:
    (session, task_id, name, goal, model, state, created_at, ended_at, exit_reason, error,
     summary, result) = row
    return JournalRecord(session, task_id, name, goal, model, TaskState(state), created_at,
                         ended_at, exit_reason, error, summary, result)
