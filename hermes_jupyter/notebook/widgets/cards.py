"""The dashboard's wire format: one JSON "card" per task, plus the header totals.

Cards are what the browser view renders, what a saved notebook keeps as widget state and what
the static HTML table is drawn from. They are bounded: a running task carries its last
`TAIL_LINES` lines of output, a finished one `FINISHED_TAIL_LINES`, every string is clipped, so
a tick's message stays small whatever the task printed.
"""

from __future__ import annotations

from typing import Any

from ...core.models import TaskState, TaskStatus

__all__ = [
    "FINISHED_TAIL_LINES",
    "STATES",
    "TAIL_LINES",
    "card",
    "clip",
    "newest_first",
    "totals_card",
]

TAIL_LINES = 10
"""Lines of recent output a live task's card carries."""
FINISHED_TAIL_LINES = 5
"""Lines kept on a finished task's card (it shows its summary or error instead)."""
SUMMARY_LINES = 6
STATES = tuple(s.value for s in sorted(
    TaskState, key=lambda s: (s.terminal, s is not TaskState.RUNNING)))
"""Every state, from `core.models.TaskState` (running first, live before ended): the header
counts, the filter and the static table follow it; dashboard.js reads it from `_totals`."""
_LINE = 300
_TEXT = 800


def card(status: TaskStatus) -> dict[str, Any]:
    """The JSON card of one task snapshot; equal snapshots give equal cards."""
    terminal = status.state.terminal
    tail = status.recent_output[-(FINISHED_TAIL_LINES if terminal else TAIL_LINES):]
    return {
        "id": status.id,
        "name": status.name,
        "state": status.state.value,
        "terminal": terminal,
        "model": status.model,
        "goal": clip(status.goal, _LINE),
        "elapsed_s": round(status.elapsed_s, 1),
        "api_calls": status.api_calls,
        "tokens": status.tokens,
        "activity": clip(status.activity, 120),
        "last_tool": status.last_tool,
        "tail": [clip(line, _LINE) for line in tail],
        "steering": [
            {"message": clip(s.message, _LINE), "delivered": s.delivered}
            for s in status.steering
        ],
        "summary": _head(status.summary) if terminal else None,
        "error": clip(status.error, _TEXT) if status.error else None,
        "version": status.version,
    }


def totals_card(totals: dict[str, Any]) -> dict[str, Any]:
    """The header: counts by state, token and call totals (from `refresher.session_totals`)."""
    return {
        "counts": {s: int(totals.get("counts", {}).get(s, 0)) for s in STATES},
        "tokens": int(totals.get("total_tokens", 0)),
        "api_calls": int(totals.get("api_calls", 0)),
    }


def newest_first(cards: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards ordered as the view shows them: the newest task (highest id number) first."""
    return sorted(cards.values(), key=lambda c: _number(c["id"]), reverse=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _head(summary: str | None) -> str | None:
    if not summary:
        return summary
    lines = summary.strip().splitlines()
    head = "\n".join(lines[:SUMMARY_LINES])
    if len(lines) > SUMMARY_LINES:
        head += "\n…"
    return clip(head, _TEXT)


def _number(task_id: str) -> int:
    digits = task_id[1:]
    return int(digits) if digits.isdigit() else -1
