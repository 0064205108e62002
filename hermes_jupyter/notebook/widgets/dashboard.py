"""`dashboard()`: one live widget per session, a card per task, steer / collect / cancel,
approve / deny a waiting tool call; tasks as a tree (parent agents, children under their
parent, one card per fan-out group; `cards.layout`).

Updates: the session's refresher (one thread, at most 10 ticks a second, none while idle)
hands the dashboard the snapshots that changed in a tick; they become cards, cards equal to
what the frontend already has are dropped, and the rest leave as ONE partial state update of
the widget model, whatever the number of tasks. The model's state holds one key per task
(`task:t3` → its card) plus `_ids` (every task id, oldest first), `_layout` (the tree's rows)
and `_totals`, so an update carries only what changed, yet the state is always whole: a
reloaded page (`request_state`), a notebook saved by JupyterLab and one executed by nbclient /
nbval all get every card.

Threads: updates leave from the refresher thread; clicks arrive on the shell thread or, with
ipykernel 7 and JupyterLab ≥ 4.4, on a subshell thread while a cell runs. `_lock` guards the
store and orders every send, so a full state and a partial update never cross on the wire.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget

from ...core.errors import HermesError
from ...core.models import TaskStatus
from ...core.text import plural
from ...engine.refresher import get_refresher, session_totals
from ..binding import VariableExistsError, collect_into, default_variable, free_variable
from .cards import card, layout, newest_first, totals_card
from .static_view import agent_line, group_line, render_html, render_text

if TYPE_CHECKING:
    from ...engine.session import Session
    from ...engine.task import Task

__all__ = ["Dashboard", "dashboard"]

_HERE = Path(__file__).parent
_KEY = "task:"  # model state key of a task's card: "task:t3"
_log = logging.getLogger(__name__)
_cache_lock = threading.Lock()
_dashboards: weakref.WeakKeyDictionary[Session, Dashboard] = weakref.WeakKeyDictionary()


def dashboard(session: Session | None = None) -> Dashboard:
    """The live dashboard of `session` (the kernel's session by default).

    One widget per session: calling this again returns the same live model, so every place
    that shows it shows the same cards. Display it by making it a cell's value, or with
    `display(...)`.
    """
    if session is None:
        from ..kernel import get_session

        session = get_session()
    with _cache_lock:
        cached = _dashboards.get(session)
        if cached is None or cached.closed:
            cached = _dashboards[session] = Dashboard(session)
        return cached


class Dashboard(anywidget.AnyWidget):
    """A card per task of one session, as a tree (newest first at each level), kept current
    by coalesced deltas.

    `namespace` is where Collect stores results (default: the IPython user namespace).
    """

    # One ES module from two files (the view and its cards; the tree's agent and group rows).
    _esm = "\n".join((_HERE / name).read_text() for name in ("dashboard.js", "dashboard_tree.js"))
    _css = _HERE / "dashboard.css"

    def __init__(
        self, session: Session, *, namespace: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.session = session
        self._namespace = namespace
        self._lock = threading.RLock()
        self._cards: dict[str, dict[str, Any]] = {}
        self._ids: list[str] = []  # every task id in creation order
        self._header: dict[str, Any] = {}
        self._layout: list[dict[str, Any]] = []  # the tree's rows (cards.layout)
        self._changed_at = time.time()  # the state's time, saved with it (`_totals.at`)
        self._opened = False  # a comm exists: deltas may be sent
        self._closing = False
        # The sink first: a change landing before the comm opens is stored, then is part of
        # the snapshot the comm opens with (both under _lock), so nothing is lost.
        self._remove_sink: Callable[[], None] | None = get_refresher(session).add_sink(
            self._on_tick
        )
        super().__init__(**kwargs)
        self.on_msg(self._on_msg)
        self._events = _ipython_events()
        if self._events is not None:
            self._events.register("post_run_cell", self._after_cell)

    # ---- what Python users read ----------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closing or self.comm is None

    def cards(self) -> list[dict[str, Any]]:
        """The cards as the frontend has them, newest task first."""
        with self._lock:
            return newest_first(self._cards)

    def header(self) -> dict[str, Any]:
        """Counts by state, tokens, API calls, cost, groups, parent agents, waiting results."""
        with self._lock:
            return dict(self._header)

    def rows(self) -> list[dict[str, Any]]:
        """The tree as the frontend shows it (`cards.layout`): agents, tasks, groups."""
        with self._lock:
            return list(self._layout)

    def sync(self) -> None:
        """Send now whatever changed since the last update (at most one message).

        The refresher does this up to 10 times a second; it also runs after every cell (an
        IPython `post_run_cell` hook), so a notebook executed by nbclient / nbval stores the
        cards as they were when each cell ended, not 100 ms earlier.
        """
        stale = [t.check() for t in self.session.tasks()
                 if (c := self._cards.get(t.id)) is None or c["version"] != t.version]
        self._on_tick(stale, session_totals(self.session))

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._cards)} tasks"
        return f"<Dashboard of {self.session!r}: {state}>"

    # ---- ipywidgets plumbing -------------------------------------------------------------
    def open(self) -> None:
        """Open the comm with a fresh snapshot; deltas start only after it."""
        with self._lock:
            if self.comm is None:
                self._load_all_locked()
            super().open()
            self._opened = self.comm is not None and not self._closing
            route = getattr(self.comm, "_reply_subshell_for", None)
            if route is not None:
                # ipykernel 7.4 routes a comm's incoming messages to the subshell of its last
                # send; ours leave from the refresher thread, whose parent is the main shell,
                # so clicks would wait behind a busy cell. Keep the frontend's subshell.
                self.comm._reply_subshell_for = _frontend_subshell

    def close(self) -> None:
        """Stop the deltas and close the comm (views disappear)."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before the lock existed
            super().close()
            return
        with lock:
            self._closing = True
            self._opened = False
            remove, self._remove_sink = self._remove_sink, None
        if remove is not None:
            remove()
        events, self._events = getattr(self, "_events", None), None
        if events is not None:
            with contextlib.suppress(ValueError):
                events.unregister("post_run_cell", self._after_cell)
        super().close()

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        """ipywidgets' state plus the cards: `_ids`, `_totals` and one `task:<id>` per task."""
        keys = [key] if isinstance(key, str) else list(key) if key is not None else None
        traits = None if keys is None else [k for k in keys if k in self.keys]
        state: dict[str, Any] = super().get_state(key=traits, drop_defaults=drop_defaults)
        with self._lock:
            wanted = keys if keys is not None else [
                "_ids", "_totals", "_layout", *(_KEY + task_id for task_id in self._ids)]
            for name in wanted:
                if name == "_ids":
                    state[name] = list(self._ids)
                elif name == "_layout":
                    state[name] = list(self._layout)
                elif name == "_totals":
                    state[name] = {**self._header, "at": self._changed_at}
                elif name.startswith(_KEY) and name[len(_KEY):] in self._cards:
                    state[name] = self._cards[name[len(_KEY):]]
        return state

    def send_state(self, key: Any = None) -> None:
        with self._lock:  # a state reply and a delta never cross
            super().send_state(key=key)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The widget view, plus a static table for frontends without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        with self._lock:
            cards, header = self._ordered_locked(), dict(self._header)
        now = time.time()
        data = {**data, "text/plain": render_text(cards, header, now),
                "text/html": render_html(cards, header, now)}
        return data, metadata

    # ---- refresher thread ----------------------------------------------------------------
    def _on_tick(self, changed: list[TaskStatus], totals: dict[str, Any]) -> None:
        """One tick: store what changed and send it as a single partial update (or nothing)."""
        fresh_cards = [card(status) for status in changed]  # outside the lock: pure work
        header = totals_card(totals)
        with self._lock:
            if self._closing:
                return
            known = len(self._ids)
            keys = [_KEY + c["id"] for c in fresh_cards if self._store_locked(c)]
            if len(self._ids) != known:
                keys.append("_ids")
            owners = _owners(self._header)
            if header != self._header:
                self._header = header
                keys.append("_totals")
            # The tree moves only with new tasks or parent agents (a task's place is fixed).
            if ("_ids" in keys or _owners(header) != owners) and self._relayout_locked():
                keys.append("_layout")
            if keys:
                self._changed_at = time.time()
                if "_totals" not in keys:
                    keys.append("_totals")  # carries `at`: a saved notebook says when it was
            if keys and self._opened:
                self.send_state(keys)  # one comm message: only these keys

    # ---- shell or subshell thread --------------------------------------------------------
    def _after_cell(self, _result: Any) -> None:
        try:
            self.sync()
        except Exception:  # a display helper must never break the user's cell
            _log.exception("hermes_jupyter dashboard sync after a cell failed")

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            # A view asks whether this kernel still has the dashboard: yes, it is live.
            with self._lock:
                if self._opened:
                    self.send({"type": "pong", "req": content.get("req")})
            return
        if not isinstance(content, dict) or content.get("type") != "action":
            return
        reply = self.act(content)
        with self._lock:
            if self._opened:
                self.send(reply)

    def act(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one button's request; the reply says success or a one-line error."""
        action = request.get("action")
        extra: dict[str, Any] = {}
        try:
            text, ok = self._dispatch(action, request), True
        except VariableExistsError as err:
            text, ok = _one_line(err), False
            extra = {"code": "variable_exists", "variable": err.variable,
                     "suggestion": err.suggestion}
        except HermesError as err:
            text, ok = _one_line(err), False
        except Exception as err:  # a bug must not kill the widget: answer it, log it
            _log.exception("hermes_jupyter dashboard action %r failed", action)
            text, ok = _one_line(f"{type(err).__name__}: {err}"), False
        if "group" in request:
            extra["group"] = request.get("group")
        return {"type": "reply", "req": request.get("req"), "action": action,
                "task": request.get("task"), "ok": ok, "text": text, **extra}

    def _dispatch(self, action: Any, request: dict[str, Any]) -> str:
        session = self.session
        if action == "cancel_all":
            n = session.cancel_all()
            return f"Asked {n} task{'s' if n != 1 else ''} to stop." if n else "No live task."
        if action == "approve_group":
            return _approve_group(session, request.get("group"))
        if action not in ("steer", "cancel", "collect", "approve", "deny"):
            raise HermesError(f"Unknown action {action!r}: use steer, cancel, collect, "
                              "approve, deny, approve_group or cancel_all.")
        ref = request.get("task")
        if not isinstance(ref, str) or not ref.strip():
            raise HermesError(f"The {action} request names no task: send its id, like 't1'.")
        task = session.task(ref)
        if action == "steer":
            session.steer(task, str(request.get("message") or ""))
            return f"Sent to {task.id}; it reads it before its next model call."
        if action in ("approve", "deny"):
            return _decide(session, task, action, request)
        if action == "cancel":
            if session.cancel(task):
                return f"Cancelling {task.id}…"
            raise HermesError(f"Task {task.id} has already ended ({task.state.value}): "
                              "nothing to cancel.")
        namespace = self._user_namespace()
        variable = str(request.get("variable") or "").strip()
        if not variable or (request.get("free") is True and variable.isidentifier()):
            # The offered name, untouched by the user: a free variant, never a replacement.
            variable = free_variable(namespace, variable or default_variable(task.id))
        return collect_into(namespace, task, variable, overwrite=request.get("overwrite") is True)

    def _user_namespace(self) -> dict[str, Any]:
        if self._namespace is not None:
            return self._namespace
        from IPython import get_ipython

        ip = get_ipython()
        if ip is None:
            raise HermesError("Collect needs an IPython kernel to create the variable: pass "
                              "Dashboard(session, namespace=...) elsewhere.")
        namespace: dict[str, Any] = ip.user_ns
        return namespace

    # ---- helpers (caller holds _lock) ----------------------------------------------------
    def _load_all_locked(self) -> None:
        for status in self.session.list_tasks():
            self._store_locked(card(status))
        self._header = totals_card(session_totals(self.session))
        self._relayout_locked()

    def _relayout_locked(self) -> bool:
        """Recompute the tree's rows; True when they changed."""
        rows = layout(self._cards, self._header)
        if rows == self._layout:
            return False
        self._layout = rows
        return True

    def _ordered_locked(self) -> list[dict[str, Any]]:
        """The static views' rows in tree order, each with its `indent`: task cards, and a
        `row` line for each parent agent and fan-out group (whose tasks it stands for)."""
        agents = {a["owner"]: a for a in self._header.get("agents", [])}
        groups = {g["id"]: g for g in self._header.get("groups", [])}
        out = []
        for row in self._layout:
            kind, key, indent = row["kind"], row["id"], row["depth"]
            if kind == "task" and key in self._cards:
                out.append({**self._cards[key], "indent": indent})
            elif kind == "agent":
                out.append({"row": agent_line(agents.get(key) or {
                    "name": key.removeprefix("agent:"), "waiting": 0, "children": 0,
                    "live": 0}), "indent": indent})
            elif kind == "group" and key in groups:
                out.append({"row": group_line(groups[key]), "indent": indent})
        return out

    def _store_locked(self, new: dict[str, Any]) -> bool:
        """Keep `new` unless an equal or newer card is already there; True when kept."""
        old = self._cards.get(new["id"])
        if old is not None and (old == new or old["version"] > new["version"]):
            return False
        if old is None:
            self._ids.append(new["id"])
        self._cards[new["id"]] = new
        return True


def _decide(session: Session, task: Task, action: str, request: dict[str, Any]) -> str:
    """Approve or deny one waiting tool call (`call_id`; none: the oldest)."""
    call_id = request.get("call_id") or None
    if call_id is not None and not isinstance(call_id, str):
        raise HermesError(f"Bad call id {call_id!r}: send the id the card shows, like 'c1'.")
    if action == "approve":
        call = session.approve(task, call_id)
        return f"Approved {call.tool} ({call.call_id}) for {task.id}: it runs now."
    reason = str(request.get("reason") or "").strip()
    call = session.deny(task, call_id, reason=reason)
    told = f": “{reason}”" if reason else ""
    return f"Denied {call.tool} ({call.call_id}) for {task.id}; the model is told so{told}."


def _approve_group(session: Session, ref: Any) -> str:
    """Approve every call the fan-out group `ref` ("g1") waits on now (`TaskGroup.approve`)."""
    book = session.attachments.peek("groups")
    group = next((g for g in book.groups() if g.id == ref), None) if book is not None else None
    if group is None:
        raise HermesError(f"No fan-out group {ref!r} in this session: send its id, like 'g1'.")
    approved = group.approve()
    if not approved:
        raise HermesError(f"No task of group {group.id} waits for approval now.")
    return f"Approved {plural(approved, 'waiting call')} of group {group.id}."


def _owners(header: dict[str, Any]) -> list[str]:
    return [a["owner"] for a in header.get("agents", [])]


def _ipython_events() -> Any:
    """The running IPython's event manager, or None outside IPython."""
    from IPython import get_ipython

    return getattr(get_ipython(), "events", None)


def _frontend_subshell(data: Any, default: str | None) -> str | None:
    return default


def _one_line(err: object) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
