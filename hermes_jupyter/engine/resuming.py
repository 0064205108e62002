"""`Session.resume`: start an interrupted task of an earlier kernel again, from its journal.

A mixin of `Session`. The journal keeps each task's goal, context and conversation at every
completed step (engine/conversation.py); a task whose kernel died is marked `interrupted`
when a later kernel opens the journal (its owner's lease is gone). Resuming makes a new task
(a new id in this session) that starts from that conversation, with `resumed_from` naming
the old one ("kernel/id"), which stays interrupted. A task is resumed at most once (the
journal's unique index on `resumed_from` holds it across kernels).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import validate as check
from ..core.errors import ConfigurationError, HermesError, InvalidArgumentType, UnknownTaskError
from ..core.models import TaskState
from .journal import Journal, JournalRecord

if TYPE_CHECKING:
    from .task import Task

__all__ = ["Resuming", "Resumption", "find_resumable"]


@dataclass(frozen=True)
class Resumption:
    """An interrupted task found in the journal, with the messages it had kept."""

    record: JournalRecord
    messages: list[dict[str, Any]]

    @property
    def key(self) -> str:
        return self.record.key


class Resuming:
    """`resume` for `Session` (whose `delegate` picks up `_resuming` under `_lock`)."""

    journal: Journal | None
    _lock: threading.RLock
    _resuming: Resumption | None = None

    delegate: Callable[..., Task]

    def resume(self, task_id: str | JournalRecord, *,
               tools: Iterable[Callable[..., Any]] | None = None,
               toolsets: Iterable[str] | None = None) -> Task:
        """Restart an `interrupted` task of an earlier kernel from its journaled conversation
        (goal, context, messages, steering delivered) as a new task, returned at once; its
        `resumed_from` (and its status's) names the old task, which stays interrupted. Tool
        calls that had returned are not run again; one left running reads that it was
        interrupted, one that waited for approval (or had not started) that it did not run.
        `task_id`: "t3", or "kernel/t3" as `%list_tasks --history` shows it, a task's name
        (the newest kernel's interrupted task of that name), or a
        `JournalRecord` from `history()`. `tools` / `toolsets` as for `delegate`
        (notebook functions are not journaled: pass them again). Needs `journal=`. Raises
        `UnknownTaskError`, or `HermesError` in one line when the task is not interrupted
        or was resumed already."""
        check.optional(check.callables, "tools", tools)
        check.optional(check.names, "toolsets", toolsets, what="toolset names")
        found = find_resumable(self.journal, task_id)
        with self._lock:  # one resumption of a task, whichever thread asks
            _not_resumed(self.journal, found.record)  # again, now that no one else can
            self._resuming = found  # taken by delegate under the same lock
            try:
                record = found.record
                options: dict[str, Any] = {"name": record.name, "model": record.model,
                                           "tools": tools, "toolsets": toolsets}
                return self.delegate(record.goal, record.context, **options)
            finally:
                self._resuming = None


def find_resumable(journal: Journal | None, ref: object) -> Resumption:
    """The interrupted task `ref` names among earlier kernels' tasks in `journal`, with its
    conversation. Raises what `Session.resume` documents."""
    if journal is None:
        raise ConfigurationError("Resuming needs the journal: create the session with "
                                 "Session(..., journal=True) (%config HermesJupyter.journal "
                                 "= True).")
    record = _record(journal, ref)
    if record.state is not TaskState.INTERRUPTED:
        what = ("is still live in another kernel" if not record.state.terminal
                else f"has {record.state.value}")
        raise HermesError(f"Task {record.key} {what}; only an interrupted task can be "
                          "resumed: read its result with history(), or delegate its goal "
                          "again.")
    _not_resumed(journal, record)
    return Resumption(record, journal.conversation(record))


def _not_resumed(journal: Journal | None, record: JournalRecord) -> None:
    later = journal.resumed_by(record) if journal is not None else None
    if later is not None:
        raise HermesError(f"Task {record.key} was already resumed as {later}; resume {later} "
                          "if it was interrupted too, or delegate the goal again.")


def _record(journal: Journal, ref: object) -> JournalRecord:
    if isinstance(ref, JournalRecord):
        return ref
    if not isinstance(ref, str):
        raise InvalidArgumentType(f"Bad task_id: got {type(ref).__name__}; pass an id like "
                                  "'t3' or 'kernel/t3' (%list_tasks --history).")
    key = check.text("task_id", ref,
                     what="an id like 't3', 'kernel/t3' or a task's name").strip()
    kernel, _, task_id = key.rpartition("/")
    earlier = journal.records(exclude_session=journal.session_id)
    found = [r for r in earlier if r.id == task_id and kernel in ("", r.session)]
    if not found:
        return _named(key, earlier)
    interrupted = [r for r in found if r.state is TaskState.INTERRUPTED]
    if len(interrupted) > 1:
        raise HermesError(f"{len(interrupted)} interrupted tasks of earlier kernels are "
                          f"{task_id}: name one as kernel/id, e.g. {interrupted[-1].key} "
                          "(%list_tasks --history).")
    return (interrupted or found)[-1]


def _named(name: str, earlier: list[JournalRecord]) -> JournalRecord:
    """The task of earlier kernels named `name`: the newest kernel's interrupted one (else
    the newest of that name, for `find_resumable` to refuse)."""
    named = [r for r in earlier if r.name == name]
    if not named:
        known = [r.key for r in earlier if r.state is TaskState.INTERRUPTED]
        raise UnknownTaskError(name, known or None,
                               "" if known else "No interrupted task of an earlier kernel.",
                               see="%list_tasks --history (or history())")
    open_ = [r for r in named if r.state is TaskState.INTERRUPTED]
    newest = [r for r in open_ if r.session == open_[-1].session]
    if len(newest) > 1:
        raise HermesError(f"{len(newest)} interrupted tasks of kernel {newest[-1].session} are "
                          f"named {name!r}: {', '.join(r.key for r in newest)}; resume one by "
                          "its kernel/id.")
    return (newest or named)[-1]
