"""The subagent loop: a fresh conversation, then model calls and tool calls until an answer."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ..core.models import ExitReason, ToolTraceEntry
from ..core.text import short
from .provider import Completion, Provider
from .task import TaskControl

__all__ = ["DEFAULT_SYSTEM_PROMPT", "Answer", "LimitReached", "run_agent", "steer_message"]

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


@dataclass(frozen=True)
class Answer:
    """The final answer; `truncated` when the output token limit cut it."""

    text: str
    truncated: bool = False


REASONING_MARK = "[reasoning] "


async def run_agent(
    control: TaskControl,
    provider: Provider,
    executor: Executor,
    system_prompt: str,
    transcript: list[dict[str, Any]],
) -> Answer:
    """Run the task to its final answer and return it.

    `transcript` is filled in place, so whoever settles the task keeps the partial
    conversation when this coroutine is cancelled or fails.
    """
    task = control.task
    transcript += [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": first_message(task.goal, task.context)},
    ]
    schemas = task.tools.schemas() or None
    live = _LiveTail(control)
    for _ in range(task.max_iterations):
        transcript += [steer_message(m) for m in control.take_steers()]
        completion = await provider.complete(
            task.model,
            transcript,
            schemas,
            on_text=live.text,
            on_event=lambda kind, data: control.emit(kind, **data),
            on_request=live.request,
            on_reasoning=live.reasoning,
            on_activity=control.set_activity,
        )
        _count(control, completion)
        calls = completion.tool_calls
        if calls and completion.truncated:  # a call cut by the output limit never runs
            transcript.append(completion.assistant_message(with_calls=False))
            transcript.append(_cut_call_notice(calls))
            control.set_activity("thinking", "✂ a tool call was cut by the output limit")
            continue
        transcript.append(completion.assistant_message())
        if calls:
            for call in calls:
                transcript.append(await _run_tool(control, call, executor))
            continue
        if control.try_finish():
            return Answer(completion.text, truncated=completion.truncated)
        control.set_activity("reading steering")
    raise LimitReached(
        ExitReason.MAX_ITERATIONS,
        f"stopped after {task.max_iterations} model calls (max_iterations); raise the limit "
        "or narrow the goal",
    )


class _LiveTail:
    """Reasoning in the live tail: each of its lines marked, activity `reasoning`."""

    def __init__(self, control: TaskControl) -> None:
        self._control = control
        self._started = False
        self.text = control.on_text  # the answer's hot path: no wrapper per chunk

    def request(self) -> None:
        self._control.count_request()
        self._started = False

    def reasoning(self, piece: str) -> None:
        if not self._started:
            self._started = True
            piece = REASONING_MARK + piece
        self._control.on_text(piece.replace("\n", "\n" + REASONING_MARK))
        self._control.set_activity("reasoning")


def _count(control: TaskControl, completion: Completion) -> None:
    control.add_usage(completion.prompt_tokens, completion.completion_tokens,
                      completion.usage_estimated)
    control.emit(
        "model_call",
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        usage="estimated" if completion.usage_estimated else "reported",
        finish_reason=completion.finish_reason,
    )


def _cut_call_notice(calls: list[dict[str, Any]]) -> dict[str, str]:
    names = ", ".join(str(c["function"]["name"] or "?") for c in calls)
    return {"role": "user", "content": (
        f"[engine] Your last reply was cut by the output token limit (finish_reason "
        f"\"length\") while it called {names}; the call did not run. Make the call again "
        "with shorter arguments, or split the work into smaller steps.")}


async def _run_tool(
    control: TaskControl, call: dict[str, Any], executor: Executor
) -> dict[str, Any]:
    name, arguments = call["function"]["name"], call["function"]["arguments"]
    control.set_activity(f"tool: {name}", f"→ {name}({short(arguments, 120)})")
    control.emit("tool_call", name=name, arguments=short(arguments, 2000))
    outcome = await control.task.tools.run(name, arguments, executor)
    preview = short(outcome.text, 200)
    control.record_tool(ToolTraceEntry(name, arguments, preview, outcome.ok, outcome.duration_s))
    control.set_activity("thinking", f"← {name}: {short(outcome.text, 160)}")
    control.emit("tool_result", name=name, ok=outcome.ok, preview=preview,
               duration_s=round(outcome.duration_s, 4))
    return {"role": "tool", "tool_call_id": call["id"], "content": outcome.text}

