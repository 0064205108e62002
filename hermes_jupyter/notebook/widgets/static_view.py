"""The dashboard without widgets: a static HTML table and a plain-text table.

nbconvert, GitHub, nbviewer and terminal IPython cannot run the widget; they render these
instead (the dashboard puts both next to its widget view in one MIME bundle). Both are drawn
from the same cards as the live view, as they were when the cell displayed the dashboard.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from ...core.text import plural
from .cards import STATES

__all__ = ["header_line", "render_html", "render_text", "snapshot_note"]

LIVE_HINT = "run %hermes_dashboard (or hj.dashboard()) for a live one"

_COLORS = {
    "running": "#1a73e8", "queued": "#757575", "succeeded": "#188038",
    "failed": "#d93025", "cancelled": "#e37400", "interrupted": "#8e24aa",
}
_TABLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd"


_SHOWN_WHEN_ANY = ("interrupted", "awaiting_approval")  # rare states: shown when present


def header_line(totals: dict[str, Any]) -> str:
    """`2 running · 1 queued · … · 1,234 tokens · 5 calls`."""
    counts = totals.get("counts", {})
    parts = [f"{counts.get(s, 0)} {s.replace('_', ' ')}" for s in STATES
             if s not in _SHOWN_WHEN_ANY or counts.get(s)]
    parts.append(f"{totals.get('tokens', 0):,} tokens")
    parts.append(plural(int(totals.get("api_calls", 0)), "call"))
    return " · ".join(parts)


def snapshot_note(at: float) -> str:
    """`Snapshot of 2026-11-30 12:03:04 UTC, not live: run %hermes_dashboard ... for a live one`."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return f"Snapshot of {stamp}, not live: {LIVE_HINT}."


def render_text(cards: Sequence[dict[str, Any]], totals: dict[str, Any],
                at: float | None = None) -> str:
    """A fixed-width table for terminals and `text/plain` readers, taken at `at` (epoch s)."""
    at = time.time() if at is None else at
    lines = [f"Hermes tasks: {header_line(totals)}", snapshot_note(at)]
    rows = [(_label(c), c["state"] if c.get("terminal", True) else f"{c['state']} then",
             c["model"], _elapsed(c["elapsed_s"]),
             plural(c["api_calls"], "call"), f"{c['tokens']:,} tok", _now(c)) for c in cards]
    if not rows:
        return "\n".join(lines) + "\n(no tasks yet)"
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        cols = [v.ljust(w) for v, w in zip(row[:6], widths, strict=True)]
        lines.append("  ".join([*cols, row[6]]).rstrip())
    return "\n".join(lines)


def render_html(cards: Sequence[dict[str, Any]], totals: dict[str, Any],
                at: float | None = None) -> str:
    """A self-contained HTML table (inline styles only: no scripts, no classes needed).

    Labelled as a snapshot taken at `at` (epoch seconds, default now): a saved notebook shows
    it long after, and a task "running" in it was running then, not now.
    """
    at = time.time() if at is None else at
    head = "".join(
        f'<th style="{_CELL}">{h}</th>'
        for h in ("task", "state", "model", "elapsed", "calls", "tokens", "now / result")
    )
    body = "".join(_row(c) for c in cards) or (
        f'<tr><td colspan="7" style="{_CELL}"><i>no tasks yet</i></td></tr>'
    )
    return (
        '<div class="hermes-dashboard-static">'
        f"<p><b>Hermes tasks</b>: {html.escape(header_line(totals))}<br>"
        f'<i style="opacity:0.75">{html.escape(snapshot_note(at))}</i></p>'
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</div>"
    )


def _row(c: dict[str, Any]) -> str:
    color = _COLORS.get(c["state"], "#757575")
    state = c["state"] if c.get("terminal", True) else f"{c['state']} then"
    badge = (f'<span style="color:#fff;background:{color};border-radius:3px;padding:0 5px">'
             f"{html.escape(state)}</span>")
    cells = (
        f"<b>{html.escape(c['name'] or '')}</b> <code>{html.escape(c['id'])}</code>",
        badge,
        html.escape(c["model"]),
        _elapsed(c["elapsed_s"]),
        str(c["api_calls"]),
        f"{c['tokens']:,}",
        html.escape(_now(c)),
    )
    return "<tr>" + "".join(f'<td style="{_CELL}">{v}</td>' for v in cells) + "</tr>"


def _label(c: dict[str, Any]) -> str:
    return f"{c['id']} {c['name']!r}" if c["name"] else c["id"]


def _now(c: dict[str, Any]) -> str:
    """What the task does now, or on finish the first line of its summary or error."""
    if c["error"]:
        return "error: " + str(c["error"]).splitlines()[0]
    if c["summary"]:
        return str(c["summary"]).strip().splitlines()[0]
    return str(c["activity"])


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
