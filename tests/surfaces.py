"""Every surface a secret could leak to, in one list: `SURFACES`, name → text it shows.

The secret scan (tests/test_secrets_scan.py) drives failures of every kind, then greps each
surface's text for the planted secrets. A later issue that adds a surface (an MCP server's
log, a parent agent's conversation, a Dask worker's status) adds one entry here and is
checked the same way.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import hermes_jupyter as hj
from hermes_jupyter.engine.parent_tools import session_tools
from hermes_jupyter.engine.views import TaskReport, TaskTable, status_headline
from hermes_jupyter.notebook import views as html_views
from hermes_jupyter.notebook.comm import task_json
from hermes_jupyter.notebook.widgets import dashboard
from hermes_jupyter.notebook.widgets.cards import card
from hermes_jupyter.notebook.widgets.static_view import render_html, render_text
from hermes_jupyter.testing import FakeLLM


@dataclasses.dataclass
class Probe:
    """What a scan may look at after its scenarios ran (every task has ended)."""

    sessions: list[hj.Session]
    llms: list[FakeLLM]
    events: list[hj.Event]
    logs: Callable[[], str]
    raw_requests: list[bytes] = dataclasses.field(default_factory=list)
    shell: InteractiveShell | None = None
    journals: list[Path] = dataclasses.field(default_factory=list)

    @property
    def tasks(self) -> list[hj.Task]:
        return [t for s in self.sessions for t in s.tasks()]


def _dump(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False)


def _statuses(p: Probe) -> str:
    return "\n".join(repr(t.check()) + _dump(dataclasses.asdict(t.check())) for t in p.tasks)


def _results(p: Probe) -> str:
    out = []
    for task in p.tasks:
        result = task.collect(0)
        out += [repr(result), result._repr_markdown_(), _dump(dataclasses.asdict(result))]
    return "\n".join(out)


def _text_views(p: Probe) -> str:
    out = []
    for s in p.sessions:
        statuses = s.list_tasks()
        out += [TaskTable(statuses).text(), html_views.TaskTable(statuses)._repr_html_()]
        for status in statuses:
            out += [status_headline(status), TaskReport(status).text(),
                    html_views.TaskReport(status)._repr_html_()]
    return "\n".join(out)


def _journal(p: Probe) -> str:
    """Every row of every table, and the bytes of the database and its WAL file."""
    out = []
    for path in p.journals:
        with sqlite3.connect(path) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                out += [repr(row) for row in db.execute(f"SELECT * FROM {table}")]
        for file in path.parent.glob(path.name + "*"):
            out.append(file.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(out)


def _widget_state(p: Probe) -> str:
    out = []
    for s in p.sessions:
        widget = dashboard(s)
        widget.sync()
        out.append(_dump(widget.get_state()))
        cards = [card(t.check()) for t in s.tasks()]
        out += [render_text(cards, {}), render_html(cards, {})]
    return "\n".join(out)


def _panel_state(p: Probe) -> str:
    return _dump([task_json(t.check()) for t in p.tasks])


def _magics(p: Probe) -> str:
    """What the magics print and display about every task of the shell's session."""
    if p.shell is None:
        return ""
    lines = ["list_tasks", "hermes_config"]
    for task in hj.get_session().tasks():
        lines += [f"check_task {task.id}", f"collect_task {task.id}"]
    out = []
    for line in lines:
        name, _, arg = line.partition(" ")
        with capture_output() as cap:
            shown = p.shell.run_line_magic(name, arg)
        out += [cap.stdout, cap.stderr, repr(shown)]
        out += [_dump(o.data) for o in cap.outputs]
        if shown is not None:
            out.append(_dump(p.shell.display_formatter.format(shown)[0]))
    return "\n".join(out)


def _parent_tools(p: Probe) -> str:
    out = []
    for s in p.sessions:
        tools = {fn.__name__: fn for fn in session_tools(s)}
        out.append(tools["list_tasks"]())
        for task in s.tasks():
            out += [tools["check_task"](task.id), tools["collect_task"](task.id)]
    return "\n".join(out)


def _model_requests(p: Probe) -> str:
    """What the model servers received, less the Authorization header (the key's place)."""
    out = [_dump({"messages": r.messages, "tools": r.tools, "body": r.body})
           for llm in p.llms for r in llm.requests]
    out += [raw.decode("utf-8", errors="replace") for raw in p.raw_requests]
    return "\n".join(out)


SURFACES: dict[str, Callable[[Probe], str]] = {
    "session reprs": lambda p: "\n".join(repr(s) for s in p.sessions),
    "task reprs": lambda p: "\n".join(repr(t) for t in p.tasks),
    "statuses (check)": _statuses,
    "results (collect)": _results,
    "text and HTML views": _text_views,
    "events (subscribe)": lambda p: "\n".join(repr(e) for e in p.events),
    "journal rows and files": _journal,
    "dashboard widget state": _widget_state,
    "JupyterLab panel state": _panel_state,
    "magics output": _magics,
    "parent-agent tools": _parent_tools,
    "recorded model requests": _model_requests,
    "logs": lambda p: p.logs(),
}


def scan(probe: Probe, needles: list[str]) -> dict[str, list[str]]:
    """{surface: [needles found in it]} for every surface that shows one (empty: clean)."""
    hits: dict[str, list[str]] = {}
    for name, surface in SURFACES.items():
        text = surface(probe)
        found = [n for n in needles if n in text]
        if found:
            hits[name] = found
    return hits
