"""Where a task's agent loop runs: the seam between the kernel's registry and the runner.

The session keeps the registry (Task handles, `TaskControl` state, events, the scheduler's
slots) and hands each started task to its backend: `run(control)` is the task's coroutine on
the engine loop (it settles the control before it returns, or is cancelled), `steer` queues a
steer where the loop will see it. `InProcessBackend` runs the loop on the engine loop (today's
path); `DaskBackend` (engine/dask_backend.py) runs it on a Dask worker.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..core import validate as check
from ..core.errors import InvalidArgumentType
from ..core.models import PendingApproval
from .provider import DEFAULT_COOLDOWN_CAP, DEFAULT_STALL_TIMEOUT
from .task import TaskControl

if TYPE_CHECKING:
    from .provider import RetryPolicy

__all__ = ["Backend", "InProcessBackend", "check_cluster", "make_backend"]


class Backend(Protocol):
    def run(self, control: TaskControl) -> Coroutine[Any, Any, None]: ...
    def steer(self, control: TaskControl, message: str) -> None: ...
    def decide(self, control: TaskControl, call_id: str | None, approved: bool, reason: str,
               remember: str | None) -> PendingApproval | None: ...
    def detach(self) -> None: ...
    def close(self) -> None: ...


class InProcessBackend:
    """The loop runs on the session's engine loop, its tools on the session's threads."""

    def __init__(self, run: Callable[[TaskControl], Coroutine[Any, Any, None]]) -> None:
        self.run = run

    def steer(self, control: TaskControl, message: str) -> None:
        control.accept_steer(message)

    def decide(self, control: TaskControl, call_id: str | None, approved: bool, reason: str,
               remember: str | None) -> PendingApproval | None:
        return None  # the session's own approval desk holds the waiting calls

    def detach(self) -> None:  # nothing outlives the kernel here
        return None

    def close(self) -> None:
        return None


def check_cluster(cluster: object) -> object:
    """`cluster` checked without connecting: None, a scheduler address (text such as
    'tcp://host:8786'), or a Dask client or cluster object. Raises `InvalidArgument`
    (`InvalidArgumentType` for a wrong type)."""
    if cluster is None:
        return None
    if isinstance(cluster, str):
        return check.text("cluster", cluster, what="a Dask scheduler address like "
                                                    "'tcp://host:8786'")
    if hasattr(cluster, "scheduler_address") or hasattr(cluster, "scheduler_info"):
        return cluster  # a cluster object (LocalCluster, ...) or a distributed.Client
    raise InvalidArgumentType(
        f"Bad cluster: got {type(cluster).__name__}; pass a distributed.Client, a cluster "
        "object, a scheduler address like 'tcp://host:8786', or None to run tasks here.")


def make_backend(
    cluster: Any,
    run: Callable[[TaskControl], Coroutine[Any, Any, None]],
    *,
    keys: list[str],
    base_url: str | None,
    workspace: str,
    system_prompt: str,
    retry: RetryPolicy | None,
    prices: Mapping[str, tuple[float, float]] | None,
    max_concurrent: int,
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
    cooldown_cap: float = DEFAULT_COOLDOWN_CAP,
    keep: bool = False,
    detach_timeout: float | None = None,
    mcp_key: str | None = None,
) -> Backend:
    """`InProcessBackend` without a cluster, else a `DaskBackend` on `cluster` (a
    `distributed.Client`, a cluster object or a scheduler address); with `keep` its tasks
    outlive the kernel, cancelled after `detach_timeout` seconds without one."""
    if cluster is None:
        return InProcessBackend(run)
    from .dask_backend import DaskBackend

    return DaskBackend(cluster, keys=keys, base_url=base_url, workspace=workspace,
                       system_prompt=system_prompt, retry=retry, prices=prices,
                       max_concurrent=max_concurrent, stall_timeout=stall_timeout,
                       cooldown_cap=cooldown_cap, keep=keep, detach_timeout=detach_timeout,
                       mcp_key=mcp_key)
