"""The session's approval desk: tool calls that wait for a person, and their decisions.

`review` runs on the engine loop between a model call and the tools it asked for: it asks the
task's `ApprovalPolicy` (`tools/approval.py`) about every call that needs approval, puts the
ones that must wait in the task's `pending_approvals` (state `awaiting_approval`, no model
call open, the slot kept, the task's timeout paused) and waits for `decide` (any thread),
the approval timeout, or a cancel. A denial is returned as the text the model reads as the
tool's result.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import HermesError
from ..core.models import PendingApproval
from ..core.text import short
from ..tools import ToolRegistry
from ..tools.approval import ApprovalPolicy, Verdict, assess, check_pattern, matches
from .task import TaskControl

__all__ = ["Approvals", "TaskClock"]


@dataclass
class _Waiter:
    control: TaskControl
    pending: PendingApproval
    words: tuple[str, ...] | None
    future: asyncio.Future[tuple[bool, str]]
    loop: asyncio.AbstractEventLoop
    decision: tuple[bool, str] | None = field(default=None)


class Approvals:
    """Pending calls of every task of one session and the patterns remembered; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []  # oldest first
        self._remembered: list[str] = []

    @property
    def remembered(self) -> tuple[str, ...]:
        """Patterns approved for the rest of the session (`approve(..., remember=...)`)."""
        with self._lock:
            return tuple(self._remembered)

    async def review(self, control: TaskControl, calls: list[dict[str, Any]],
                     clock: TaskClock | None) -> dict[str, str]:
        """Engine loop: the calls that must not run, by call id, with the text the model
        reads instead of a result. Waits while any call awaits a decision."""
        task = control.task
        refused: dict[str, str] = {}
        asks: list[tuple[PendingApproval, tuple[str, ...] | None]] = []
        for call in calls:
            fn = call.get("function") or call  # the wire format: {"id", "function": {...}}
            name, raw = str(fn["name"]), str(fn["arguments"])
            need = task.tools.approval_reason(name)
            args = _arguments(raw)
            if need is None or args is None:  # bad JSON: the registry answers without running
                continue
            verdict = assess(name, args, need, task.approval, self.remembered)
            if verdict.action == "ask":
                asks.append((PendingApproval(call["id"], name, raw,
                                             verdict.reason, time.time()), verdict.words))
                continue
            if verdict.action != "run":
                refused[call["id"]] = _policy_text(verdict, task.approval.mode)
            control.emit("approval_decided", call_id=call["id"], tool=name,
                         approved=verdict.action == "run", by="policy", reason=verdict.reason)
        if asks:
            refused.update(await self._wait(control, asks, clock))
        return refused

    def screen(self, registry: ToolRegistry, name: str, arguments: str,
               policy: ApprovalPolicy) -> str | None:
        """For calls no one can wait on (a parent agent's own tools): None when the call may
        run (it needs no approval, or the policy or a pattern lets it), else the refusal text."""
        need = registry.approval_reason(name)
        args = _arguments(arguments)
        if need is None or args is None:
            return None
        verdict = assess(name, args, need, policy, self.remembered)
        if verdict.action == "run":
            return None
        if verdict.action == "refuse":
            return _policy_text(verdict, policy.mode)
        return (f"Error: this call needs a person's approval ({verdict.reason}); a parent "
                "agent's own calls cannot wait for one, so it was not run. Delegate it to a "
                "subagent, whose calls can be approved, or do without it.")

    def remember(self, pattern: str) -> int:
        """Any thread: approve calls matching `pattern` for the rest of the session, the
        waiting ones now; returns how many waiting calls that approved (a decision made on
        another desk, e.g. another Dask worker of the session, reaching this one)."""
        pattern = check_pattern(pattern)
        with self._lock:
            self._remembered.append(pattern)
            chosen = [w for w in self._waiting if w.words is not None
                      and matches(pattern, w.words)]
            for waiter in chosen:
                self._waiting.remove(waiter)
                waiter.decision = (True, "")
        for waiter in chosen:
            self._resolve(waiter, "remembered pattern")
        return len(chosen)

    def decide(self, control: TaskControl, call_id: str | None, approved: bool,
               reason: str = "", remember: str | None = None) -> PendingApproval:
        """Any thread: approve or deny the pending call `call_id` (None: the oldest) of the
        task. Raises `HermesError` when there is no such call."""
        if remember is not None:
            remember = check_pattern(remember)
        task_id = control.task.id
        with self._lock:
            mine = [w for w in self._waiting if w.control is control]
            chosen = [w for w in mine if call_id is None or w.pending.call_id == call_id][:1]
            if not chosen:
                raise HermesError(_nothing_pending(task_id, call_id, mine))
            if remember is not None:
                self._remembered.append(remember)
                chosen += [w for w in self._waiting if w not in chosen and w.words is not None
                           and matches(remember, w.words)]
            for waiter in chosen:
                self._waiting.remove(waiter)
                waiter.decision = (approved, reason)
        for n, waiter in enumerate(chosen):
            self._resolve(waiter, "user" if n == 0 else "remembered pattern")
        return chosen[0].pending

    async def _wait(self, control: TaskControl,
                    asks: list[tuple[PendingApproval, tuple[str, ...] | None]],
                    clock: TaskClock | None) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        with self._lock:  # pending in the task and decidable here in one step
            shown = control.await_approval([pending for pending, _ in asks])
            waiters = [_Waiter(control, pending, words, loop.create_future(), loop)
                       for pending, (_, words) in zip(shown, asks, strict=True)]
            self._waiting += waiters
        control.conversation.mark([p.call_id for p in shown], "approval")  # a resume knows
        for waiter in waiters:
            control.emit("approval_requested", **waiter.pending.to_dict())
        if clock is not None:
            clock.pause()
        limit = control.task.approval.timeout
        by, reason = "cancel", "the task was cancelled"
        late: list[_Waiter] = []
        try:
            await asyncio.wait([w.future for w in waiters], timeout=limit)
            by, reason = "timeout", f"no one decided within {limit or 0:g}s (approval_timeout)"
        finally:
            with self._lock:
                late = [w for w in waiters if w in self._waiting]
                for waiter in late:
                    self._waiting.remove(waiter)
                    waiter.decision = (False, reason)
            for waiter in late:
                self._resolve(waiter, by)
            if clock is not None:
                clock.resume()
        control.conversation.mark([w.pending.call_id for w in waiters], None)  # decided
        out = {}
        for waiter in waiters:
            assert waiter.decision is not None
            approved, reason = waiter.decision
            if not approved:
                timed_out = by == "timeout" and any(w is waiter for w in late)
                out[waiter.pending.call_id] = (_timeout_text(limit) if timed_out
                                               else _denial_text(reason))
        return out

    def _resolve(self, waiter: _Waiter, by: str) -> None:
        assert waiter.decision is not None
        approved, reason = waiter.decision
        if waiter.control.resolve_approval(waiter.pending.call_id):
            waiter.control.emit("approval_decided", call_id=waiter.pending.call_id,
                                tool=waiter.pending.tool, approved=approved, by=by,
                                reason=reason)
        if not waiter.loop.is_closed():
            waiter.loop.call_soon_threadsafe(_set, waiter.future, waiter.decision)


class TaskClock:
    """A task's timeout and wrap-up warning timers, which pause while it awaits approval."""

    def __init__(self, loop: asyncio.AbstractEventLoop, marks: list[tuple[float, Callable[[],
                 None]]]) -> None:
        self._loop = loop
        self._left = [(at, fn) for at, fn in marks]  # seconds still to wait, callback
        self._handles: list[asyncio.TimerHandle] = []
        self._since = 0.0
        self.resume()

    def pause(self) -> None:
        ran = self._loop.time() - self._since
        for handle in self._handles:
            handle.cancel()
        self._handles = []
        self._left = [(at - ran, fn) for at, fn in self._left if at - ran > 0]

    def resume(self) -> None:
        if self._handles:
            return
        self._since = self._loop.time()
        self._handles = [self._loop.call_later(max(0.0, at), fn) for at, fn in self._left]

    def stop(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles, self._left = [], []


def _set(future: asyncio.Future[tuple[bool, str]], value: tuple[bool, str]) -> None:
    if not future.done():
        future.set_result(value)


def _arguments(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _denial_text(reason: str) -> str:
    why = f": {reason}" if reason else ""
    return (f"Error: a person denied this call{why}. It did not run; do not call it again "
            "the same way: do without it or try something else.")


def _timeout_text(limit: float | None) -> str:
    return (f"Error: this call waited for a person's approval and timed out after "
            f"{limit or 0:g}s (approval_timeout); nobody denied it, but it did not run. Do "
            "without it, or ask the user to approve such calls sooner.")


def _policy_text(verdict: Verdict, mode: str) -> str:
    if verdict.action == "refuse":
        return (f"Error: refused: {verdict.reason}. Such commands never run here; do without "
                "it.")
    return (f"Error: this call needs a person's approval ({verdict.reason}) and this task runs "
            f"with approval={mode!r}, so it was not run; do without it.")


def _nothing_pending(task_id: str, call_id: str | None,
                     mine: list[_Waiter]) -> str:
    if not mine:
        return f"Task {task_id} has no tool call awaiting approval."
    ids = ", ".join(f"{w.pending.call_id} ({short(w.pending.tool, 30)})" for w in mine)
    return f"Task {task_id} has no pending call {call_id!r}; pending: {ids}."
