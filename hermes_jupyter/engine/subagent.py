"""The subagent loop: a fresh conversation, then model calls and tool calls until an answer."""

from __future__ import annotations

import uuid
from concurrent.futures import Executor
from typing import Any

from ..core.models import ExitReason, ToolTraceEntry
from ..core.text import short
from .provider import Provider
from .task import TaskControl

__all__ = ["DEFAULT_SYSTEM_PROMPT", "LimitReached", "run_agent", "steer_message"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a focused subagent working in the background for a parent agent in a Jupyter "
    "notebook. You know only the goal and context you were given. Use your tools when they "
    "help; do not ask questions, nobody can answer them. Messages that start with "
    "'[steer from parent]' arrive while you work: follow them. When you are done, reply with a "
    "concise final summary of what you found or did; only that summary reaches the parent."
)


class LimitReached(Exception):
    """A task hit one of its limits; `reason` names it (the result's exit_reason)."""

    def __init__(self, reason: ExitReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def first_message(goal: str, context: str) -> str:
    text = f"Goal:\n{goal}"
    return f"{text}\n\nContext:\n{context}" if context else text


def steer_message(message: str) -> dict[str, str]:
    return {"role": "user", "content": f"[steer from parent] {message}"}


async def run_agent(
    control: TaskControl,
    provider: Provider,
    executor: Executor,
    system_prompt: str,
    transcript: list[dict[str, Any]],
) -> str:
    """Run the task to its final answer and return that summary.

    `transcript` is filled in place, so whoever settles the task keeps the partial
    conversation when this coroutine is cancelled or fails.
    """
    task = control.task
    transcript += [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": first_message(task.goal, task.context)},
    ]
    schemas = task.tools.schemas() or None
    for _ in range(task.max_iterations):
        transcript += [steer_message(m) for m in control.take_steers()]
        completion = await provider.complete(
            task.model,
            transcript,
            schemas,
            on_text=control.on_text,
            on_event=lambda kind, data: control.emit(kind, **data),
            on_request=control.count_request,
        )
        control.add_usage(completion.prompt_tokens, completion.completion_tokens)
        control.emit(
            "model_call",
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            finish_reason=completion.finish_reason,
        )
        calls = [dict(c, id=c["id"] or f"call_{uuid.uuid4().hex[:12]}")
                 for c in completion.tool_calls]
        message: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
        if calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls
            ]
        transcript.append(message)
        if calls:
            for call in calls:
                transcript.append(await _run_tool(control, call, executor))
            continue
        if control.try_finish():
            return completion.text
        control.set_activity("reading steering")
    raise LimitReached(
        ExitReason.MAX_ITERATIONS,
        f"stopped after {task.max_iterations} model calls (max_iterations); raise the limit "
        "or narrow the goal",
    )


async def _run_tool(
    control: TaskControl, call: dict[str, str], executor: Executor
) -> dict[str, Any]:
    name, arguments = call["name"], call["arguments"]
    control.set_activity(f"tool: {name}", f"→ {name}({short(arguments, 120)})")
    control.emit("tool_call", name=name, arguments=short(arguments, 2000))
    outcome = await control.task.tools.run(name, arguments, executor)
    text = control.redact(outcome.text)  # before the trace, the transcript, the next request
    preview = short(text, 200)
    control.record_tool(ToolTraceEntry(name, arguments, preview, outcome.ok, outcome.duration_s))
    control.set_activity("thinking", f"← {name}: {short(text, 160)}")
    control.emit("tool_result", name=name, ok=outcome.ok, preview=preview,
               duration_s=round(outcome.duration_s, 4))
    return {"role": "tool", "tool_call_id": call["id"], "content": text}

