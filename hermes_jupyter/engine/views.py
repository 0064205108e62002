"""Plain-text views of snapshots: one task's report and the task table.

People (terminal IPython, `repr`) and parent agents (the tools in `parent_tools`) read the same
words, so these live on the engine side; the notebook adds HTML on top (`notebook/views.py`).
Built from `TaskStatus` snapshots only, never from a task's internals.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..core.models import TaskState, TaskStatus
from ..core.text import plural, short
from .journal import JournalRecord

__all__ = [
    "COLUMNS", "HISTORY_COLUMNS", "HistoryTable", "TaskReport", "TaskTable", "TextView",
    "cost_text", "elapsed", "money", "status_headline", "task_cost",
]

COLUMNS = ("id", "name", "state", "model", "elapsed", "calls", "tokens", "cost",
           "now / summary")


def money(usd: float) -> str:
    """`$0.0123`: US dollars with four decimals (model calls cost fractions of a cent)."""
    return f"${usd:.4f}"


def cost_text(usd: float | None, unknown: int = 0) -> str:
    """A total of known costs and how many tasks have none: `$0.0123`,
    `$0.0123 (2 tasks without a price)`, `cost unknown (1 task without a price)`; "" when
    nothing was called yet."""
    missing = f" ({plural(unknown, 'task')} without a price)" if unknown else ""
    if usd is None:
        return f"cost unknown{missing}" if unknown else ""
    return money(usd) + missing


def task_cost(status: TaskStatus) -> str:
    """One task's cost: `$0.0012`, `no price` when its calls have none, "" before any call."""
    if status.cost_usd is not None:
        return money(status.cost_usd)
    return "no price" if status.api_calls else ""


def elapsed(seconds: float) -> str:
    """`1.4s` under a minute, `2m 03s` above."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s"


def status_headline(status: TaskStatus) -> str:
    """One line: who, state, model, time, calls, tokens and cost (when it made calls)."""
    calls = plural(status.api_calls, "call")
    cost = task_cost(status)
    return (f"{status.label}: {status.state.value} · {status.model} · "
            f"{elapsed(status.elapsed_s)} · {calls} · {status.tokens} tokens"
            + (f" · {cost}" if cost else ""))


class TextView:
    """A view whose plain-text form (repr, IPython pretty printer) is `text()`."""

    def text(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())


class TaskReport(TextView):
    """One task's state, counters, steering and last lines of output.

    Attribute access falls through to the `TaskStatus`, so `report.state` works.
    """

    def __init__(self, status: TaskStatus, tail: int = 6) -> None:
        self.status = status
        self.tail = tail

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.status, name)

    def rows(self) -> list[tuple[str, str]]:
        s = self.status
        rows = [("goal", short(s.goal, 200))]
        if not s.state.terminal:
            rows.append(("now", s.activity))
        for p in s.pending_approvals:
            rows.append(("approval", f"{p.call_id}: {p.tool}({short(p.arguments, 160)}) waits: "
                                     f"{p.reason}; approve or deny it (%approve_task {s.id} / "
                                     f"%deny_task {s.id})"))
        if s.steering:
            rows.append(("steering", "; ".join(
                f"“{short(r.message, 80)}” ({'delivered' if r.delivered else 'queued'})"
                for r in s.steering)))
        if s.error:
            rows.append(("error", s.error))
        if s.summary:
            rows.append(("summary", short(s.summary, 300)))
        return rows

    def lines(self) -> list[str]:
        return self.status.recent_output[-self.tail:] if self.tail else []

    def text(self) -> str:
        out = [status_headline(self.status)]
        out += [f"  {key:<9} {value}" for key, value in self.rows()]
        lines = self.lines()
        if lines:
            out.append(f"  last {plural(len(lines), 'line')} of output:")
            out += [f"    │ {line}" for line in lines]
        return "\n".join(out)


class TaskTable(TextView, Sequence[TaskStatus]):
    """Every task in creation order, with totals. A sequence of `TaskStatus`, so
    `table[0].state` works. `start_with`: how the reader starts a task, said when there
    is none (a parent agent's tools say "delegate_task")."""

    def __init__(self, statuses: list[TaskStatus], start_with: str = "%delegate GOAL") -> None:
        self.statuses = list(statuses)
        self.start_with = start_with

    def __len__(self) -> int:
        return len(self.statuses)

    def __getitem__(self, index: Any) -> Any:
        return self.statuses[index]

    def __iter__(self) -> Iterator[TaskStatus]:
        return iter(self.statuses)

    def cells(self) -> list[tuple[str, ...]]:
        return [(s.id, s.name or "", s.state.value, s.model, elapsed(s.elapsed_s),
                 str(s.api_calls), str(s.tokens), task_cost(s), _now(s))
                for s in self.statuses]

    def footer(self) -> str:
        if not self.statuses:
            return f"No tasks yet: start one with {self.start_with}."
        counts: dict[str, int] = {}
        for s in self.statuses:
            counts[s.state.value] = counts.get(s.state.value, 0) + 1
        by_state = ", ".join(f"{n} {state}" for state, n in counts.items())
        calls = sum(s.api_calls for s in self.statuses)
        tokens = sum(s.tokens for s in self.statuses)
        n = len(self.statuses)
        known = [s.cost_usd for s in self.statuses if s.cost_usd is not None]
        unknown = sum(1 for s in self.statuses if s.cost_usd is None and s.api_calls)
        cost = cost_text(sum(known) if known else None, unknown)
        return (f"{plural(n, 'task')}: {by_state} · {plural(calls, 'call')} · {tokens} tokens"
                + (f" · {cost}" if cost else ""))

    def text(self) -> str:
        if not self.statuses:
            return self.footer()
        rows = [COLUMNS, *self.cells()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
                 for r in rows]
        return "\n".join([*(line.rstrip() for line in lines), self.footer()])


def _now(s: TaskStatus) -> str:
    if s.pending_approvals:
        p = s.pending_approvals[0]
        more = f" (+{len(s.pending_approvals) - 1} more)" if len(s.pending_approvals) > 1 else ""
        return f"awaiting approval: {p.call_id} {p.tool}({short(p.arguments, 40)}){more}"
    if s.error:
        return short(s.error, 60)
    if s.summary and s.state is TaskState.CANCELLED:
        return short(f"cancelled; partial: {s.summary}", 60)
    if s.summary:
        return short(s.summary, 60)
    return s.activity


HISTORY_COLUMNS = ("kernel", "id", "name", "state", "model", "started", "exit", "summary / error")


class HistoryTable(TextView, Sequence[JournalRecord]):
    """Tasks of earlier kernels from the journal, oldest first. A sequence of
    `JournalRecord`, so `table[0].result()` rebuilds a `TaskResult`. `interrupted` marks a
    task its kernel left unfinished."""

    def __init__(self, records: list[JournalRecord]) -> None:
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: Any) -> Any:
        return self.records[index]

    def __iter__(self) -> Iterator[JournalRecord]:
        return iter(self.records)

    def cells(self) -> list[tuple[str, ...]]:
        return [(r.session, r.id, r.name or "", _history_state(r), r.model,
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
                 r.exit_reason or "", short(r.error or r.summary or "", 60))
                for r in self.records]

    def footer(self) -> str:
        if not self.records:
            return "No tasks of earlier kernels in the journal."
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r.state.value] = counts.get(r.state.value, 0) + 1
        by_state = ", ".join(f"{n} {state}" for state, n in counts.items())
        kernels = len({r.session for r in self.records})
        unended = sum(1 for r in self.records if not r.has_result)
        gives = ("table[i].result() gives a TaskResult" if not unended else
                 "table[i].result() gives a TaskResult, or None for a task that never ended "
                 "(interrupted)")
        return (f"{plural(len(self.records), 'task')} of {plural(kernels, 'earlier kernel')}: "
                f"{by_state} · {gives}")

    def text(self) -> str:
        if not self.records:
            return self.footer()
        rows = [HISTORY_COLUMNS, *self.cells()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(HISTORY_COLUMNS) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
                 for r in rows]
        return "\n".join([*(line.rstrip() for line in lines), self.footer()])


def _history_state(record: JournalRecord) -> str:
    if record.state is TaskState.INTERRUPTED:
        return "interrupted ⚠"
    return str(record.state.value)
