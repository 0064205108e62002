"""Immutable snapshots handed to every front-end: states, statuses, results, events.

Front-ends never read a task's internals; they get these plain, picklable, JSON-able values.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from .text import plural, short

__all__ = [
    "LIVE_STATES",
    "TERMINAL_STATES",
    "Event",
    "ExitReason",
    "PendingApproval",
    "SteerRecord",
    "TaskResult",
    "TaskState",
    "TaskStatus",
    "ToolTraceEntry",
    "Usage",
]


class TaskState(str, enum.Enum):
    """Life cycle: queued → running (⇄ awaiting_approval) → succeeded | failed | cancelled.

    `awaiting_approval`: between two model calls, a tool call waits for a person's decision;
    the task keeps its slot and holds no model call open."""

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
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
LIVE_STATES = frozenset(set(TaskState) - TERMINAL_STATES)
"""Every state a task can still leave: derive lists of live states from this, never by hand."""


class ExitReason(str, enum.Enum):
    """Why a task ended: the one table of ends (documented in docs/architecture.md).

    Each reason maps to one terminal state (`state`). Add new ends here, nowhere else.
    """

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SESSION_CLOSED = "session_closed"
    TIMEOUT = "timeout"
    MAX_ITERATIONS = "max_iterations"
    PROVIDER_ERROR = "provider_error"
    AUTH_FAILED = "auth_failed"
    QUOTA_EXHAUSTED = "quota_exhausted"
    RATE_LIMIT_CAP = "rate_limit_cap"
    BUDGET = "budget"
    EMPTY_ANSWER = "empty_answer"
    INVALID_OUTPUT = "invalid_output"
    TOOL_ERROR = "tool_error"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    DETACHED = "detached"

    def __str__(self) -> str:
        return self.value

    @property
    def state(self) -> TaskState:
        return _EXIT_STATES.get(self, TaskState.FAILED)

    @property
    def meaning(self) -> str:
        return _EXIT_MEANINGS[self]


_EXIT_STATES = {
    ExitReason.COMPLETED: TaskState.SUCCEEDED,
    ExitReason.MAX_ITERATIONS: TaskState.SUCCEEDED,
    ExitReason.CANCELLED: TaskState.CANCELLED,
    ExitReason.SESSION_CLOSED: TaskState.CANCELLED,
    ExitReason.INTERRUPTED: TaskState.INTERRUPTED,
    ExitReason.DETACHED: TaskState.INTERRUPTED,
}
_EXIT_MEANINGS = {
    ExitReason.COMPLETED: "the model gave its final answer",
    ExitReason.CANCELLED: "someone cancelled the task",
    ExitReason.SESSION_CLOSED: "the session closed while the task was live",
    ExitReason.TIMEOUT: "the task ran past its timeout",
    ExitReason.MAX_ITERATIONS: "the task used all its model calls (max_iterations) and gave "
                               "its summary in one last call without tools (truncated)",
    ExitReason.PROVIDER_ERROR: "the endpoint refused or failed the request for good",
    ExitReason.AUTH_FAILED: "every API key was rejected (401/403)",
    ExitReason.QUOTA_EXHAUSTED: "every API key is out of quota or credit (402, insufficient_quota)",
    ExitReason.RATE_LIMIT_CAP: "rate limits lasted longer than the cooldown cap",
    ExitReason.BUDGET: "the task reached max_total_tokens or max_cost_usd, or the session "
                       "spent session_budget_usd",
    ExitReason.EMPTY_ANSWER: "the model answered with nothing twice, even when asked again",
    ExitReason.INVALID_OUTPUT: "the final answer did not match the task's output_type, even "
                               "after one correction turn naming the errors",
    ExitReason.TOOL_ERROR: "a tool failed in a way the task cannot go on from",
    ExitReason.ERROR: "an unexpected error (a bug of ours or of a library)",
    ExitReason.INTERRUPTED: "the process running the task stopped before it ended",
    ExitReason.DETACHED: "this session let go of it (session.detach()); it goes on on its "
                         "Dask cluster, and a Session on the same journal and cluster "
                         "re-attaches to it",
}


@dataclass(frozen=True)
class Usage:
    """Token and call counters of one task (or, summed, of a session).

    `estimated`: some of the tokens were estimated from the text (about four characters a
    token) because the endpoint reported no usage (llama.cpp's server, refused
    `stream_options`); budgets count them all the same.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    api_calls: int = 0
    cost_usd: float | None = None
    """US dollars: reported by the provider or priced from a price table; None when unknown
    (see `engine/pricing.py`)."""
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        costs = [c for c in (self.cost_usd, other.cost_usd) if c is not None]
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.api_calls + other.api_calls,
            sum(costs) if costs else None,
            self.estimated or other.estimated,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "api_calls": self.api_calls,
            "cost_usd": self.cost_usd,
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
class PendingApproval:
    """One tool call waiting for a person's decision: `call_id` as the model named it,
    `tool`, its `arguments` (JSON text, redacted), `reason` it needs approval, and
    `requested_at` (epoch seconds)."""

    call_id: str
    tool: str
    arguments: str
    reason: str
    requested_at: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    cost_usd: float | None = None
    owner: str | None = None
    """Who started the task: None (the user), an agent's owner id, or a task id."""
    parent_id: str | None = None
    depth: int = 1
    pending_approvals: list[PendingApproval] = field(default_factory=list)
    """Tool calls waiting for `Session.approve` / `deny`, oldest first (while the state is
    `awaiting_approval`)."""
    group_id: str | None = None
    """The fan-out group (`Session.map`) the task belongs to, e.g. "g1"; None for the rest."""
    resumed_from: str | None = None
    """The interrupted task this one resumed (`Session.resume`), as "kernel/id"."""

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
    exit_reason: ExitReason
    error: str | None
    api_calls: int
    duration_s: float
    usage: Usage
    tool_trace: list[ToolTraceEntry] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list, repr=False)
    output: list[str] = field(default_factory=list, repr=False)
    truncated: bool = False
    """The summary is not the model's complete final answer (cut by the output limit, or
    partial after a stop)."""
    data: Any = field(default=None, repr=False)
    """With `output_type`: the validated final answer (an instance of a model class or a
    dataclass; a dict for a TypedDict or a JSON-schema dict), `summary` holding its raw text.
    None otherwise, and when the output stayed invalid (`exit_reason` "invalid_output"). A
    result rebuilt from the journal holds it as plain JSON (dicts and lists)."""

    @property
    def ok(self) -> bool:
        return self.state is TaskState.SUCCEEDED

    @property
    def label(self) -> str:
        return f"{self.id} {self.name!r}" if self.name else self.id

    def headline(self) -> str:
        """One line: state (and, unless it succeeded, its exit reason when that says more:
        `failed [timeout]`), model, time, calls, tokens, and whether the summary is truncated."""
        state, code = self.state.value, self.exit_reason.value
        if not self.ok and code != state:
            state = f"{state} [{code}]"
        cut = " · summary truncated" if self.truncated else ""
        return (
            f"{self.label}: {state} · {self.model} · {self.duration_s:.1f}s · "
            f"{plural(self.api_calls, 'call')} · {self.usage.total_tokens} tokens{cut}"
        )

    def reason(self) -> str | None:
        """One line saying why a task that did not succeed ended; None when it succeeded.

        `failed because the task ran past its timeout (timeout): <error>`.
        """
        if self.ok:
            return None
        meaning, code = self.exit_reason.meaning, self.exit_reason.value
        why = f"{self.state.value} because {meaning}"
        why += "" if code == self.state.value or f"({code})" in meaning else f" ({code})"
        return f"{why}: {short(self.error, 300)}" if self.error else why

    def __repr__(self) -> str:
        return f"<TaskResult {self.label}: {self.state.value}, {len(self.summary)} chars>"

    def __str__(self) -> str:
        """The summary; for a task that did not succeed, the reason first (never '')."""
        reason = self.reason()
        if reason is None:
            return self.summary
        return f"{reason}\n\n{self.summary}" if self.summary else reason

    def _repr_markdown_(self) -> str:
        body = self.summary or "_(no summary)_"
        reason = self.reason()
        if reason is not None:
            body = f"**{_markdown_escape(reason)}**\n\n{body}"
        return f"*{_markdown_escape(self.headline())}*\n\n{body}"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.headline())
        reason = self.reason()
        if reason is not None:
            p.break_()
            p.text(reason)
        if self.summary:
            p.break_()
            p.text(self.summary)


def _markdown_escape(text: str) -> str:
    """`*`, `_` and backticks in a one-line label or reason, shown as typed."""
    for ch in "\\`*_":
        text = text.replace(ch, "\\" + ch)
    return text


@dataclass(frozen=True)
class Event:
    """One typed, timestamped fact about a task (or, with task_id None, the session).

    Kinds: created, queued, started, model_call, text, tool_call, tool_result, steer_queued,
    steer_delivered, retry, key_cooldown, key_removed, waiting_for_key, rate_limit_cap,
    fields_dropped, approval_requested (call_id, tool, arguments, reason), approval_decided
    (call_id, tool, approved, by, reason), finished; and, with task_id None, agent_inbox
    (agent, waiting: a parent agent's queue of results changed).
    """

    kind: str
    task_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
