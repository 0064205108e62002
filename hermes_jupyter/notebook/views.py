"""What the notebook shows: the engine's text views with an HTML form, and the settings.

`TaskReport` and `TaskTable` are the engine's plain-text views (`engine/views.py`, which parent
agents read too) plus `_repr_html_` for Jupyter; `SettingsView` is `%hermes_config`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.secrets import Secrets
from ..engine import views as text_views
from ..engine.views import COLUMNS, HISTORY_COLUMNS, TextView, elapsed, status_headline
from ..tools import McpServerInfo, McpServers

__all__ = ["HistoryTable", "SettingsView", "TaskReport", "TaskTable", "elapsed", "group_bundle",
           "mcp_status_of", "register_displays", "status_headline"]

GROUP_TYPE = ("hermes_jupyter.engine.group", "TaskGroup")

_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:2px 8px;text-align:left;vertical-align:top"


class TaskReport(text_views.TaskReport):
    """`%check_task`: one task's report, as text and as HTML."""

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='{_CELL}'>{_e(k)}</th><td style='{_CELL}'>{_e(v)}</td></tr>"
            for k, v in self.rows())
        lines = self.lines()
        pre = (f"<pre style='margin:4px 0;max-height:12em;overflow:auto'>"
               f"{_e(chr(10).join(lines))}</pre>") if lines else ""
        return (f"<div><b>{_e(status_headline(self.status))}</b>"
                f"<table style='{_STYLE}'>{rows}</table>{pre}</div>")


class TaskTable(text_views.TaskTable):
    """`%list_tasks`: the task table, as text and as HTML."""

    def _repr_html_(self) -> str:
        if not self.statuses:
            return f"<p>{_e(self.footer())}</p>"
        return _table(COLUMNS, self.cells(), self.footer())


class HistoryTable(text_views.HistoryTable):
    """`%list_tasks --history`: tasks of earlier kernels, as text and as HTML."""

    def _repr_html_(self) -> str:
        return _table(HISTORY_COLUMNS, self.cells(), self.footer()) if self.records else \
            f"<p>{_e(self.footer())}</p>"


class SettingsView(TextView):
    """`%hermes_config`: effective settings and where each came from (never a key's text)."""

    def __init__(self, rows: list[tuple[str, str, str]], session_line: str,
                 servers: Sequence[McpServerInfo] = ()) -> None:
        self.rows = rows
        self.session_line = session_line
        self.servers = list(servers)

    def server_lines(self) -> list[str]:
        """One line per MCP server: where it is, its state, its tools (no env or headers)."""
        out = []
        for info in self.servers:
            tools = ", ".join(info.tools) if info.tools is not None else (
                "listed once it starts (%hermes_config --connect)")
            out.append(f"mcp:{info.name}  {info.where} · {info.state} · tools: {tools}")
        return out

    def text(self) -> str:
        width = max(len(name) for name, _, _ in self.rows)
        lines = [f"{name:<{width}}  {value}  [{source}]" for name, value, source in self.rows]
        servers = ["MCP servers:", *(f"  {s}" for s in self.server_lines())] \
            if self.servers else []
        return "\n".join([*lines, *servers, self.session_line])

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='{_CELL}'>{_e(n)}</th><td style='{_CELL}'>{_e(v)}</td>"
            f"<td style='{_CELL};opacity:0.7'>{_e(s)}</td></tr>" for n, v, s in self.rows)
        return (f"<table style='{_STYLE}'><thead><tr><th style='{_CELL}'>setting</th>"
                f"<th style='{_CELL}'>value</th><th style='{_CELL}'>from</th></tr></thead>"
                f"<tbody>{body}</tbody></table>{self._servers_html()}"
                f"<p style='font-size:0.85em'>{_e(self.session_line)}</p>")

    def _servers_html(self) -> str:
        if not self.servers:
            return ""
        items = "".join(f"<li><code>{_e(line)}</code></li>" for line in self.server_lines())
        return f"<p style='margin:4px 0'>MCP servers:</p><ul style='margin:0'>{items}</ul>"


def register_displays(ip: Any) -> None:
    """Make this IPython display a `TaskGroup` as its live progress bar (`group_bundle`).

    Registered by module and class name, so nothing is imported until a group is shown;
    calling it again changes nothing. Other frontends keep the group's plain repr.
    """
    ip.display_formatter.mimebundle_formatter.for_type_by_name(*GROUP_TYPE, group_bundle)


def group_bundle(group: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A group's MIME bundle: the progress widget, its line as text and as HTML."""
    from .widgets.progress import progress

    return progress(group)._repr_mimebundle_()


def mcp_status_of(servers: Mapping[str, Any]) -> list[McpServerInfo]:
    """How configured MCP servers look before any session started them (no I/O)."""
    return McpServers(servers, Secrets(), Path.cwd()).status()


def _table(columns: tuple[str, ...], cells: list[tuple[str, ...]], footer: str) -> str:
    head = "".join(f"<th style='{_CELL}'>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{_e(c)}</td>" for c in row) + "</tr>"
        for row in cells)
    return (f"<table style='{_STYLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table><p style='font-size:0.85em'>{_e(footer)}</p>")


def _e(text: str) -> str:
    return html.escape(text, quote=True)
