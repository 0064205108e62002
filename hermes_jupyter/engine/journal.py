"""A durable journal of tasks in SQLite, so results outlive the kernel that made them.

One file per notebook folder (by default `.hermes/tasks.sqlite` under the workspace), in WAL
mode, shared by every kernel of that folder. Durability: a task's row is committed before
`delegate` returns, and its terminal row before its result is visible (`collect`, `done()`,
`result`), so a kernel killed at any moment (kill -9 included) loses no result it has shown.
Only progress (`queued` → `running`) goes through a background writer that batches it.

Every row names its owner (`lease.py`): opening the journal marks a `queued`/`running` row
`interrupted` only when its owner is gone, never a task that another live kernel still runs.
The file carries a schema version (`PRAGMA user_version`); older files are migrated in place.
No row can stop the journal: what cannot be stored as given is stored escaped or left out, and
said once in one line (a logged warning, and `Journal.problems`). Keys are never stored.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigurationError
from ..core.models import LIVE_STATES, ExitReason, TaskResult, TaskState, ToolTraceEntry, Usage
from ..core.text import short
from . import lease
from .journal_schema import SCHEMA_VERSION, migrate
from .sqlite_file import unusable
from .structured import jsonable

if TYPE_CHECKING:
    from .task import Task

__all__ = ["SCHEMA_VERSION", "Journal", "JournalRecord", "history_of"]

_COLUMNS = ("session, id, name, goal, model, state, created_at, ended_at, exit_reason, error, "
            "summary, result, owner, context, resumed_from")
# Rows may reach the file in any order (a task cancelled while `delegate` writes its first
# row): "insert" never overwrites, "finish" inserts the whole row when there is none yet.
_SQL = {
    "insert": "INSERT INTO tasks (session, id, name, goal, model, state, created_at, owner, "
              "context, resumed_from) VALUES (:session, :id, :name, :goal, :model, :state, "
              ":created_at, :owner, :context, :resumed_from) ON CONFLICT (session, id) DO NOTHING",
    "state": "UPDATE tasks SET state = :state WHERE session = :session AND id = :id "
             "AND state = 'queued'",
    "finish": "INSERT INTO tasks (session, id, name, goal, model, state, created_at, ended_at, "
              "exit_reason, error, summary, result, owner) VALUES (:session, :id, :name, :goal,"
              " :model, :state, :ended_at, :ended_at, :exit_reason, :error, :summary, :result, "
              ":owner) ON CONFLICT (session, id) DO UPDATE SET state = excluded.state, "
              "ended_at = excluded.ended_at, exit_reason = excluded.exit_reason, "
              "error = excluded.error, summary = excluded.summary, result = excluded.result",
    "turn": "INSERT INTO turns (session, task, seq, messages) VALUES (:session, :id, :seq, "
            ":messages) ON CONFLICT (session, task, seq) DO UPDATE SET messages = "
            "excluded.messages",
    "rewind": "DELETE FROM turns WHERE session = :session AND task = :id AND seq >= :seq",
}
# Every live state, as an SQL list (from TaskState: no hand-kept copy).
_LIVE = "(" + ", ".join(f"'{state.value}'" for state in sorted(LIVE_STATES)) + ")"
_FLUSH_EVERY = 0.2
_MAX_PROBLEMS = 50
_STOP = object()
_log = logging.getLogger(__name__)

Row = tuple[str, dict[str, Any]]


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
    owner: str | None = None
    context: str = ""
    resumed_from: str | None = None
    """The interrupted task this one resumed, as "kernel/id" (`Session.resume`)."""

    @property
    def key(self) -> str:
        """"kernel/id": this task among every kernel's tasks in the journal."""
        return f"{self.session}/{self.id}"

    def __repr__(self) -> str:
        """One short line (the kept result, with its transcript, only through `result()`)."""
        name = f" {self.name!r}" if self.name else ""
        reason = f" [{self.exit_reason}]" if self.exit_reason else ""
        what = short(self.error or self.summary or self.goal, 60)
        return (f"<JournalRecord {self.session} {self.id}{name}: {self.state.value}{reason} "
                f"{what!r}>")

    @property
    def has_result(self) -> bool:
        """True when the task ended with a result kept (`result()` is not None)."""
        return bool(self._result_json)

    def result(self) -> TaskResult | None:
        """The task's result as it was kept; a typed output (`data`) comes back as plain
        JSON (dicts, lists), not as the class it was validated into."""
        if not self._result_json:
            return None
        data = json.loads(self._result_json)
        data["state"] = TaskState(data["state"])
        data["exit_reason"] = _exit_reason(data["exit_reason"])
        data["usage"] = Usage(**data["usage"])
        data["tool_trace"] = [ToolTraceEntry(**t) for t in data["tool_trace"]]
        return TaskResult(**data)


class Journal:
    """Records every task of the session that owns it; safe to share between threads.

    Attributes: `path`, `session_id` (this session's key in the file), `interrupted` (rows of
    dead owners marked interrupted on opening), `problems` (one line per thing that could not
    be stored as given, oldest first, at most 50).
    """

    def __init__(self, path: str | Path, owner: str | None = None) -> None:
        self.path = Path(path)
        self.session_id = uuid.uuid4().hex[:8]
        self.owner = owner or lease.this_process()  # a cluster, when tasks outlive us
        self._rows: dict[str, tuple[str, str]] = {}  # task id -> the row of an adopted task
        self.problems: list[str] = []
        self._said: set[str] = set()
        self._closed = False
        self._db_lock = threading.Lock()
        with self._db_lock, unusable(self.path, "journal"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None, timeout=10.0)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # commits survive a kill
                migrate(self._db, self.path)
                self.interrupted = self._interrupt_orphans()
            except BaseException:
                self._db.close()
                raise
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._ends: dict[str, int] = {}  # per live task: messages queued so far (under _idle)
        self._writer = threading.Thread(target=self._write_loop, name="hermes-journal",
                                        daemon=True)
        self._writer.start()

    # ---- what the session tells the journal ----------------------------------------------
    def created(self, task: Task) -> None:
        """Commit the task's first row now (called before `delegate` returns)."""
        self._write_now(("insert", {
            "session": self.session_id, "id": task.id, "name": task.name, "goal": task.goal,
            "model": task.model, "state": TaskState.QUEUED.value, "created_at": time.time(),
            "owner": self.owner, "context": task.context, "resumed_from": task.resumed_from}))

    def started(self, task: Task) -> None:
        """Queue `running` for the task (batched: progress may lag by `_FLUSH_EVERY`)."""
        session, task_id = self._row(task.id)
        row = ("state", {"state": TaskState.RUNNING.value, "session": session, "id": task_id})
        with self._idle:
            if self._closed:
                return
            self._pending += 1
        self._queue.put(row)

    def kept(self, task: Task, start: int, messages: list[dict[str, Any]]) -> None:
        """Queue the task's conversation from index `start` on (redacted by the caller):
        batched with progress, one row per step holding only the messages it added."""
        session, task_id = self._row(task.id)
        values = {"session": session, "id": task_id, "seq": start}
        rows: list[Row] = []
        with self._idle:
            if self._closed:
                return
            if start < self._ends.get(task.id, 0):  # rewritten (a retried worker): drop after
                rows.append(("rewind", values))
            self._ends[task.id] = start + len(messages)
            rows.append(("turn", {**values, "messages": json.dumps(messages, default=str)}))
            self._pending += len(rows)
        for row in rows:
            self._queue.put(row)

    def finished(self, task: Task, result: TaskResult) -> None:
        """Commit the task's terminal row now (called before its result becomes visible)."""
        session, task_id = self._row(task.id)
        with self._idle:
            self._ends.pop(task.id, None)
        self._write_now(("finish", {
            "session": session, "id": task_id, "name": task.name, "goal": task.goal,
            "model": task.model, "state": result.state.value, "ended_at": time.time(),
            "exit_reason": result.exit_reason.value, "error": result.error,
            "summary": result.summary, "result": _result_json(result), "owner": self.owner}))

    def adopt(self, task_id: str, session: str, row_id: str) -> None:
        """Record the later rows of task `task_id` in the row (`session`, `row_id`) of the
        earlier kernel that started it (a task taken over on a cluster)."""
        self._rows[task_id] = (session, row_id)

    def adopted(self) -> list[tuple[str, str]]:
        """The (session, id) rows of the tasks this session re-attached to."""
        return list(self._rows.values())

    def interrupt(self, session: str, task_id: str) -> None:
        """Mark one live row interrupted (its cluster no longer has the task)."""
        with self._db_lock:
            self._safely(lambda: self._db.execute(
                "UPDATE tasks SET state = 'interrupted', exit_reason = 'interrupted', "
                f"ended_at = ? WHERE session = ? AND id = ? AND state IN {_LIVE}",
                (time.time(), session, task_id)), f"task {task_id}: its interrupted row")

    def live_rows(self) -> list[tuple[str, str, str | None]]:
        """(session, id, owner) of every row still queued or running, oldest first."""
        with self._db_lock:
            return self._db.execute(
                f"SELECT session, id, owner FROM tasks WHERE state IN {_LIVE} "
                "ORDER BY created_at, rowid").fetchall()

    def _row(self, task_id: str) -> tuple[str, str]:
        return self._rows.get(task_id, (self.session_id, task_id))

    # ---- reading -------------------------------------------------------------------------
    def records(self, limit: int | None = None, *, exclude_session: str | None = None
                ) -> list[JournalRecord]:
        """Journalled tasks, oldest first: the last `limit` when given, without the tasks of
        session `exclude_session` when given."""
        sql = f"SELECT {_COLUMNS} FROM tasks WHERE session != ? ORDER BY created_at DESC, " \
              "rowid DESC LIMIT ?"
        with self._db_lock:
            rows = self._db.execute(sql, (exclude_session or "", -1 if limit is None else limit)
                                    ).fetchall()
        return [_record(row) for row in reversed(rows)]

    def conversation(self, record: JournalRecord) -> list[dict[str, Any]]:
        """The messages the journal kept of `record`'s task, oldest first (up to the first
        step it lacks)."""
        with self._db_lock:
            rows = self._db.execute("SELECT seq, messages FROM turns WHERE session = ? AND "
                                    "task = ? ORDER BY seq", (record.session, record.id)
                                    ).fetchall()
        out: list[dict[str, Any]] = []
        for seq, text in rows:
            if seq > len(out):
                break  # a step never reached the file: what follows would not fit
            out[seq:] = json.loads(text)
        return out

    def resumed_by(self, record: JournalRecord) -> str | None:
        """"kernel/id" of the task that resumed `record`'s task, if one did."""
        with self._db_lock:
            row = self._db.execute("SELECT session || '/' || id FROM tasks WHERE "
                                   "resumed_from = ?", (record.key,)).fetchone()
        return None if row is None else str(row[0])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is on disk; False if `timeout` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Write what is queued, mark this session's unfinished rows interrupted (not those
        a cluster owns: they go on there), close."""
        self.flush()
        with self._idle:
            self._closed = True
        self._queue.put(_STOP)
        self._writer.join(5)
        with self._db_lock:
            self._safely(lambda: self._db.execute(
                "UPDATE tasks SET state = 'interrupted', exit_reason = 'interrupted', "
                f"ended_at = ? WHERE session = ? AND state IN {_LIVE} AND owner IS ?",
                (time.time(), self.session_id, lease.this_process())),
                "mark unfinished tasks on closing")
            self._db.close()

    # ---- writing -------------------------------------------------------------------------
    def _write_now(self, row: Row) -> None:
        with self._db_lock:
            if self._closed:
                self._problem(f"task {row[1].get('id')}: its {row[0]} row came after the "
                              "journal was closed", "closed")
                return
            self._apply(row)

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
            try:
                self._write_batch(batch)
            except Exception as err:  # the writer outlives every row, whatever happens
                self._problem(f"could not write {len(batch)} journal rows ({err})", "batch")
            finally:
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _write_batch(self, batch: list[object]) -> None:
        with self._db_lock:
            try:
                self._db.execute("BEGIN")
                for item in batch:
                    kind, values = item  # type: ignore[misc]
                    self._db.execute(_SQL[str(kind)], _clean(values))  # type: ignore[has-type]
                self._db.execute("COMMIT")
                return
            except Exception:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            for item in batch:  # one bad row must not lose the others: write them one by one
                self._apply(item)  # type: ignore[arg-type]

    def _apply(self, row: Row) -> None:
        """Write one row in its own transaction (the caller holds `_db_lock`); never raises."""
        kind, values = row
        cleaned = _clean(values)
        if cleaned != values:
            changed = sorted(k for k in values if cleaned[k] is not values[k])
            self._problem(f"task {values.get('id')}: stored its {', '.join(changed)} as the "
                          "nearest text SQLite holds (lone surrogates escaped as \\udce9, "
                          "NaN as 'nan')", "escaped")
        self._safely(lambda: self._db.execute(_SQL[kind], cleaned),
                     f"task {values.get('id')}: its {kind} row")

    def _safely(self, write: Any, what: str) -> None:
        try:
            write()
        except Exception as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._problem(f"could not store {what}: {type(err).__name__}: {err}", what)

    def _problem(self, line: str, kind: str) -> None:
        """Keep the line and log it once per kind (a kernel never gets a warning per task)."""
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(line)
        if kind not in self._said:
            self._said.add(kind)
            _log.warning("hermes_jupyter journal %s: %s", self.path, line)

    def _interrupt_orphans(self) -> int:
        """Mark `queued`/`running` rows whose owner is gone as interrupted; count them."""
        rows = self._db.execute("SELECT DISTINCT owner FROM tasks WHERE state IN "
                                f"{_LIVE}").fetchall()
        gone = [owner for (owner,) in rows if lease.alive(owner) is False]
        count = 0
        for owner in gone:
            count += self._db.execute(
                "UPDATE tasks SET state = 'interrupted', exit_reason = 'interrupted', "
                f"ended_at = ? WHERE state IN {_LIVE} AND owner IS ?",
                (time.time(), owner)).rowcount
        return count


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """What SQLite can store: text without lone surrogates, numbers that are finite (NaN
    would become NULL), and anything else as its text."""
    out = {}
    for key, value in values.items():
        finite = not isinstance(value, float) or math.isfinite(value)
        if not finite or (value is not None and not isinstance(value, (str, int, float))):
            value = repr(value)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        out[key] = value
    return out


def _result_json(result: TaskResult) -> str:
    data = asdict(replace(result, data=None))
    data["data"] = jsonable(result.data)  # typed output as plain JSON (read back as such)
    data["state"] = result.state.value
    data["usage"] = {k: v for k, v in data["usage"].items() if k != "total_tokens"}
    return json.dumps(data, default=str)  # ensure_ascii: lone surrogates become \udce9


def _exit_reason(value: str) -> ExitReason:
    """Rows written before the `ExitReason` table said 'session closed' or 'error'."""
    try:
        return ExitReason(value.replace(" ", "_"))
    except ValueError:
        return ExitReason.ERROR


def _record(row: tuple[Any, ...]) -> JournalRecord:
    (session, task_id, name, goal, model, state, created_at, ended_at, exit_reason, error,
     summary, result, owner, context, resumed_from) = row
    return JournalRecord(session, task_id, name, goal, model, TaskState(state), created_at,
                         ended_at, exit_reason, error, summary, result, owner, context or "",
                         resumed_from)


def history_of(journal: Journal | None, limit: int | None) -> list[JournalRecord]:
    """Tasks of earlier sessions in `journal`, oldest first (the last `limit` when given)."""
    if journal is None:
        raise ConfigurationError("This session keeps no journal: create it with "
                                 "Session(..., journal=True) to keep tasks across kernels.")
    taken = set(journal.adopted())  # earlier kernels' tasks this session re-attached to
    wanted = None if limit is None else limit + len(taken)
    kept = [r for r in journal.records(wanted, exclude_session=journal.session_id)
            if (r.session, r.id) not in taken]
    return kept if limit is None else kept[max(0, len(kept) - limit):]
