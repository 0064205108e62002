"""Immutable snapshots handed to every front-end: states, statuses, results, events.

Front-ends never read a task's internals; they get these plain, picklable, JSON-able values.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from .text import plural

__all__ = [
    "TERMINAL_STATES",
    "Event",
    "SteerRecord",
    "TaskResult",
    "TaskState",
    "TaskStatus",
    "ToolTraceEntry",
    "Usage",
]


class TaskState(str, enum.Enum):
    """Life cycle: queued → running → succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.INTERRUPTED}
)


@dataclass(frozen=True)
class Usage:
    """Token and call counters of one task (or, summed, of a session)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    api_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.api_calls + other.api_calls,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "api_calls": self.api_calls,
        }


@dataclass(frozen=True)
class SteerRecord:
    """One steering message: queued when accepted, delivered when the child saw it."""

    message: str
    queued_at: float
    delivered_at: float | None = None

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "queued_at": self.queued_at,
            "delivered_at": self.delivered_at,
            "delivered": self.delivered,
        }


@dataclass(frozen=True)
class ToolTraceEntry:
    """One tool call the child made, with a short preview of what came back."""

    name: str
    arguments: str
    result_preview: str
    ok: bool
    duration_s: float


@dataclass(frozen=True)
class TaskStatus:
    """What `check` answers: a consistent snapshot of one task at one instant."""

    id: str
    name: str | None
    state: TaskState
    model: str
    goal: str
    created_at: float
    elapsed_s: float
    api_calls: int
    prompt_tokens: int
    completion_tokens: int
    recent_output: list[str]
    activity: str
    last_tool: str | None
    steering: list[SteerRecord]
    error: str | None
    summary: str | None
    version: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def label(self) -> str:
        return f"{self.id} {self.name!r}" if self.name else self.id

    def __repr__(self) -> str:
        return (
            f"<TaskStatus {self.label}: {self.state.value} {self.elapsed_s:.1f}s, "
            f"{plural(self.api_calls, 'call')}, {self.tokens} tokens>"
        )

    def to_dict(self, tail: int | None = None) -> dict[str, Any]:
        """JSON-able form used by the dashboard and the JupyterLab comm."""
        d = dataclasses.asdict(self)
        d["state"] = self.state.value
        d["tokens"] = self.tokens
        d["steering"] = [s.to_dict() for s in self.steering]
        if tail is not None:
            d["recent_output"] = self.recent_output[-tail:] if tail else []
        return d


@dataclass(frozen=True)
class TaskResult:
    """What `collect` returns for every terminal state: a failure is a result, not a raise."""

    id: str
    name: str | None
    state: TaskState
    model: str
    summary: str
    exit_reason: str
    error: str | None
    api_calls: int
    duration_s: float
    usage: Usage
    tool_trace: list[ToolTraceEntry] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list, repr=False)
    output: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.state is TaskState.SUCCEEDED

    @property
    def label(self) -> str:
        return f"{self.id} {self.name!r}" if self.name else self.id

    def headline(self) -> str:
        """One line: state, model, time, calls, tokens."""
        return (
            f"{self.label}: {self.state.value} · {self.model} · {self.duration_s:.1f}s · "
            f"{plural(self.api_calls, 'call')} · {self.usage.total_tokens} tokens"
        )

    def __repr__(self) -> str:
        return f"<TaskResult {self.label}: {self.state.value}, {len(self.summary)} chars>"

    def __str__(self) -> str:
        return self.summary

    def _repr_markdown_(self) -> str:
        body = self.summary or "_(no summary)_"
        if self.error:
            body = f"{body}\n\n**Error:** {self.error}"
        return f"*{self.headline()}*\n\n{body}"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.headline())
        if self.error:
            p.break_()
            p.text(f"error: {self.error}")
        if self.summary:
            p.break_()
            p.text(self.summary)


@dataclass(frozen=True)
class Event:
    """One typed, timestamped fact about a task (or, with task_id None, the session).

    Kinds: created, queued, started, model_call, text, tool_call, tool_result, steer_queued,
    steer_delivered, retry, key_cooldown, key_removed, finished.
    """

    kind: str
    task_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
