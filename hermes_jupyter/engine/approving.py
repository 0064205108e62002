"""The approval face of a `Session`: decide on waiting tool calls, change the policy.

A mixin of `Session` (kept apart so session.py stays one screenful per concern). Thread-safe:
a decision reaches the waiting task through `Approvals` (engine/approvals.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..core import validate as check
from ..core.models import PendingApproval
from ..tools import ApprovalPolicy
from .approvals import Approvals

if TYPE_CHECKING:
    from .backends import Backend
    from .task import Task

__all__ = ["Approving"]


class Approving:
    """`approve`, `deny` and `set_approval` for a class with `task(ref)` and `_approvals`."""

    _approvals: Approvals
    _backend: Backend
    approval_policy: ApprovalPolicy
    approve_file_writes: bool

    def task(self, ref: Task | str) -> Task:
        raise NotImplementedError

    def approve(self, ref: Task | str, call_id: str | None = None, *,
                remember: str | None = None) -> PendingApproval:
        """Let the task's pending tool call `call_id` run (None: the oldest); `remember` (a
        pattern like "git status" or "pytest *") approves matching calls, waiting or later,
        for the rest of the session. Returns the call; `HermesError` when none is pending."""
        call_id = check.optional(check.text, "call_id", call_id, what="a call id like 'call_1'")
        remember = check.optional(check.text, "remember", remember, what="a pattern like 'ls *'")
        control = self.task(ref).control_for(self)
        remote = self._backend.decide(control, call_id, True, "", remember)
        if remote is not None:  # it waits on a Dask worker, which runs it
            if remember is not None:
                self._approvals.remember(remember)
            return remote
        return self._approvals.decide(control, call_id, True, remember=remember)

    def deny(self, ref: Task | str, call_id: str | None = None,
             reason: str = "") -> PendingApproval:
        """Refuse the task's pending tool call `call_id` (None: the oldest); the model reads
        `reason` as the call's result. Returns the call; `HermesError` when none is pending."""
        call_id = check.optional(check.text, "call_id", call_id, what="a call id like 'call_1'")
        reason = check.text("reason", reason, empty_ok=True)
        control = self.task(ref).control_for(self)
        remote = self._backend.decide(control, call_id, False, reason.strip(), None)
        if remote is not None:  # it waits on a Dask worker, which refuses it
            return remote
        return self._approvals.decide(control, call_id, False, reason=reason.strip())

    def set_approval(self, approval: str, allowlist: Iterable[str],
                     timeout: float | None, approve_file_writes: bool) -> None:
        """Change the approval policy for tasks started from now on (thread-safe: one swap)."""
        policy = ApprovalPolicy.checked(approval, allowlist, timeout)
        self.approve_file_writes = check.a_bool("approve_file_writes", approve_file_writes)
        self.approval_policy = policy
