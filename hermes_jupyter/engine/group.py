"""Fan-out: one task per item of a batch, under one handle (`Session.map` → `TaskGroup`).

Every task of a group runs under the session's concurrency cap, key pool and retries like any
other; `max_concurrent` on the group caps how many of *its* tasks run at once within that cap
(the group then delegates the next item when one of its tasks ends, so the rest of the session
is never starved by one big batch).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import validate as check
from ..core.errors import CollectTimeout, HermesError, InvalidArgument, InvalidArgumentType
from ..core.models import TaskResult, TaskState, Usage
from ..core.text import plural
from .structured import jsonable
from .task import Task

__all__ = ["ITEM", "GroupBook", "GroupStatus", "TaskGroup", "fan_out", "goal_for", "item_text"]

ITEM = "{item}"  # the placeholder in a fan-out goal; every other brace stays as written
ITEM_TEXT_CAP = 4000  # characters of one item handed to its task
_COLUMNS = frozenset({"item", "id", "state", "tokens", "api_calls", "cost_usd", "error"})
# ^ to_pandas's own columns: an output field of one of these names gets "output." first


@dataclass(frozen=True)
class GroupStatus:
    """Counts by state and totals of a group at one instant."""

    total: int
    counts: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    """Tokens and calls of the group's tasks; `cost_usd` the known cost (USD) of those."""
    cost_unknown: int = 0
    """Tasks that made calls whose cost is unknown (not in `usage.cost_usd`)."""

    @property
    def done(self) -> int:
        return sum(n for state, n in self.counts.items() if TaskState(state).terminal)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: total, done, failed, counts by state, tokens, cost_usd, cost_unknown."""
        return {"total": self.total, "done": self.done, "failed": self.failed,
                "counts": dict(self.counts), "tokens": self.usage.total_tokens,
                "api_calls": self.usage.api_calls, "cost_usd": self.usage.cost_usd,
                "cost_unknown": self.cost_unknown}

    def __repr__(self) -> str:
        cost = "" if self.usage.cost_usd is None else f", ${self.usage.cost_usd:.4f}"
        return (f"<GroupStatus {self.done}/{self.total} done, {self.failed} failed, "
                f"{self.usage.total_tokens} tokens{cost}>")


class GroupBook:
    """The fan-out groups of one session (`session.attachment("groups", GroupBook)`), in
    creation order, with their ids ("g1", "g2", ...). Thread-safe."""

    def __init__(self, session: Any = None) -> None:
        self.session = session  # the `Session` whose groups these are (`Any`: no import cycle)
        self._lock = threading.Lock()
        self._groups: list[TaskGroup] = []
        self._issued = 0

    def next_id(self) -> str:
        """A new group id, never issued before in this session."""
        with self._lock:
            self._issued += 1
            return f"g{self._issued}"

    def add(self, group: TaskGroup) -> None:
        with self._lock:
            self._groups.append(group)

    def groups(self) -> list[TaskGroup]:
        with self._lock:
            return list(self._groups)

    def summaries(self) -> list[dict[str, Any]]:
        """One JSON-able dict per group: id, name, goal and its `GroupStatus.to_dict()`."""
        return [{"id": g.id, "name": g.name, "goal": g.goal, **g.check().to_dict()}
                for g in self.groups()]


Delegate = Callable[[str, str, str | None], Task]
MAP_OPTIONS = frozenset({"model", "tools", "toolsets", "max_iterations", "timeout", "owner",
                         "max_total_tokens", "max_cost_usd", "tool_timeout", "approval",
                         "approval_allowlist",
                         "approval_timeout", "output_type"})


def fan_out(delegate: Callable[..., Task], goal: object, items: object, name: object,
            context: object, max_concurrent: object, options: dict[str, Any],
            book: GroupBook) -> TaskGroup:
    """`Session.map`'s arguments checked, and its group started (`delegate` is the session's;
    `book` the session's groups, which gives the group its id and lists it for the faces)."""
    text = check.text("goal", goal, what="what each subagent should do with its {item}")
    listed = check_items(items)  # type: ignore[arg-type]
    label = check.optional(check.text, "name", name, what="a group name like 'reviews'")
    extra = check.text("context", context, empty_ok=True)
    limit = check.optional(check.count, "max_concurrent", max_concurrent)
    unknown = set(options) - MAP_OPTIONS
    if unknown:
        raise InvalidArgument(f"map() takes no {sorted(unknown)[0]!r}: pass delegate options "
                          f"({', '.join(sorted(MAP_OPTIONS))}).")

    group_id = book.next_id()

    def start(item_goal: str, item_context: str, item_name: str | None) -> Task:
        return delegate(item_goal, item_context, name=item_name, group_id=group_id, **options)

    group = TaskGroup(label, text.strip(), listed, extra, start, limit, group_id)
    group.session = book.session
    book.add(group)
    return group


class TaskGroup:
    """The tasks of one fan-out, in item order. Like a `Task`, it returns at once."""

    def __init__(self, name: str | None, goal: str, items: Sequence[Any], context: str,
                 delegate: Delegate, max_concurrent: int | None, group_id: str) -> None:
        self.id = group_id
        self.name = name
        self.goal = goal
        self.items = list(items)
        self.session: Any = None
        """The `Session` that runs the group (set by `Session.map`; `Any` here because
        session.py imports this module)."""
        self._context = context
        self._delegate = delegate
        self._limit = max_concurrent
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tasks: list[Task] = []
        self._live = 0  # tasks started and not ended: O(1) feeding however big the batch
        self._cancelled = False
        self._feed()

    # ---- the handle --------------------------------------------------------------------
    @property
    def tasks(self) -> list[Task]:
        """The tasks started so far, in item order (all of them once the group is fed)."""
        with self._lock:
            return list(self._tasks)

    def check(self) -> GroupStatus:
        tasks = self.tasks
        counts = {state.value: 0 for state in TaskState}
        usage = Usage()
        unknown = 0
        for task in tasks:
            status = task.check()
            counts[status.state.value] += 1
            usage = usage + Usage(status.prompt_tokens, status.completion_tokens,
                                  status.api_calls, status.cost_usd)
            unknown += status.api_calls > 0 and status.cost_usd is None
        counts["queued"] += len(self.items) - len(tasks) if not self._cancelled else 0
        if self._cancelled:
            counts["cancelled"] += len(self.items) - len(tasks)
        return GroupStatus(len(self.items), {k: v for k, v in counts.items() if v}, usage,
                           unknown)

    def done(self) -> bool:
        with self._lock:
            fed = self._cancelled or len(self._tasks) == len(self.items)
            return fed and all(t.done() for t in self._tasks)

    def collect(self, timeout: float | None = None) -> list[TaskResult]:
        """Every task's result, in item order, once all have ended. `CollectTimeout` (the
        group goes on) when `timeout` seconds pass first. Items never started because the
        group was cancelled have no result and are left out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            ok = self._changed.wait_for(
                lambda: self._cancelled or len(self._tasks) == len(self.items),
                None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not ok:
            raise CollectTimeout(self._still_running(timeout))
        results = []
        for task in self.tasks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                results.append(task.collect(left))
            except CollectTimeout:
                raise CollectTimeout(self._still_running(timeout)) from None
        return results

    def approve(self, *, remember: str | None = None) -> int:
        """Approve every tool call the group's tasks are waiting on now (`Session.approve`);
        how many. `remember` approves matching calls for the rest of the session too."""
        approved = 0
        for task in self.tasks:
            for pending in task.check().pending_approvals:
                try:
                    task.approve(pending.call_id, remember=remember)
                except HermesError:  # decided meanwhile (a timeout, a cancel, another user)
                    continue
                approved += 1
        return approved

    def cancel(self) -> int:
        """Cancel every live task and every item not yet started; how many were stopped."""
        with self._lock:
            skipped = len(self.items) - len(self._tasks) if not self._cancelled else 0
            self._cancelled = True
            tasks = list(self._tasks)
            self._changed.notify_all()
        return skipped + sum(task.cancel() for task in tasks if not task.done())

    def to_pandas(self) -> Any:
        """A DataFrame, one row per item started: item, id, state, summary (with an
        `output_type`: the output's fields as columns instead; empty when a task has no valid
        output), tokens, api_calls, cost_usd (None when unknown), error."""
        try:
            import pandas as pd
        except ImportError:
            raise HermesError("to_pandas() needs pandas: pip install pandas.") from None
        rows = []
        for item, task in zip(self.items, self.tasks, strict=False):
            status = task.check()
            result = task.result
            row: dict[str, Any] = {"item": item, "id": task.id, "state": status.state.value}
            spec = task.output_type
            if spec is None:
                row["summary"] = result.summary if result else None
            else:
                data = jsonable(result.data) if result is not None else None
                for key in spec.schema.get("properties") or {}:
                    column = key if key not in _COLUMNS else f"output.{key}"
                    row[column] = data.get(key) if isinstance(data, dict) else None
            row.update(tokens=status.tokens, api_calls=status.api_calls,
                       cost_usd=status.cost_usd, error=status.error)
            rows.append(row)
        return pd.DataFrame(rows)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        status = self.check()
        label = f" {self.name!r}" if self.name else ""
        failed = f", {status.failed} failed" if status.failed else ""
        cost = "" if status.usage.cost_usd is None else f", ${status.usage.cost_usd:.4f}"
        return f"<TaskGroup {self.id}{label}: {status.done}/{status.total} done{failed}{cost}>"

    # ---- feeding -----------------------------------------------------------------------
    def _feed(self) -> None:
        """Delegate items until the group's own limit is reached (all of them without one)."""
        while True:
            with self._lock:
                started = len(self._tasks)
                if (self._cancelled or started == len(self.items)
                        or (self._limit is not None and self._live >= self._limit)):
                    return
                index = started
                item = self.items[index]
                goal, context = goal_for(self.goal, item, self._context)
                name = f"{self.name}[{index}]" if self.name else None
                task = self._delegate(goal, context, name)
                self._tasks.append(task)
                self._live += 1
                self._changed.notify_all()
            task.add_done_callback(self._on_done)

    def _on_done(self, _task: Task) -> None:
        with self._lock:
            self._live -= 1
        try:
            self._feed()
        except HermesError:  # the session closed, or its budget is spent: stop feeding
            with self._lock:
                self._cancelled = True
                self._changed.notify_all()

    def _still_running(self, timeout: float | None) -> str:
        status = self.check()
        return (f"{status.done} of {plural(status.total, 'task')} ended within {timeout:g}s; "
                "the group goes on: collect it again later or cancel it.")


def goal_for(goal: str, item: Any, context: str) -> tuple[str, str]:
    """The goal and context of one item's task: the item replaces `{item}` in the goal, or,
    when the goal has no placeholder, is handed as context."""
    text = item_text(item)
    if ITEM in goal:
        return goal.replace(ITEM, text), context
    extra = f"Item:\n{text}"
    return goal, f"{context}\n\n{extra}" if context else extra


def item_text(item: Any) -> str:
    """An item as the model reads it: strings as they are, mappings and lists as JSON,
    anything else by `str`; capped at `ITEM_TEXT_CAP` characters."""
    if isinstance(item, str):
        text = item
    elif isinstance(item, dict | list | tuple):
        text = json.dumps(item, default=str, ensure_ascii=False)
    else:
        text = str(item)
    return text if len(text) <= ITEM_TEXT_CAP else text[:ITEM_TEXT_CAP] + "…"


def check_items(items: Iterable[Any]) -> list[Any]:
    """The items of a fan-out as a list; one clear line for what cannot be one."""
    if hasattr(items, "to_dict") and hasattr(items, "columns"):  # a DataFrame: its rows
        items = items.to_dict("records")
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidArgumentType(f"Bad items {type(items).__name__}: pass a list (or any "
                                  "iterable) of items, one task each.")
    out = list(items)
    if not out:
        raise InvalidArgument("Bad items: the list is empty; pass at least one item to map "
                              "over.")
    return out
