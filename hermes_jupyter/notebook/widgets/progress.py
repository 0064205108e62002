"""A fan-out group in a notebook: one progress bar (done / total, failures, tokens, cost).

Displaying a `TaskGroup` (a cell's value, `display(group)`, what `session.map` and
`%delegate --each` return) shows `progress(group)`: an anywidget whose one synced trait,
`progress`, is the group's line of the session header (`refresher.session_totals` "groups").
Updates come from the session's refresher, so at most 10 a second and none while nothing
changed, each one comm message; once every item has ended the bar shows its last state and
stops listening. Frontends without widgets (nbconvert, terminals) get the same line as text
and HTML, as it was when the group was displayed.
"""

from __future__ import annotations

import html
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ...engine.refresher import get_refresher
from .static_view import group_line

if TYPE_CHECKING:
    from ...core.models import TaskStatus
    from ...engine.group import TaskGroup

__all__ = ["GroupProgress", "progress"]

_HERE = Path(__file__).parent
_cache_lock = threading.Lock()
_bars: weakref.WeakKeyDictionary[TaskGroup, GroupProgress] = weakref.WeakKeyDictionary()


def progress(group: TaskGroup) -> GroupProgress:
    """The live progress bar of `group`: one widget per group, so every place that shows the
    group shows the same bar."""
    with _cache_lock:
        bar = _bars.get(group)
        if bar is None or bar.comm is None:
            bar = _bars[group] = GroupProgress(group)
        return bar


class GroupProgress(anywidget.AnyWidget):
    """done / total, failures, tokens and cost of one `TaskGroup`, updated in place.

    `progress` (synced) holds: id, name, goal, total, done, failed, counts by state, tokens,
    api_calls, cost_usd (known cost, USD, or None), cost_unknown (tasks without a price) and
    `ended` (every item has ended: no more updates).
    """

    _esm = _HERE / "progress.js"
    progress = traitlets.Dict().tag(sync=True)

    def __init__(self, group: TaskGroup, **kwargs: Any) -> None:
        self.group = group
        self._lock = threading.Lock()
        self._ready = False  # the comm is open with a line taken after the sink was in
        self._remove: Callable[[], None] | None = None
        if group.session is not None and not group.done():
            # The sink first, then the state the comm opens with (under the lock): a tick
            # taken before that state is dropped, a later one is sent, nothing is lost.
            self._remove = get_refresher(group.session).add_sink(self._on_tick)
        with self._lock:
            super().__init__(progress=_line(group.id, group.name, group.goal,
                                            group.check().to_dict()), **kwargs)
            self._ready = True
        if self.progress["ended"]:
            self._stop()

    @property
    def live(self) -> bool:
        """Still listening to the refresher (False once the group has ended)."""
        return self._remove is not None

    def close(self) -> None:
        self._stop()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The widget view, plus the line as text and HTML for frontends without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        return {**data, "text/plain": group_line(self.progress),
                "text/html": render_html(self.progress)}, metadata

    # ---- refresher thread ----------------------------------------------------------------
    def _on_tick(self, _changed: list[TaskStatus], totals: dict[str, Any]) -> None:
        entry = next((g for g in totals.get("groups", []) if g["id"] == self.group.id), None)
        if entry is not None:
            self._show(entry)

    def _show(self, entry: dict[str, Any]) -> None:
        """Send the group's line if it changed (one comm message); stop once it has ended."""
        line = _line(entry["id"], entry.get("name"), entry.get("goal", ""), entry)
        with self._lock:
            if not self._ready or (self.progress.get("ended") and not line["ended"]):
                return  # a tick computed before the end, landing after it
            if line != self.progress:
                self.progress = line
        if line["ended"]:
            self._stop()

    def _stop(self) -> None:
        with self._lock:
            remove, self._remove = self._remove, None
        if remove is not None:
            remove()


def render_html(p: dict[str, Any]) -> str:
    """A static bar: `<progress>` and the group's line (inline styles, no script)."""
    return (f'<div class="hermes-group-static"><progress max="{max(1, p["total"])}" '
            f'value="{p["done"]}" style="width:12em;vertical-align:middle"></progress> '
            f"{html.escape(group_line(p))}</div>")


def _line(group_id: str, name: str | None, goal: str, status: dict[str, Any]) -> dict[str, Any]:
    keys = ("total", "done", "failed", "counts", "tokens", "api_calls", "cost_usd",
            "cost_unknown")
    line = {"id": group_id, "name": name, "goal": goal[:300], **{k: status[k] for k in keys}}
    line["ended"] = line["done"] >= line["total"]
    return line
