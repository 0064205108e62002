"""Views the notebook shows: a task table, one task's report, the settings.

Each is a plain object with `_repr_html_` for Jupyter and `_repr_pretty_` / `__repr__` for a
terminal, built from snapshots (`TaskStatus`), never from a task's internals. The same text
serves the parent-agent tools, so people and agents read the same words.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from typing import Any

from ._text import plural
from .models import TaskStatus

__all__ = ["SettingsView", "TaskReport", "TaskTable", "elapsed", "status_headline"]

_COLUMNS = ("id", "name", "state", "model", "elapsed", "calls", "tokens", "now / summary")
_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:2px 8px;text-align:left;vertical-align:top"


def elapsed(seconds: float) -> str:
    """`1.4s` under a minute, `2m 03s` above."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s"


def status_headline(status: TaskStatus) -> str:
    """One line: who, state, model, time, calls, tokens."""
    calls = plural(status.api_calls, "call")
    return (f"{status.label}: {status.state.value} · {status.model} · "
            f"{elapsed(status.elapsed_s)} · {calls} · {status.tokens} tokens")


class _TextView:
    """A view whose plain-text form (repr, IPython pretty printer) is `text()`."""

    def text(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())


class TaskReport(_TextView):
    """`%check_task`: one task's state, counters, steering and last lines of output.

    Attribute access falls through to the `TaskStatus`, so `%check_task t1`.state works.
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
        rows = [("goal", _short(s.goal, 200))]
        if not s.state.terminal:
            rows.append(("now", s.activity))
        if s.steering:
            rows.append(("steering", "; ".join(
                f"“{_short(r.message, 80)}” ({'delivered' if r.delivered else 'queued'})"
                for r in s.steering)))
        if s.error:
            rows.append(("error", s.error))
        if s.summary:
            rows.append(("summary", _short(s.summary, 300)))
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

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='{_CELL}'>{_e(k)}</th><td style='{_CELL}'>{_e(v)}</td></tr>"
            for k, v in self.rows())
        lines = self.lines()
        pre = (f"<pre style='margin:4px 0;max-height:12em;overflow:auto'>"
               f"{_e(chr(10).join(lines))}</pre>") if lines else ""
        return (f"<div><b>{_e(status_headline(self.status))}</b>"
                f"<table style='{_STYLE}'>{rows}</table>{pre}</div>")


class TaskTable(_TextView, Sequence[TaskStatus]):
    """`%list_tasks`: every task in creation order, with session totals. A sequence of
    `TaskStatus`, so `%list_tasks`[0].state works."""

    def __init__(self, statuses: list[TaskStatus]) -> None:
        self.statuses = list(statuses)

    def __len__(self) -> int:
        return len(self.statuses)

    def __getitem__(self, index: Any) -> Any:
        return self.statuses[index]

    def __iter__(self) -> Iterator[TaskStatus]:
        return iter(self.statuses)

    def cells(self) -> list[tuple[str, ...]]:
        return [(s.id, s.name or "", s.state.value, s.model, elapsed(s.elapsed_s),
                 str(s.api_calls), str(s.tokens), _now(s)) for s in self.statuses]

    def footer(self) -> str:
        if not self.statuses:
            return "No tasks yet: start one with %delegate GOAL."
        counts: dict[str, int] = {}
        for s in self.statuses:
            counts[s.state.value] = counts.get(s.state.value, 0) + 1
        by_state = ", ".join(f"{n} {state}" for state, n in counts.items())
        calls = sum(s.api_calls for s in self.statuses)
        tokens = sum(s.tokens for s in self.statuses)
        n = len(self.statuses)
        return f"{plural(n, 'task')}: {by_state} · {plural(calls, 'call')} · {tokens} tokens"

    def text(self) -> str:
        if not self.statuses:
            return self.footer()
        rows = [_COLUMNS, *self.cells()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
                 for r in rows]
        return "\n".join([*(line.rstrip() for line in lines), self.footer()])

    def _repr_html_(self) -> str:
        if not self.statuses:
            return f"<p>{_e(self.footer())}</p>"
        head = "".join(f"<th style='{_CELL}'>{_e(c)}</th>" for c in _COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td style='{_CELL}'>{_e(c)}</td>" for c in row) + "</tr>"
            for row in self.cells())
        return (f"<table style='{_STYLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f"</table><p style='font-size:0.85em'>{_e(self.footer())}</p>")


class SettingsView(_TextView):
    """`%hermes_config`: effective settings and where each came from (never a key's text)."""

    def __init__(self, rows: list[tuple[str, str, str]], session_line: str) -> None:
        self.rows = rows
        self.session_line = session_line

    def text(self) -> str:
        width = max(len(name) for name, _, _ in self.rows)
        lines = [f"{name:<{width}}  {value}  [{source}]" for name, value, source in self.rows]
        return "\n".join([*lines, self.session_line])

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='{_CELL}'>{_e(n)}</th><td style='{_CELL}'>{_e(v)}</td>"
            f"<td style='{_CELL};opacity:0.7'>{_e(s)}</td></tr>" for n, v, s in self.rows)
        return (f"<table style='{_STYLE}'><thead><tr><th style='{_CELL}'>setting</th>"
                f"<th style='{_CELL}'>value</th><th style='{_CELL}'>from</th></tr></thead>"
                f"<tbody>{body}</tbody></table><p style='font-size:0.85em'>"
                f"{_e(self.session_line)}</p>")


def _now(s: TaskStatus) -> str:
    if s.error:
        return _short(s.error, 60)
    if s.summary:
        return _short(s.summary, 60)
    return s.activity


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
