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
from ...engine.views import cost_text, money
from .cards import STATES

__all__ = ["agent_line", "group_line", "header_line", "render_html", "render_text",
           "snapshot_note"]

LIVE_HINT = "run %hermes_dashboard (or hj.dashboard()) for a live one"

_COLORS = {
    "running": "#1a73e8", "queued": "#757575", "succeeded": "#188038",
    "failed": "#d93025", "cancelled": "#e37400", "interrupted": "#8e24aa",
    "awaiting_approval": "#b06000",
}
_TABLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd"


_SHOWN_WHEN_ANY = ("interrupted", "awaiting_approval")  # rare states: shown when present


def header_line(totals: dict[str, Any]) -> str:
    """`2 running · 1 queued · … · 1,234 tokens · 5 calls · $0.0123 (1 task without a
    price) · 2 results waiting for the parent` (cost and waiting only when there are some)."""
    counts = totals.get("counts", {})
    parts = [f"{counts.get(s, 0)} {s.replace('_', ' ')}" for s in STATES
             if s not in _SHOWN_WHEN_ANY or counts.get(s)]
    parts.append(f"{totals.get('tokens', 0):,} tokens")
    parts.append(plural(int(totals.get("api_calls", 0)), "call"))
    cost = cost_text(totals.get("cost_usd"), int(totals.get("cost_unknown", 0)))
    if cost:
        parts.append(cost)
    if totals.get("waiting"):
        parts.append(f"{plural(int(totals['waiting']), 'result')} waiting for the parent")
    return " · ".join(parts)


def agent_line(a: dict[str, Any]) -> str:
    """`agent planner: 2 results waiting for the parent (3 started, 1 live)`."""
    wait = f": {plural(a['waiting'], 'result')} waiting for the parent" if a["waiting"] else ""
    return f"agent {a['name']}{wait} ({a['children']} started, {a['live']} live)"


def group_line(g: dict[str, Any]) -> str:
    """`group g1 'letters': 3/5 done · 1 failed · 1,234 tokens · $0.0012`."""
    label = f"{g['id']} {g['name']!r}" if g.get("name") else g["id"]
    failed = f" · {g['failed']} failed" if g.get("failed") else ""
    cost = cost_text(g.get("cost_usd"), int(g.get("cost_unknown", 0)))
    return (f"group {label}: {g['done']}/{g['total']} done{failed} · "
            f"{g.get('tokens', 0):,} tokens" + (f" · {cost}" if cost else ""))


def snapshot_note(at: float) -> str:
    """`Snapshot of 2026-11-30 12:03:04 UTC, not live: run %hermes_dashboard ... for a live one`."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return f"Snapshot of {stamp}, not live: {LIVE_HINT}."


def render_text(cards: Sequence[dict[str, Any]], totals: dict[str, Any],
                at: float | None = None) -> str:
    """A fixed-width table for terminals and `text/plain` readers, taken at `at` (epoch s)."""
    at = time.time() if at is None else at
    lines = [f"Hermes tasks: {header_line(totals)}", snapshot_note(at)]
    rows = [("  " * int(c.get("indent", 0)) + (c.get("row") or _label(c)), "", "", "", "", "",
             "", "") if c.get("row") else ("  " * int(c.get("indent", 0)) + _label(c),
             c["state"] if c.get("terminal", True) else f"{c['state']} then",
             c["model"], _elapsed(c["elapsed_s"]),
             plural(c["api_calls"], "call"), f"{c['tokens']:,} tok", _cost(c), _now(c))
            for c in cards]
    if not rows:
        return "\n".join(lines) + "\n(no tasks yet)"
    widths = [max((len(r[i]) for r in rows if r[1]), default=0) for i in range(7)]
    for row in rows:
        if not row[1]:  # an agent's or a group's line
            lines.append(row[0])
            continue
        cols = [v.ljust(w) for v, w in zip(row[:7], widths, strict=True)]
        lines.append("  ".join([*cols, row[7]]).rstrip())
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
        for h in ("task", "state", "model", "elapsed", "calls", "tokens", "cost", "now / result")
    )
    body = "".join(_row(c) for c in cards) or (
        f'<tr><td colspan="8" style="{_CELL}"><i>no tasks yet</i></td></tr>'
    )
    return (
        '<div class="hermes-dashboard-static">'
        f"<p><b>Hermes tasks</b>: {html.escape(header_line(totals))}<br>"
        f'<i style="opacity:0.75">{html.escape(snapshot_note(at))}</i></p>'
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</div>"
    )


def _row(c: dict[str, Any]) -> str:
    if c.get("row"):  # a parent agent or a fan-out group
        pad = f"padding-left:{1.2 * int(c.get('indent', 0))}em"
        return (f'<tr><td colspan="8" style="{_CELL};{pad}"><i>{html.escape(c["row"])}</i>'
                "</td></tr>")
    color = _COLORS.get(c["state"], "#757575")
    state = c["state"] if c.get("terminal", True) else f"{c['state']} then"
    badge = (f'<span style="color:#fff;background:{color};border-radius:3px;padding:0 5px">'
             f"{html.escape(state)}</span>")
    pad = f"padding-left:{1.2 * int(c.get('indent', 0))}em"
    cells = (
        f"<span style=\"{pad}\"><b>{html.escape(c['name'] or '')}</b> "
        f"<code>{html.escape(c['id'])}</code></span>",
        badge,
        html.escape(c["model"]),
        _elapsed(c["elapsed_s"]),
        str(c["api_calls"]),
        f"{c['tokens']:,}",
        _cost(c),
        html.escape(_now(c)),
    )
    return "<tr>" + "".join(f'<td style="{_CELL}">{v}</td>' for v in cells) + "</tr>"


def _cost(c: dict[str, Any]) -> str:
    if c.get("cost_usd") is not None:
        return money(c["cost_usd"])
    return "no price" if c.get("api_calls") else ""


def _label(c: dict[str, Any]) -> str:
    return f"{c['id']} {c['name']!r}" if c["name"] else c["id"]


def _now(c: dict[str, Any]) -> str:
    """What the task does now, or on finish the first line of its summary or error."""
    if c["error"]:
        return "error: " + str(c["error"]).splitlines()[0]
    if c.get("pending"):
        p = c["pending"][0]
        return f"awaiting approval: {p['call_id']} {p['tool']}"
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
