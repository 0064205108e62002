"""`Agent`: a parent chat agent that hands work to background subagents and hears back.

The design Hermes shipped: the parent gets a task id at once and carries on; when a child
ends, a self-contained message with its result is queued for the parent and delivered at the
start of the parent's next turn, so the parent never needs to poll. The parent's tools
(`parent_tools.session_tools`, scoped to this agent) act only on its own children.

Threads: a turn runs on the session's engine loop; `ask()` waits for it on the caller's thread
and hands streamed text to `on_text` there (never from a background thread). Interrupting the
wait (Ctrl-C, the kernel's interrupt) stops the turn, not the children, and leaves the
conversation valid: a tool call left without an answer gets one saying it was interrupted.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import HermesError
from ..core.models import Event, ToolTraceEntry, Usage
from ..core.text import short
from ..tools import build_registry
from .agent_book import AgentBook
from .agent_messages import (
    INTERRUPTED,
    RESULTS_HEADER,
    pump,
    repair,
    result_message,
    results_message,
)
from .failures import ProviderError
from .parent_tools import OutputTypes, session_tools
from .session import Session
from .task import Task

__all__ = ["DEFAULT_PARENT_PROMPT", "INTERRUPTED", "RESULTS_HEADER", "Agent", "AgentBook",
           "AgentReply", "result_message"]

DEFAULT_PARENT_PROMPT = (
    "You are the parent agent in a Jupyter notebook. Hand self-contained pieces of work to "
    "background subagents with delegate_task: it returns a task id at once and the subagent "
    "works while you go on talking with the user. Each subagent knows only the goal and "
    "context you give it, and has only the toolsets you name (files to read or list files, "
    "python to run code, shell for commands) or else the session's. You do not need to "
    "poll: when a task ends, its result arrives by "
    f"itself at the start of a later turn, in a message that starts with '{RESULTS_HEADER}'. "
    "Use check_task, steer_task, cancel_task and list_tasks when the user asks about running "
    "work; collect_task only waits briefly. Answer the user concisely; when results arrive, "
    "summarise what they mean for the user's request."
)
MAX_TURN_CALLS = 20  # model calls in one parent turn


@dataclass(frozen=True)
class AgentReply:
    """What one parent turn produced: its text, the tool calls it made, the children it
    started, the children whose results it took in, and the turn's usage."""

    text: str
    tool_calls: list[ToolTraceEntry] = field(default_factory=list)
    children: list[Task] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text or "_(no reply)_"


class Agent:
    """A parent agent whose conversation persists across calls (and cells).

    `session`: the session its children run in (None: the kernel's session, `hj.get_session()`).
    `max_children`: children of this agent live at once (None: no limit beyond the session's
    `max_concurrent`). `max_depth`: 1 means its children cannot delegate; 2 lets them start
    children of their own, and so on. `tools` / `toolsets`: extra tools for the parent itself.
    `output_types`: the schemas its `delegate_task(output_type=NAME)` may name (a mapping of
    names, or a function returning one; in a notebook, the user namespace).
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        name: str = "default",
        model: str | None = None,
        system_prompt: str | None = None,
        tools: Iterable[Callable[..., Any]] = (),
        toolsets: Iterable[str] = (),
        max_children: int | None = None,
        max_depth: int = 1,
        output_types: OutputTypes | None = None,
    ) -> None:
        if not (output_types is None or callable(output_types)
                or isinstance(output_types, Mapping)):
            raise HermesError(f"Bad output_types {type(output_types).__name__}: pass a dict of "
                              "names to schemas, a function returning one, or None.")
        if not isinstance(name, str) or not name.strip() or name.strip() != name:
            raise HermesError(f"Bad agent name {name!r}: use a non-empty name such as 'default'.")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise HermesError(f"Bad max_depth {max_depth!r}: use a whole number ≥ 1.")
        if max_children is not None and (isinstance(max_children, bool)
                                         or not isinstance(max_children, int)
                                         or max_children < 1):
            raise HermesError(f"Bad max_children {max_children!r}: use a whole number ≥ 1 "
                              "or None.")
        if session is None:
            session = _default_session()
        if not isinstance(session, Session):
            raise HermesError(f"Bad session {type(session).__name__}: pass Agent(hj.Session(...)"
                              "), or nothing in a notebook (the kernel's session).")
        self.session = session
        self.name = name
        self.owner_id = f"agent:{name}"
        self.model = model or self.session.model
        self.max_children = max_children
        self.max_depth = max_depth
        self._output_types = output_types
        self._extra_tools, self._toolsets = list(tools), list(toolsets)
        functions = [*session_tools(self.session, self, max_depth=max_depth,
                                    max_children=max_children, output_types=output_types),
                     *self._extra_tools]
        self._registry = build_registry(functions, self._toolsets, self.session.workspace,
                                        self.session.services.processes)
        self._system = system_prompt or DEFAULT_PARENT_PROMPT
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._turn_lock = threading.Lock()
        self._history: list[dict[str, Any]] = [{"role": "system", "content": self._system}]
        self._inbox: list[tuple[str, str]] = []  # (task id, message) waiting for a turn
        self._usage = Usage()
        self._closed = False
        book = self.session.attachment("agents", AgentBook)
        book.add(self)  # refuses a second live agent of this name
        try:
            self._unsubscribe = self.session.subscribe(self._on_event)
        except BaseException:
            book.remove(self)
            raise

    def __repr__(self) -> str:
        live = sum(1 for t in self.children if not t.done())
        return (f"<Agent {self.name!r}: {len(self.children)} children ({live} live), "
                f"{self.waiting} results waiting>")

    # ---- public ------------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """The conversation so far (system prompt first), as sent to the model."""
        with self._lock:
            return [dict(m) for m in self._history]

    @property
    def children(self) -> list[Task]:
        """Every task this agent started, in creation order."""
        return [t for t in self.session.tasks() if t.owner == self.owner_id]

    @property
    def waiting(self) -> int:
        """How many children's results wait for the next turn."""
        with self._lock:
            return len(self._inbox)

    @property
    def usage(self) -> Usage:
        """Tokens and calls of the parent's own turns (children count in their tasks)."""
        with self._lock:
            return self._usage

    def wait_for_results(self, count: int = 1, timeout: float | None = None) -> bool:
        """Block until at least `count` results wait for the next turn; False on timeout
        (seconds). For scripts and tests: a notebook simply asks again later."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._inbox) >= count, timeout)

    def reset(self) -> None:
        """Start a fresh conversation. Children keep running; their results still arrive."""
        with self._lock:
            self._history = [{"role": "system", "content": self._system}]

    def ask(self, message: str | None = None, *,
            on_text: Callable[[str], None] | None = None) -> AgentReply:
        """One turn: the results that arrived, then `message` (None: only take results in).

        Blocks the caller until the parent's own turn ends (children run in the background);
        `on_text(piece)` receives the reply as it streams, on the caller's thread.
        Raises `HermesError` when there is nothing to say, or when another turn is running.
        """
        if message is not None and not isinstance(message, str):
            raise HermesError(f"Bad message {message!r}: pass text, or nothing to take in "
                              "the results that arrived.")
        if self._closed:
            raise HermesError(f"Agent {self.name!r} is closed: make a new Agent (in a "
                              f"notebook, hj.get_agent({self.name!r})).")
        if not self._turn_lock.acquire(blocking=False):
            raise HermesError(f"Agent {self.name!r} is answering another turn: wait for it.")
        try:
            return self._ask(message.strip() if message else "", on_text)
        finally:
            self._turn_lock.release()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called: a closed agent takes no more turns."""
        return self._closed

    def close(self) -> None:
        """Stop hearing about children (they keep running in the session) and free the name:
        a new `Agent` of this name may then be made in the session. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unsubscribe()
        self.session.attachment("agents", AgentBook).remove(self)
        self._inbox_changed()

    def move_to(self, session: Session) -> Agent:
        """This agent on `session`, its conversation, usage and waiting results carried over;
        this one is closed. Its children stay in the old session (found there by id).
        For a kernel whose session was rebuilt (new endpoint or keys). Raises `HermesError`
        while a turn runs, or when `session` has a live agent of this name."""
        if not self._turn_lock.acquire(blocking=False):
            raise HermesError(f"Agent {self.name!r} is answering another turn: wait for it.")
        try:
            moved = Agent(session, name=self.name, model=None if self.model == self.session.model
                          else self.model, system_prompt=self._system, tools=self._extra_tools,
                          toolsets=self._toolsets, max_children=self.max_children,
                          max_depth=self.max_depth, output_types=self._output_types)
            self.close()  # no result arrives here after this
            with self._lock:
                history, inbox, usage = list(self._history), list(self._inbox), self._usage
            with moved._lock:
                moved._history, moved._inbox, moved._usage = history, inbox, usage
            if inbox:
                moved._inbox_changed()
        finally:
            self._turn_lock.release()
        return moved

    # ---- one turn ----------------------------------------------------------------------
    def _ask(self, message: str, on_text: Callable[[str], None] | None) -> AgentReply:
        with self._lock:
            arrived, self._inbox = self._inbox, []
            if not message and not arrived:
                raise HermesError("Nothing to say and no results have arrived: pass a message.")
            convo = [dict(m) for m in self._history]
        if arrived:
            self._inbox_changed()
        if arrived:
            convo.append({"role": "user", "content": results_message(arrived)})
        secrets = self.session.secrets  # nothing secret reaches the model, the cell or history
        if message:
            convo.append({"role": "user", "content": secrets.redact(message)})
        before = {t.id for t in self.children}
        sent = len(convo)
        pieces: queue.SimpleQueue[str] = queue.SimpleQueue()
        ended = threading.Event()
        future = self.session.services.submit(self._turn(convo, pieces.put, ended))
        shown = secrets.stream()  # a key split across two pieces never shows half

        def show(safe: str) -> None:
            if safe and on_text is not None:
                on_text(safe)

        try:
            pump(future, pieces, lambda piece: show(shown.feed(piece)))
            show(shown.flush())
        except KeyboardInterrupt:
            future.cancel()  # cancels the turn's asyncio task on the engine loop
            ended.wait(5.0)
            self._commit(secrets.redact_data(repair(convo)), Usage())
            raise
        try:
            text, trace, usage = future.result()
        except ProviderError as err:  # the parent's own model call failed for good
            if len(convo) > sent:  # it got as far as tool calls: keep what they did
                self._commit(secrets.redact_data(repair(convo)), Usage())
            raise HermesError(f"The model call of agent {self.name!r} failed: "
                              f"{secrets.redact(str(err))}") from None
        text = secrets.redact(text)
        convo = secrets.redact_data(convo)
        self._commit(convo, usage)
        started = [t for t in self.children if t.id not in before]
        return AgentReply(text, trace, started, [task_id for task_id, _ in arrived], usage)

    async def _turn(self, convo: list[dict[str, Any]], emit: Callable[[str], None],
                    ended: threading.Event) -> tuple[str, list[ToolTraceEntry], Usage]:
        try:
            schemas = self._registry.schemas() or None
            trace: list[ToolTraceEntry] = []
            usage = Usage()
            engine = self.session.services
            for _ in range(MAX_TURN_CALLS):
                done = await engine.stream_completion(self.model, convo, schemas, emit)
                usage = usage + Usage(done.prompt_tokens, done.completion_tokens, 1)
                # ids are unique and provider extras kept (engine/stream.py)
                calls = [{"id": c["id"], **c["function"]} for c in done.tool_calls]
                convo.append(done.assistant_message())
                if not calls:
                    return done.text, trace, usage
                if done.text:
                    emit("\n")
                for call in calls:
                    outcome = await engine.run_tool(self._registry, call["name"],
                                                    call["arguments"])
                    trace.append(ToolTraceEntry(call["name"], call["arguments"],
                                                short(outcome.text, 200), outcome.ok,
                                                outcome.duration_s))
                    convo.append({"role": "tool", "tool_call_id": call["id"],
                                  "content": outcome.text})
            note = f"(stopped after {MAX_TURN_CALLS} model calls in one turn)"
            emit(note)
            return note, trace, usage
        finally:
            ended.set()

    def _commit(self, convo: list[dict[str, Any]], usage: Usage) -> None:
        with self._lock:
            self._history = convo
            self._usage = self._usage + usage

    def _on_event(self, event: Event) -> None:
        """Event thread: a child of ours ended → queue its result message."""
        if event.kind != "finished" or event.task_id is None:
            return
        try:
            task = self.session.task(event.task_id)
        except HermesError:
            return
        if task.owner != self.owner_id or task.result is None:
            return
        with self._lock:
            self._inbox.append((task.id, result_message(task, task.result)))
            self._arrived.notify_all()
        self._inbox_changed()

    def _inbox_changed(self) -> None:
        """Tell the faces (through the session's events) that `waiting` moved."""
        self.session._emit("agent_inbox", None, agent=self.name, waiting=self.waiting)


_default_session_factory: Callable[[], Session] | None = None


def set_default_session_factory(factory: Callable[[], Session]) -> None:
    """Where `Agent(session=None)` gets its session (the notebook layer registers the
    kernel's `get_session`)."""
    global _default_session_factory
    _default_session_factory = factory


def _default_session() -> Session:
    if _default_session_factory is None:
        raise HermesError("No session: pass Agent(session=hj.Session(...)).")
    return _default_session_factory()
