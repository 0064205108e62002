"""The kernel end of the JupyterLab extension: the `hermes_jupyter` comm target.

Protocol (docs/comm-protocol.md): the frontend opens the comm, gets a snapshot, then coalesced
deltas from the session's refresher (≤ 10 a second, none while idle), and sends steer / cancel /
collect requests, each answered with success or a one-line error.

Threads: requests arrive on the shell thread or, with ipykernel 7 and JupyterLab ≥ 4.4, on a
subshell thread while a cell runs; deltas are sent from the refresher thread. ipykernel hands
every send to its IOPub thread through one FIFO queue, so sending from any thread is safe; a
per-comm lock makes the order of that queue the order of `seq`, which is what the frontend sees.
With no frontend, nothing is registered with the refresher and nothing is ever sent.

The panel never builds a session: it follows the one the kernel's cells build or replace
(checked after every cell), and lists the tasks of earlier sessions too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import HermesError, UnknownTaskError
from ..core.models import TaskState, TaskStatus
from ..engine.refresher import get_refresher, session_totals
from .binding import VariableExistsError, collect_into, free_variable

if TYPE_CHECKING:
    from ..engine.journal import JournalRecord
    from ..engine.session import Session
    from ..engine.task import Task

__all__ = [
    "OUTPUT_TAIL", "PROTOCOL_VERSION", "TARGET", "FrontendLink", "TaskSource", "kernel_tasks",
    "register", "session_tasks",
]

TARGET = "hermes_jupyter"
PROTOCOL_VERSION = 1
"""Stays 1: every change is additive (docs/comm-protocol.md, "Growing the protocol")."""
OUTPUT_TAIL = 10
"""Lines of recent output sent per task; the panel shows the last few."""
OPS = ("steer", "cancel", "collect", "snapshot", "approve", "deny")
"""Requests this kernel answers; sent in every snapshot so a panel offers only these."""
HISTORY_LIMIT = 50
"""Tasks of earlier kernels (from the journal) sent in a snapshot, newest last."""
STATES = {
    "live": [s.value for s in TaskState if not s.terminal],
    "terminal": [s.value for s in TaskState if s.terminal],
}
"""Every task state, from `core.models.TaskState`: the panel learns new ones from here."""

_CLIP = {"goal": 500, "summary": 2000, "error": 500, "activity": 200}
_CLIP_ARGUMENTS = 4000  # a waiting tool call's arguments (JSON text)
_CLIP_LINE = 300  # output lines keep their last 300 characters, steering messages their first
_log = logging.getLogger(__name__)
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class TaskSource:
    """Where the comm finds tasks: this kernel's sessions (`kernel_tasks`) or one Session."""

    live_session: Callable[[], Session | None]
    """The session new tasks start in, or None; never builds one (opening a panel must not)."""
    statuses: Callable[[], list[TaskStatus]]
    """Every task the panel lists, earlier sessions included."""
    find_task: Callable[[str], Task]
    """A task by id or name; raises UnknownTaskError."""


def kernel_tasks() -> TaskSource:
    """The tasks of this kernel, across the sessions `hermes_jupyter.notebook.kernel` has built."""
    from . import kernel

    return TaskSource(kernel.peek_session, kernel.all_statuses, kernel.find_task)


def session_tasks(session: Session) -> TaskSource:
    """The tasks of one Session (tests, or a Session made by hand)."""
    return TaskSource(lambda: session, session.list_tasks, session.task)


def register(ip: Any, source: TaskSource | None = None) -> None:
    """Register the comm target in ip's kernel; idempotent, and a no-op outside ipykernel.

    `source` defaults to `kernel_tasks()`. After each cell the open comms check whether the
    kernel's session was built or replaced meanwhile, and follow it.
    """
    manager = getattr(getattr(ip, "kernel", None), "comm_manager", None)
    if manager is None:
        return  # plain IPython, or a kernel without comms
    with _registry_lock:
        owner = getattr(getattr(manager, "targets", {}).get(TARGET), "__self__", None)
        if isinstance(owner, _Target):
            owner.source = source or kernel_tasks()
            return
        target = _Target(source or kernel_tasks(), ip.user_ns)
        manager.register_target(TARGET, target.open)
        events = getattr(ip, "events", None)
        if events is not None:
            events.register("post_run_cell", target.after_cell)
        # follow a session built mid-cell at once (`%delegate` then a blocking collect)
        from . import kernel

        kernel.on_new_session(lambda _session: target.after_cell())


class _Target:
    """What `comm_open` calls; keeps one live link per frontend client id."""

    def __init__(self, source: TaskSource, namespace: dict[str, Any]) -> None:
        self.source = source
        self.namespace = namespace
        self._lock = threading.Lock()
        self._links: dict[str, FrontendLink] = {}

    def open(self, comm: Any, open_msg: dict[str, Any]) -> None:
        data = open_msg.get("content", {}).get("data") or {}
        # Every protocol change is additive: a frontend of any version is served, and each
        # side ignores the fields it does not know (docs/comm-protocol.md).
        client_id = str(data.get("client_id") or f"anon-{id(comm)}")
        link = FrontendLink(comm, self.source, self.namespace, on_close=self._forget(client_id))
        with self._lock:
            previous = self._links.get(client_id)
            self._links[client_id] = link
        if previous is not None:
            # The same browser tab reloaded (or was duplicated): the old page is gone.
            previous.close(reason="replaced")
        link.start()

    def after_cell(self, *_: Any) -> None:
        """IPython's post_run_cell hook: a cell may have built or replaced the session."""
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.sync()

    def _forget(self, client_id: str) -> Callable[[FrontendLink], None]:
        def forget(link: FrontendLink) -> None:
            with self._lock:
                if self._links.get(client_id) is link:
                    del self._links[client_id]

        return forget


class FrontendLink:
    """One open comm: sends the snapshot and deltas, answers requests."""

    def __init__(
        self,
        comm: Any,
        source: TaskSource,
        namespace: dict[str, Any],
        on_close: Callable[[FrontendLink], None] | None = None,
    ) -> None:
        self._comm = comm
        self._source = source
        self._namespace = namespace
        self._on_close_cb = on_close
        self._lock = threading.Lock()  # guards everything below and orders the sends
        self._seq = 0
        self._sent_versions: dict[str, int] = {}
        self._sent_totals: dict[str, Any] | None = None
        self._attached: Session | None = None
        self._remove_sink: Callable[[], None] | None = None
        self._closed = False

    def start(self) -> None:
        """Begin: the snapshot goes out before any delta can."""
        self._comm.on_msg(self._on_msg)
        self._comm.on_close(self._on_comm_close)
        if hasattr(self._comm, "_reply_subshell_for"):
            # ipykernel 7 (7.4 here) routes a comm's incoming messages to the subshell its last send
            # came from; ours come from the refresher thread, whose parent is the main shell,
            # so requests would wait behind a busy cell. Keep the frontend's subshell choice.
            self._comm._reply_subshell_for = _frontend_subshell
        with self._lock:
            # Sink first, then the snapshot, both under the lock: a change that lands in
            # between arrives as a delta after the snapshot, never lost and never before it.
            self._attach_locked()
            self._send_snapshot_locked()

    def sync(self) -> None:
        """Follow the kernel's live session if it changed; a new one brings a snapshot."""
        with self._lock:
            if not self._closed and self._attach_locked():
                self._send_snapshot_locked()

    def close(self, reason: str = "shutdown") -> None:
        """Close from the kernel side, telling the frontend why."""
        if self._detach():
            self._comm.close(data={"reason": reason})

    # ---- refresher thread --------------------------------------------------------------
    def _on_changes(self, changed: list[TaskStatus], totals: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                return
            fresh = [s for s in changed if s.version > self._sent_versions.get(s.id, -1)]
            if not fresh and totals == self._sent_totals:
                return  # nothing new (a header-only tick, e.g. `waiting`, still goes out)
            for status in fresh:
                self._sent_versions[status.id] = status.version
            self._sent_totals = totals
            self._send_locked("delta", tasks=[task_json(s) for s in fresh], totals=totals)

    # ---- shell or subshell thread ------------------------------------------------------
    def _on_msg(self, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data") or {}
        if data.get("type") != "request":
            return
        self.sync()
        request_id = str(data.get("id", ""))
        op = data.get("op")
        if op == "snapshot":
            with self._lock:
                if not self._closed:
                    self._send_snapshot_locked()
                    self._send_locked("reply", id=request_id, ok=True, message="Snapshot sent.")
            return
        try:
            message = self._handle(op, data)
        except _Refusal as err:
            self._reply(request_id, ok=False, error=_one_line(err), code=err.code)
        except VariableExistsError as err:
            self._reply(request_id, ok=False, error=_one_line(err), code="variable_exists",
                        variable=err.variable, suggestion=err.suggestion)
        except UnknownTaskError as err:
            self._reply(request_id, ok=False, error=_one_line(err), code="unknown_task")
        except HermesError as err:
            self._reply(request_id, ok=False, error=_one_line(err), code="refused")
        except Exception as err:  # a bug must not kill the comm: answer it, log it
            _log.exception("hermes_jupyter comm request %r failed", op)
            self._reply(request_id, ok=False, error=_one_line(f"{type(err).__name__}: {err}"),
                        code="error")
        else:
            self._reply(request_id, ok=True, message=message)

    def _handle(self, op: Any, data: dict[str, Any]) -> str:
        ref = data.get("task")
        if op not in OPS:
            raise _Refusal("unknown_op",
                           f"Unknown request {op!r}: this kernel answers {', '.join(OPS)}.")
        if not isinstance(ref, str) or not ref.strip():
            raise HermesError(f"The {op} request names no task: send its id, like 't1'.")
        task = self._source.find_task(ref.strip())
        if op == "steer":
            task.steer(str(data.get("message") or ""))
            return f"Steering message queued for {ref}."
        if op == "cancel":
            if task.cancel():
                return f"Cancelling {ref}."
            raise HermesError(
                f"Task {ref} has already ended ({task.state.value}): nothing to cancel."
            )
        if op in ("approve", "deny"):
            return _decide(task, op, data)
        variable = str(data.get("variable") or "").strip()
        if data.get("free") is True and variable.isidentifier():
            # The user kept the offered name: take a free variant rather than replace a value.
            variable = free_variable(self._namespace, variable)
        overwrite = data.get("overwrite") is True
        return collect_into(self._namespace, task, variable, overwrite=overwrite)

    def _on_comm_close(self, msg: dict[str, Any]) -> None:
        self._detach()

    # ---- helpers -----------------------------------------------------------------------
    def _attach_locked(self) -> bool:
        """Take deltas from the live session's refresher; True when that session changed."""
        session = self._source.live_session()
        if session is self._attached:
            return False
        if self._remove_sink is not None:
            self._remove_sink()
        self._attached = session
        self._remove_sink = (
            get_refresher(session).add_sink(self._on_changes) if session is not None else None
        )
        return True

    def _detach(self) -> bool:
        """Stop the deltas; True the first time only."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            remove, self._remove_sink = self._remove_sink, None
        if remove is not None:
            remove()
        if self._on_close_cb is not None:
            self._on_close_cb(self)
        return True

    def _reply(self, request_id: str, **fields: Any) -> None:
        with self._lock:
            if not self._closed:
                self._send_locked("reply", id=request_id, **fields)

    def _send_snapshot_locked(self) -> None:
        statuses = self._source.statuses()
        self._sent_versions = {s.id: s.version for s in statuses}
        totals = session_totals(self._attached) if self._attached is not None else {}
        self._sent_totals = totals
        self._send_locked("snapshot", tasks=[task_json(s) for s in statuses], totals=totals,
                          ops=list(OPS), states=STATES, history=self._history())

    def _history(self) -> list[dict[str, Any]]:
        """Tasks of earlier kernels kept in the live session's journal ([] without one)."""
        session = self._attached
        if session is None or session.journal is None:
            return []
        try:
            records = session.history(limit=HISTORY_LIMIT)
        except HermesError:
            return []
        return [history_json(r) for r in records]

    def _send_locked(self, kind: str, **fields: Any) -> None:
        self._seq += 1
        self._comm.send({"type": kind, "protocol": PROTOCOL_VERSION, "seq": self._seq, **fields})


class _Refusal(HermesError):
    """A request refused with a machine-readable `code` for the reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _frontend_subshell(data: Any, default: str | None) -> str | None:
    return default


def history_json(record: JournalRecord) -> dict[str, Any]:
    """One task of an earlier kernel for the wire: read-only, keyed by `session` and `id`."""
    return {
        "session": record.session, "id": record.id, "name": record.name,
        "goal": _clip(record.goal, _CLIP["goal"]), "model": record.model,
        "state": record.state.value, "terminal": record.state.terminal,
        "created_at": record.created_at, "ended_at": record.ended_at,
        "exit_reason": record.exit_reason, "error": _clip(record.error, _CLIP["error"]),
        "summary": _clip(record.summary, _CLIP["summary"]),
    }


def task_json(status: TaskStatus) -> dict[str, Any]:
    """`TaskStatus.to_dict` with the output tail and long strings clipped for the wire."""
    d = status.to_dict(tail=OUTPUT_TAIL)
    d["terminal"] = status.state.terminal  # so a panel never needs its own list of states
    for key, limit in _CLIP.items():
        d[key] = _clip(d[key], limit)
    # An output line is still growing at its end: keep the end.
    d["recent_output"] = [_clip_start(line, _CLIP_LINE) for line in d["recent_output"]]
    for record in d["steering"]:
        record["message"] = _clip(record["message"], _CLIP_LINE)
    for call in d["pending_approvals"]:  # the person decides on what they read: keep most
        call["arguments"] = _clip(call["arguments"], _CLIP_ARGUMENTS)
        call["reason"] = _clip(call["reason"], _CLIP["error"])
    return d


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _clip_start(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _one_line(err: object) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _decide(task: Task, op: str, data: dict[str, Any]) -> str:
    """`approve` / `deny` a waiting tool call (`call_id`, default the oldest); never a parent
    agent's decision: only a person's panel sends these."""
    call_id = data.get("call_id") or None
    if op == "approve":
        remember = data.get("remember") or None
        call = task.approve(call_id, remember=remember)
        return f"Approved {call.tool} ({call.call_id}) for {task.id}."
    call = task.deny(call_id, str(data.get("reason") or ""))
    return f"Denied {call.tool} ({call.call_id}) for {task.id}; the model reads why."
