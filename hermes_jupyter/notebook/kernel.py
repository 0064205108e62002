"""The one session of this kernel, shared by the magics, `hj.get_session()` and the dashboard.

It is built on first use from the `HermesJupyter` settings. Later setting changes apply to
the live session when it can take them (models, limits, workspace, toolsets); a new endpoint
or new keys need a new session, built on next use once no task is running. Finished tasks of
a replaced session stay reachable by id, and ids keep counting, so "t3" never means two tasks.

Notices (demo model in use, settings waiting) are printed on the main thread only; one raised
on another thread waits for the next main-thread use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import HermesError, UnknownTaskError
from ..core.models import TaskStatus
from ..core.text import plural
from ..engine.journal import JournalRecord
from ..engine.session import Session
from ..engine.task import Task
from .settings import APPROVAL_SETTINGS, HermesJupyter, Settings, resolve, safe_url

__all__ = [
    "all_statuses", "find_task", "flush_notices", "get_config", "get_session", "history", "install",
    "latest_task", "notify", "on_new_session", "peek_session", "pending_change", "replaced",
    "session_of",
]

@dataclass
class _Kernel:
    lock: threading.RLock = field(default_factory=threading.RLock)
    config: HermesJupyter | None = None
    session: Session | None = None
    built: Settings | None = None  # the settings `session` runs with
    stale: bool = False  # endpoint settings changed since `session` was built
    stale_told: bool = False
    demo_told: bool = False
    cluster_told: bool = False
    retired: list[Session] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


_state = _Kernel()
_listeners: list[Callable[[Session], None]] = []
_log = logging.getLogger(__name__)


def get_config() -> HermesJupyter:
    """This kernel's `HermesJupyter` settings, registered with IPython so `%config` sees them."""
    with _state.lock:
        if _state.config is None:
            shell = _shell()
            config = HermesJupyter(parent=shell) if shell is not None else HermesJupyter()
            if shell is not None:
                shell.configurables.append(config)
            config.observe(_on_change)
            _state.config = config
        return _state.config


def get_session() -> Session:
    """The kernel-wide session (built on first use from the HermesJupyter settings)."""
    with _state.lock:
        before = _state.session
        if _state.session is not None and _state.stale:
            _maybe_rebuild(_state.session)
        if _state.session is None:
            settings = resolve(get_config())
            _state.session, _state.built = _build(settings), settings
            _tell_demo(settings)
        session = _state.session
    flush_notices()
    if session is not before:
        _announce(session)
    return session


def on_new_session(callback: Callable[[Session], None]) -> None:
    """Call `callback(session)` whenever the kernel's session is built or replaced, on the
    thread that asked for it (the JupyterLab panel follows at once, even mid-cell)."""
    with _state.lock:
        if callback not in _listeners:
            _listeners.append(callback)


def _announce(session: Session) -> None:
    for callback in list(_listeners):
        try:
            callback(session)
        except Exception:  # a broken listener must not break %delegate
            _log.exception("hermes_jupyter session listener %r failed", callback)


def peek_session() -> Session | None:
    """The session if one was built, without building it."""
    return _state.session


def install(shell: Any) -> None:
    """`%load_ext`: register the settings and say at once whether the demo model will run."""
    get_config()
    settings = resolve(get_config())
    _tell_demo(settings, defer=_at_kernel_startup(shell))
    if not _at_kernel_startup(shell):
        flush_notices()
    if _outlives(settings):  # re-attach now to the tasks an earlier kernel left running
        with contextlib.suppress(HermesError):  # said again, in one line, at first use
            get_session()


def _outlives(settings: Settings) -> bool:
    """Tasks of these settings outlive the kernel: a new session re-attaches to them."""
    return bool(settings.cluster and settings.journal)


def find_task(ref: str | Task) -> Task:
    """A task of this kernel by handle, id or name, in the live or an earlier session."""
    sessions = [s for s in (_state.session, *reversed(_state.retired)) if s is not None]
    if not sessions:
        raise UnknownTaskError(str(ref), None)
    first_error: UnknownTaskError | None = None
    for session in sessions:
        try:
            return session.task(ref)
        except UnknownTaskError as err:
            first_error = first_error or err
    assert first_error is not None
    raise first_error


def replaced(session: Session) -> bool:
    """Whether `session` was this kernel's session before a rebuild (new endpoint or keys)."""
    with _state.lock:
        return any(s is session for s in _state.retired)


def session_of(task: Task) -> Session:
    """The session (live or earlier) that owns `task`."""
    for session in (_state.session, *_state.retired):
        if session is not None and any(t is task for t in session.tasks()):
            return session
    raise UnknownTaskError(task.id, None)


def latest_task() -> Task:
    """The most recently delegated task: what a magic means when the id is left out."""
    for session in (_state.session, *reversed(_state.retired)):
        tasks = session.tasks() if session is not None else []
        if tasks:
            return tasks[-1]
    raise HermesError("No tasks yet: start one with %delegate GOAL.")


def all_statuses() -> list[TaskStatus]:
    """Snapshots of every task of this kernel, earlier sessions first (with a cluster and a
    journal set, the session is built first: it re-attaches to the tasks left running there)."""
    if _state.session is None and _outlives(resolve(get_config())):
        get_session()
    sessions = [*_state.retired, _state.session]
    return [status for s in sessions if s is not None for status in s.list_tasks()]


def history() -> list[JournalRecord]:
    """Tasks that earlier kernels kept in the journal, oldest first (not this kernel's)."""
    session = get_session()  # applies a journal switched on since, when nothing runs
    if session.journal is None:
        pending = pending_change()
        raise HermesError(
            f"No journal is kept, so earlier kernels' tasks are not known ({pending})."
            if pending else "No journal is kept: %config HermesJupyter.journal = True keeps "
            "tasks across kernels (from the next task on).")
    mine = {s.journal.session_id for s in (session, *_state.retired) if s.journal is not None}
    return [r for r in session.journal.records() if r.session not in mine]


def pending_change() -> str | None:
    """One line when new endpoint or journal settings are waiting for running tasks to end."""
    if not _state.stale or _state.session is None or _state.config is None:
        return None
    what = _what_changed(resolve(_state.config))
    live = [t.id for t in _state.session.tasks() if not t.done()]
    if not live:
        return f"new {what} settings apply at the next task"
    return (f"new {what} settings wait for {plural(len(live), 'running task')} to end "
            f"({', '.join(live)})")


def notify(message: str) -> None:
    """Print `message` now on the main thread; from another thread, at the next main-thread use."""
    with _state.lock:
        _state.notices.append(message)
    flush_notices()


def flush_notices() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    with _state.lock:
        notices, _state.notices = _state.notices, []
    for message in notices:
        print(message, file=sys.stdout, flush=True)


# ---- building and rebuilding ----------------------------------------------------------------
def _build(settings: Settings, after: list[Session] | None = None) -> Session:
    # ids go on counting across the sessions of one kernel, so "t2" never names two tasks
    # (next_id, not the tasks held: forgotten tasks' ids stay used)
    kwargs = {**settings.session_kwargs(),
              "first_id": max((s.next_id for s in after or ()), default=1)}
    if settings.demo:
        from ..demo import demo_session  # the demo server starts only when it is used

        return demo_session(**kwargs)
    return Session(**kwargs)


def _maybe_rebuild(old: Session) -> None:
    live = [t.id for t in old.tasks() if not t.done()]
    settings = resolve(get_config())
    endpoint = _state.built is None or settings.endpoint != _state.built.endpoint
    if live:
        if not _state.stale_told and endpoint:  # a journal change was told at %config
            _state.stale_told = True
            notify(f"hermes_jupyter: the new endpoint settings apply once {', '.join(live)} "
                   "end; until then new tasks use the current endpoint (%cancel_task --all "
                   "switches now).")
        return
    new = _build(settings, after=[*_state.retired, old])
    _state.retired.append(old)
    old.close()
    _state.session, _state.built, _state.stale = new, settings, False
    if endpoint:
        where = "the offline demo model" if settings.demo else (
            f"{settings.model} at {safe_url(settings.base_url) or 'api.openai.com'}")
        notify(f"hermes_jupyter: settings changed; new tasks run on {where}.")
    _tell_demo(settings)


def _what_changed(settings: Settings) -> str:
    built = _state.built
    return "endpoint" if built is None or settings.endpoint != built.endpoint else "journal"


def _journal_notice(session: Session, on: bool) -> str:
    """`%config HermesJupyter.journal = ...` after the session began: when it takes effect."""
    live = [t.id for t in session.tasks() if not t.done()]
    when = f"once {', '.join(live)} end" if live else "from the next task"
    if not on:
        return f"hermes_jupyter: journal off {when}; tasks already kept stay in the journal."
    return (f"hermes_jupyter: journal on {when}: tasks are kept in .hermes/tasks.sqlite under "
            "the workspace (tasks started before are not); %list_tasks --history shows those "
            "of earlier kernels.")


def _on_change(change: Any) -> None:
    """A HermesJupyter trait changed (`%config`): apply it to the live session if possible."""
    with _state.lock:
        session, built = _state.session, _state.built
        if session is None or built is None or _state.config is None:
            return  # applied when the session is built
        settings = resolve(_state.config)
        if change["name"] == "journal" and settings.journal != built.journal:
            notify(_journal_notice(session, settings.journal))
        if settings.fixed != built.fixed:
            if not _state.stale:
                _state.stale, _state.stale_told = True, False
            return
        _state.stale = False
        if settings.demo and change["name"] in ("model", "subagent_model") and change["new"] \
                not in (None, "demo"):
            notify(f"hermes_jupyter: {change['name']} {change['new']!r} noted; tasks stay on "
                   "the demo model until an API key or endpoint is set.")
        _apply_live(session, settings, change["name"])
        _state.built = settings


def _apply_live(session: Session, settings: Settings, name: str) -> None:
    """Settings the Session reads at each `delegate` change on it directly."""
    if name in ("model", "subagent_model") and not settings.demo:
        session.model = settings.model
        session.subagent_model = settings.subagent_model
    elif name == "workspace":
        session.workspace = Path(settings.workspace or os.getcwd()).resolve()
    elif name == "toolsets":
        session.toolsets = tuple(settings.toolsets)
    elif name in ("max_concurrent", "max_iterations", "task_timeout", "stall_timeout",
                  "cooldown_cap", "tool_timeout"):
        setattr(session, name, getattr(settings, name))
    elif name in APPROVAL_SETTINGS:
        session.set_approval(settings.approval, settings.approval_allowlist,
                             settings.approval_timeout, settings.approve_file_writes)
    elif name == "demo_pace" and hasattr(session, "pace"):
        session.pace = settings.demo_pace


def _tell_demo(settings: Settings, defer: bool = False) -> None:
    if settings.sources.get("cluster") == "ignored on the demo model" and not _state.cluster_told:
        _state.cluster_told = True
        with _state.lock:
            _state.notices.append(
                "hermes_jupyter: HermesJupyter.cluster is ignored on the offline demo model "
                "(its model server lives in this kernel), so tasks run here; set an endpoint "
                "(OPENAI_API_KEY or HermesJupyter.base_url) to run them on the cluster.")
        if not defer:
            flush_notices()
    if not settings.demo or _state.demo_told:
        return
    _state.demo_told = True
    if settings.demo_reason == "model is set to 'demo'":
        line = "hermes_jupyter: model 'demo' is set, so tasks run on the offline demo model."
    else:
        line = ("hermes_jupyter: no API key or endpoint configured, so tasks run on the offline "
                "demo model (labelled 'demo'). For a real model set OPENAI_API_KEY, or "
                "%config HermesJupyter.api_keys / HermesJupyter.base_url.")
    with _state.lock:
        _state.notices.append(line)
    if not defer:
        flush_notices()


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _at_kernel_startup(shell: Any) -> bool:
    """True while ipykernel loads extensions before any cell: a print would go nowhere."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    try:
        return not kernel.get_parent()
    except Exception:
        return False


def _reset() -> None:
    """Forget the session and settings (tests; a new kernel does the same)."""
    with _state.lock:
        sessions = [s for s in (_state.session, *_state.retired) if s is not None]
        config = _state.config
        _state.__init__()  # type: ignore[misc]
    for session in sessions:
        session.close()
    if config is not None:
        config.unobserve(_on_change)
        shell = _shell()
        if shell is not None and config in shell.configurables:
            shell.configurables.remove(config)
