"""Tasks that outlive their kernel on a Dask cluster: who owns them, where they are kept, and
how a new kernel takes them back.

With `cluster=` and a journal, a session publishes one dataset on the scheduler,
`hermes-<session>`, holding its engine actors' futures (and their workers' addresses). A
published future stays wanted after its client is gone, so the engines, and the tasks they
run, outlive the kernel. Each journal row of such a task names the cluster as its owner
(`owner_of`): `{"kind": "dask", "scheduler": ..., "session": ...}`; a kernel opening the
journal leaves those rows alone while the scheduler answers (`lease.py`). A new session on the
same journal and cluster finds the rows whose owner is its scheduler, reads the dataset of
each session named there, and calls `attach` on each engine: it gets every task's facts and
its whole op history, replays them on a new `TaskControl`, and then follows the task like its
own. An engine whose worker is gone is read from the copy its keeper left on the scheduler.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import HermesError
from ..core.models import ExitReason

if TYPE_CHECKING:
    from .task import TaskControl

__all__ = ["Adopted", "engines_dataset", "owner_of", "replay", "session_of", "tasks_dataset"]


@dataclass(frozen=True)
class Adopted:
    """One task a new kernel takes over: its facts, every op since its start, and the index
    of its engine among the backend's (None: its worker is gone; read from the scheduler)."""

    facts: dict[str, Any]
    history: list[tuple[Any, ...]]
    engine: int | None


def engines_dataset(token: str) -> str:
    return f"hermes-{token}"


def tasks_dataset(token: str, index: int) -> str:
    return f"hermes-{token}-{index}-tasks"


def owner_of(scheduler: str, token: str) -> str:
    """The journal owner of a session's tasks on the cluster at `scheduler`."""
    return json.dumps({"kind": "dask", "scheduler": scheduler, "session": token},
                      sort_keys=True)


def session_of(owner: str | None, scheduler: str) -> str | None:
    """The cluster session token of `owner` when it is a session on `scheduler`, else None."""
    if owner is None:
        return None
    with contextlib.suppress(ValueError, AttributeError):
        data = json.loads(owner)
        if data.get("kind") == "dask" and data.get("scheduler") == scheduler:
            return str(data["session"])
    return None


def replay(control: TaskControl, op: tuple[Any, ...]) -> None:
    """Apply one worker op to the kernel's control through its public methods."""
    kind = op[0]
    if kind == "text":
        control.on_text(op[1])
    elif kind == "reasoning":
        control.on_reasoning(op[1])
    elif kind == "hidden":
        control.note_answer(op[1])
    elif kind == "request":
        control.count_request()
    elif kind == "usage":
        control.add_usage(op[1], op[2], op[3], op[4])
    elif kind == "activity":
        control.set_activity(op[1], op[2])
    elif kind == "tool":
        control.record_tool(op[1])
    elif kind == "steer":
        with contextlib.suppress(HermesError):
            control.accept_steer(op[1])
    elif kind == "steers":
        control.take_steers(op[1])
    elif kind == "await":  # the worker's approval desk waits for the kernel's decision
        control.await_approval(op[1])
    elif kind == "resolved":
        control.resolve_approval(op[1])
    elif kind == "finish":
        control.try_finish()
    elif kind == "event":
        control.emit(op[1], **op[2])
    elif kind == "messages":  # the conversation from index op[1] on (journaled there)
        control.conversation.replace(op[1], op[2])
    elif kind == "end":
        _, reason, summary, error, transcript, truncated, data = op
        reason = ExitReason(reason)  # a redacted copy (the scheduler's) holds it as text
        spec = control.task.output_type
        if spec is not None and data is not None:  # the worker checked the schema; the
            verdict = spec.revive(data)            # kernel's own class checks the rest
            data = verdict.value
            if not verdict.ok:
                reason, data = ExitReason.INVALID_OUTPUT, None
                error = (f"the answer matched the schema on the worker but not "
                         f"{spec.name} here: {'; '.join(verdict.errors)}")
        control.settle(reason, summary=summary, error=error, transcript=transcript,
                       truncated=truncated, data=data)
