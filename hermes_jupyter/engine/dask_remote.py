"""What runs one task on a Dask worker: its `RemoteControl` (the task's state there, plus an
op log for the kernel and its whole history for a kernel that re-attaches), the worker's
`SharedPool` of keys (its cooldowns shared through the kernel).
See dask_worker.py for the engine that holds them."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..core.errors import HermesError
from ..core.models import ExitReason, PendingApproval, ToolTraceEntry, Usage
from ..core.secrets import Secrets
from .credentials import CredentialPool, PooledKey
from .dask_keeper import DETACHED
from .structured import jsonable
from .task import Task, TaskControl

__all__ = ["ENGINE_OPS", "NoHost", "Op", "RemoteControl", "SharedPool"]

Op = tuple[Any, ...]
ENGINE_OPS = "*"  # in a drain, the engine's own ops (cooldowns), not a task's
_MERGED = frozenset({"text", "reasoning", "hidden"})  # streamed pieces: one op per run
_QUIET = frozenset({"steer_queued", "steer_delivered", "finished"})  # the kernel emits these


class NoHost:
    """A worker-side task has no session: its operations come from the kernel."""

    def steer(self, ref: Task, message: str) -> None:
        raise HermesError("steer worker-side tasks through the kernel's session")

    def collect(self, ref: Task, timeout: float | None = None) -> Any:
        raise HermesError("collect worker-side tasks through the kernel's session")

    def cancel(self, ref: Task) -> bool:
        raise HermesError("cancel worker-side tasks through the kernel's session")

    def approve(self, ref: Task, call_id: str | None = None, *, remember: str | None = None
                ) -> Any:
        raise HermesError("decide on worker-side calls through the kernel's session")

    def deny(self, ref: Task, call_id: str | None = None, reason: str = "") -> Any:
        raise HermesError("decide on worker-side calls through the kernel's session")


class SharedPool(CredentialPool):
    """A worker's key pool that notes its cooldowns, for the kernel to share with the
    session's other workers. A key is named by its index in the session's list (the same
    list, in the same order, on every worker): never the key, nor anything derived from it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets)
        self._cooled: list[tuple[int, float]] = []  # (index, until, on this monotonic clock)
        self._cooled_lock = threading.Lock()

    def cool_down(self, key: PooledKey, seconds: float) -> None:
        super().cool_down(key, seconds)
        with self._cooled_lock:
            self._cooled.append((key.index, key.cooldown_until))

    def take_cooled(self) -> list[Op]:
        """The cooldowns since the last call, as ("cooldown", index, seconds left)."""
        with self._cooled_lock:
            cooled, self._cooled = self._cooled, []
        now = time.monotonic()
        return [("cooldown", index, max(0.0, until - now)) for index, until in cooled]

    def cool_from_peer(self, index: int, seconds: float) -> None:
        """Another worker saw a 429 on key `index`: wait here too (not noted again)."""
        if 0 <= index < len(self.keys):
            super().cool_down(self.keys[index], seconds)


class RemoteControl(TaskControl):
    """A task's control on the worker: its own state for the loop, plus an op log of every
    change for the kernel (consecutive text pieces merged into one op)."""

    def __init__(self, task: Task, secrets: Secrets, facts: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(task, self._record_event, lambda _id, _text: None, secrets)
        self.facts = facts or {}  # what a kernel that re-attaches rebuilds the task from
        self._ops: list[Op] = []  # since the kernel's last drain
        self._history: list[Op] = []  # every op since the start (text runs as lists)
        self._ops_lock = threading.Lock()
        self.changed = False  # since the keeper last copied it to the scheduler
        self.conversation.listener = lambda start, kept: self._log(("messages", start, kept))
        self.delivered = False  # a kernel has drained its end: nothing left to keep

    def drain(self) -> list[Op]:
        with self._ops_lock:
            ops, self._ops = self._ops, []
            if any(op[0] == "end" for op in ops):
                self.delivered = True
        return ops

    def history(self, attach: bool = False) -> list[Op]:
        """Every op since the start, in order; with `attach` (a kernel takes the task over)
        the ops not yet drained are dropped, since the history holds them."""
        with self._ops_lock:
            if attach:
                self._ops = []
            self.changed = False
            return [(op[0], "".join(op[1])) if op[0] in _MERGED else op
                    for op in self._history]

    def _log(self, op: Op, kernel: bool = True) -> None:
        with self._ops_lock:
            self.changed = True
            last = self._ops[-1] if self._ops else None
            if not kernel:
                pass
            elif last is not None and op[0] in _MERGED and last[0] == op[0]:
                self._ops[-1] = (op[0], last[1] + op[1])
            elif (last is not None and op[0] == last[0] == "messages"
                  and last[1] <= op[1] <= last[1] + len(last[2])):  # steps of one drain: one op
                self._ops[-1] = ("messages", last[1], last[2][:op[1] - last[1]] + op[2])
            else:
                self._ops.append(op)
            if op[0] in _MERGED and self._history and self._history[-1][0] == op[0]:
                self._history[-1][1].append(op[1])
            elif op[0] in _MERGED:
                self._history.append((op[0], [op[1]]))
            else:
                self._history.append(op)

    def _record_event(self, kind: str, _task_id: str | None, **data: Any) -> None:
        if kind not in _QUIET:
            self._log(("event", kind, data))

    def accept_forwarded(self, message: str) -> None:
        """A steer the kernel forwards (the kernel records it itself; a kernel that
        re-attaches reads it in the history)."""
        super().accept_steer(message)
        self._log(("steer", message), kernel=False)

    def accept_steer(self, message: str) -> None:  # the worker's own, e.g. the wrap-up
        super().accept_steer(message)
        self._log(("steer", message))

    def take_steers(self, limit: int | None = None) -> list[str]:
        messages = super().take_steers(limit)
        if messages:
            self._log(("steers", len(messages)))
        return messages

    def try_finish(self) -> bool:
        finished = super().try_finish()
        if finished:
            self._log(("finish",))
        return finished

    def await_approval(self, calls: list[PendingApproval]) -> list[PendingApproval]:
        shown = super().await_approval(calls)
        self._log(("await", shown))
        return shown

    def resolve_approval(self, call_id: str) -> bool:
        resolved = super().resolve_approval(call_id)
        if resolved:
            self._log(("resolved", call_id))
        return resolved

    def set_activity(self, activity: str, line: str | None = None) -> None:
        super().set_activity(activity, line)
        self._log(("activity", activity, line))

    def on_text(self, text: str) -> None:
        super().on_text(text)
        self._log(("text", text))

    def on_reasoning(self, text: str) -> None:
        super().on_reasoning(text)
        self._log(("reasoning", text))

    def note_answer(self, text: str) -> None:
        super().note_answer(text)
        self._log(("hidden", text))

    def add_usage(self, prompt: int, completion: int, cost_usd: float | None = None,
                  estimated: bool = False) -> Usage:
        usage = super().add_usage(prompt, completion, cost_usd, estimated)
        self._log(("usage", prompt, completion, cost_usd, estimated))
        return usage

    def count_request(self) -> None:
        super().count_request()
        self._log(("request",))

    def record_tool(self, entry: ToolTraceEntry) -> None:
        super().record_tool(entry)
        self._log(("tool", entry))

    def settle(self, exit_reason: ExitReason, *, summary: str = "", error: str | None = None,
               transcript: list[dict[str, Any]] | None = None, truncated: bool = False,
               data: Any = None) -> bool:
        if (exit_reason is ExitReason.CANCELLED and error is None
                and self.cancel_reason == DETACHED):
            error = ("no kernel re-attached to it within detach_timeout; it was cancelled on "
                     "its Dask worker")
        settled = super().settle(exit_reason, summary=summary, error=error,
                                 transcript=transcript, truncated=truncated, data=data)
        if settled:  # typed output goes back as JSON; the kernel revives it as its own class
            self._log(("end", exit_reason, summary, error, transcript, truncated,
                       jsonable(data)))
        return settled
