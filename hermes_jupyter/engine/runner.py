"""Running one task on the engine loop, and settling it however it ends.

`run_task` is the task's coroutine: the subagent loop, then `settle` with the end's
`ExitReason`. A cancel or a timeout keeps the text written so far (truncated); a limit keeps
its partial text; a bug of ours or of a library becomes a result, never a lost task. Before a
timeout, a visible steer asks the child to wrap up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from ..core.errors import HermesError
from ..core.models import ExitReason
from .approvals import Approvals, TaskClock
from .pricing import Pricer
from .provider import Provider, ProviderError
from .subagent import WRAP_UP, LimitReached, run_agent
from .task import TaskControl

__all__ = ["run_task", "time_out"]


async def run_task(
    control: TaskControl,
    provider: Provider,
    executor: Executor,
    system_prompt: str,
    pricer: Pricer,
    redact: Callable[[str], str],
    approvals: Approvals,
) -> None:
    """Run the task's subagent loop and settle it (engine loop only). Tool calls pass the
    approval desk; the timeout clock pauses while the task awaits approval."""
    task = control.task
    clock = None
    if task.timeout is not None:
        clock = TaskClock(asyncio.get_running_loop(), [
            (task.timeout, functools.partial(time_out, control)),
            (_warn_at(task.timeout), functools.partial(_warn_to_wrap_up, control))])
    review = functools.partial(approvals.review, control, clock=clock)
    transcript: list[dict[str, Any]] = []
    try:
        await task.tools.prepare()  # e.g. start an MCP server and list its tools
        end = await run_agent(control, provider, executor, system_prompt, transcript, pricer,
                              review)
        control.settle(end.reason, summary=end.summary, transcript=transcript,
                       truncated=end.truncated, data=end.data, error=end.error)
    except asyncio.CancelledError:
        partial = control.partial_answer()  # what was written is kept, marked truncated
        if control.cancel_reason == "timeout":
            control.settle(
                ExitReason.TIMEOUT, transcript=transcript, summary=partial,
                truncated=bool(partial),
                error=f"stopped after its {task.timeout:g}s timeout; raise timeout= or "
                      "narrow the goal",
            )
        else:
            control.settle(ExitReason.CANCELLED, transcript=transcript, summary=partial,
                           truncated=bool(partial))
    except LimitReached as err:
        control.settle(err.reason, error=str(err), transcript=transcript,
                       summary=err.partial, truncated=bool(err.partial))
    except (ProviderError, HermesError) as err:
        reason = (err.reason if isinstance(err, ProviderError)  # ToolsetError: tool_error
                  else getattr(err, "exit_reason", ExitReason.ERROR))
        control.settle(reason, error=str(err), transcript=transcript)
    except Exception as err:  # a bug of ours or of a library: keep it as a result
        message = redact(f"{type(err).__name__}: {err}")
        control.settle(ExitReason.ERROR, error=message[:500], transcript=transcript)
    finally:
        if clock is not None:
            clock.stop()


def time_out(control: TaskControl) -> None:
    """Engine loop: the task's timeout has come."""
    if control.request_cancel("timeout") is not None:
        aio = control.aio_task()
        if aio is not None:
            aio.cancel()


def _warn_at(timeout: float) -> float:
    """When to ask a task to wrap up: 30 s before its timeout, or at 80% of a short one."""
    return max(timeout - 30.0, timeout * 0.8)


def _warn_to_wrap_up(control: TaskControl) -> None:
    """Engine loop: a visible steer asking the child to finish before its timeout."""
    with contextlib.suppress(HermesError):
        control.accept_steer(WRAP_UP)
