"""The subagent loop: a fresh conversation, then model calls and tool calls until an answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ..core.models import ExitReason, ToolTraceEntry, Usage
from ..core.text import short
from ..tools import ToolOutcome
from .conversation import resumed_transcript
from .pricing import Pricer
from .provider import Completion, Provider
from .structured import RESPONSE_FORMAT, OutputSpec
from .task import TaskControl

__all__ = [
    "DEFAULT_SYSTEM_PROMPT", "WRAP_UP", "AgentEnd", "LimitReached", "run_agent", "steer_message",
]

DEFAULT_SYSTEM_PROMPT = (
    "You are a focused subagent working in the background for a parent agent in a Jupyter "
    "notebook. You know only the goal and context you were given. Use your tools when they "
    "help; do not ask questions, nobody can answer them. Messages that start with "
    "'[steer from parent]' arrive while you work: follow them. When you are done, reply with a "
    "concise final summary of what you found or did; only that summary reaches the parent."
)


Review = Callable[[list[dict[str, Any]]], Awaitable[dict[str, str]]]


class LimitReached(Exception):
    """A task hit one of its limits; `reason` names it (the result's exit_reason) and
    `partial` is the text written so far."""

    def __init__(self, reason: ExitReason, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.partial = partial


FINAL_CALL = (
    "[budget] You have used all your model calls. Reply now with your final summary of what "
    "you found and did, without calling any tool."
)
EMPTY_NUDGE = "Your last reply was empty. Reply with your final summary of what you found."
WRAP_UP = "Time is almost up: stop starting new work and reply now with your final summary."


def first_message(goal: str, context: str) -> str:
    text = f"Goal:\n{goal}"
    return f"{text}\n\nContext:\n{context}" if context else text


def steer_message(message: str) -> dict[str, str]:
    return {"role": "user", "content": f"[steer from parent] {message}"}


@dataclass(frozen=True)
class AgentEnd:
    """How the loop ended well: the summary, why, and whether it is a complete answer."""

    summary: str
    reason: ExitReason = ExitReason.COMPLETED
    truncated: bool = False
    data: Any = None  # the validated typed output (output_type)
    error: str | None = None  # why, when the reason is a failure (invalid_output)


async def run_agent(
    control: TaskControl,
    provider: Provider,
    executor: Executor,
    system_prompt: str,
    transcript: list[dict[str, Any]],
    pricer: Pricer | None = None,
    review: Review | None = None,
) -> AgentEnd:
    """Run the task to its final answer.

    `transcript` is filled in place, so whoever settles the task keeps the partial
    conversation when this coroutine is cancelled or fails. `review` (the approval desk) gets
    each turn's tool calls before they run and returns those that must not, by call id, with
    the text the model reads instead (it may wait for a person). Raises `LimitReached` for a
    budget or a second empty answer (with the text written so far as `partial`).
    """
    task = control.task
    typed = _Typed(getattr(task, "output_type", None), provider)
    step = control.conversation.step  # each consistent point is kept (journal, kernel)
    if task.prior_messages:  # resumed: go on from the conversation it had
        transcript += resumed_transcript(task.prior_messages, system_prompt)
        step(transcript)
    else:  # kept with the first reply (goal and context are in the task's own record)
        transcript += [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": typed.first_message(first_message(task.goal,
                                                                          task.context))},
        ]
    schemas = task.tools.schemas() or None
    nudged = False
    for _ in range(task.max_iterations):
        steers = control.take_steers()
        if steers:
            transcript += [steer_message(m) for m in steers]
            step(transcript)
        transcript += typed.late_instructions()
        completion = await _call(control, provider, transcript, schemas, pricer,
                                 typed.response_format())
        calls = completion.tool_calls
        if calls and completion.truncated:  # a call cut by the output limit never runs
            transcript.append(completion.assistant_message(with_calls=False))
            transcript.append(_cut_call_notice(calls))
            control.set_activity("thinking", "✂ a tool call was cut by the output limit")
            continue
        transcript.append(completion.assistant_message())
        if calls:
            step(transcript)
            refused = await review(calls) if review is not None else {}
            for call in calls:
                transcript.append(await _run_tool(control, call, executor,
                                                  refused.get(call["id"])))
                step(transcript)  # a call that returned is never run again on resuming
            continue
        if not completion.text.strip():
            if nudged:
                raise LimitReached(ExitReason.EMPTY_ANSWER,
                                   "the model answered with nothing twice; try another model "
                                   "or a clearer goal")
            nudged = True
            transcript.append({"role": "user", "content": EMPTY_NUDGE})
            continue
        verdict = typed.check(control.redact(completion.text))
        if verdict is not None and not verdict.ok:
            if typed.corrected:
                if control.try_finish():
                    return typed.invalid(completion.text, verdict.errors)
                continue  # a steer came in meanwhile: one more turn
            typed.corrected = True
            control.set_activity("thinking", "✗ output invalid: asking once to correct it")
            transcript.append({"role": "user", "content": typed.correction(verdict.errors)})
            continue
        if control.try_finish():  # a final answer cut by the output limit is kept, marked
            return AgentEnd(completion.text, truncated=completion.truncated,
                            data=verdict.value if verdict is not None else None)
        control.set_activity("reading steering")
    return await _last_call(control, provider, transcript, pricer, typed)


async def _last_call(control: TaskControl, provider: Provider, transcript: list[dict[str, Any]],
                     pricer: Pricer | None, typed: _Typed) -> AgentEnd:
    """The iteration budget is spent: one last call without tools asks for the summary."""
    task = control.task
    control.set_activity("writing its final summary", "… max_iterations reached: final summary")
    transcript.append({"role": "user", "content": FINAL_CALL})
    completion = await _call(control, provider, transcript, None, pricer,
                             typed.response_format())
    transcript.append(completion.assistant_message(with_calls=False))
    if not completion.text.strip():
        raise LimitReached(ExitReason.EMPTY_ANSWER,
                           f"used all {task.max_iterations} model calls (max_iterations) and "
                           "gave no final summary when asked; raise the limit or narrow the goal")
    control.try_finish()
    verdict = typed.check(control.redact(completion.text))
    if verdict is not None and not verdict.ok:
        return typed.invalid(completion.text, verdict.errors)
    return AgentEnd(completion.text, ExitReason.MAX_ITERATIONS, truncated=True,
                    data=verdict.value if verdict is not None else None)


class _Typed:
    """A task's typed output (`output_type`), turn by turn: the endpoint's structured output
    while it takes it, else the schema as instructions; validation of the final answer and
    its one correction turn. Without an output type every method does nothing."""

    def __init__(self, spec: OutputSpec | None, provider: Provider) -> None:
        self.spec = spec
        self._provider = provider
        self._told = False  # the schema is in the conversation as instructions
        self._sent = False  # the last request carried response_format
        self.corrected = False

    def _native(self) -> bool:
        return RESPONSE_FORMAT not in self._provider.refused_fields

    def first_message(self, text: str) -> str:
        if self.spec is None:
            return text
        if self._native():
            return f"{text}\n\n{self.spec.note()}"
        self._told = True
        return f"{text}\n\n{self.spec.instructions()}"

    def response_format(self) -> dict[str, Any] | None:
        self._sent = self.spec is not None and self._native()
        return self.spec.response_format() if self.spec is not None and self._sent else None

    def late_instructions(self) -> list[dict[str, str]]:
        """The schema as instructions once the endpoint refused response_format mid-task."""
        if self.spec is None or self._told or self._native():
            return []
        self._told = True
        return [{"role": "user", "content": f"[engine] {self.spec.instructions()}"}]

    def check(self, text: str) -> Any:
        return self.spec.check(text) if self.spec is not None else None

    def correction(self, errors: tuple[str, ...]) -> str:
        assert self.spec is not None
        self._told = True
        return self.spec.correction(errors)

    def invalid(self, text: str, errors: tuple[str, ...]) -> AgentEnd:
        assert self.spec is not None
        return AgentEnd(text, ExitReason.INVALID_OUTPUT, error=(
            f"the answer did not match {self.spec.name} after one correction: "
            f"{'; '.join(errors)}"))


async def _call(control: TaskControl, provider: Provider, transcript: list[dict[str, Any]],
                schemas: list[dict[str, Any]] | None, pricer: Pricer | None,
                response_format: dict[str, Any] | None = None) -> Completion:
    """One model call, counted, priced and checked against the task's budgets."""
    task = control.task
    completion = await provider.complete(
        task.model,
        transcript,
        schemas,
        on_text=control.on_text,
        on_event=lambda kind, data: control.emit(kind, **data),
        on_request=control.count_request,
        on_reasoning=_ReasoningTail(control).write,
        on_activity=control.set_activity,
        on_hidden=control.note_answer,
        on_notice=lambda line: control.set_activity("writing", line),
        response_format=response_format,
    )
    cost = (pricer.cost(task.model, completion.prompt_tokens, completion.completion_tokens,
                        completion.reported_cost_usd)
            if pricer is not None else completion.reported_cost_usd)
    usage = control.add_usage(completion.prompt_tokens, completion.completion_tokens, cost,
                              completion.usage_estimated)
    control.emit(
        "model_call",
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        usage="estimated" if completion.usage_estimated else "reported",
        finish_reason=completion.finish_reason,
        cost_usd=cost,
    )
    over = _over_budget(task, usage)
    if over:
        raise LimitReached(ExitReason.BUDGET, over, partial=completion.text)
    return completion


def _over_budget(task: Any, usage: Usage) -> str | None:
    limit = getattr(task, "max_total_tokens", None)
    if limit is not None and usage.total_tokens >= limit:
        return (f"stopped at {usage.total_tokens} tokens (max_total_tokens={limit}); raise "
                "the budget or narrow the goal")
    cap = getattr(task, "max_cost_usd", None)
    if cap is not None and usage.cost_usd is not None and usage.cost_usd >= cap:
        return (f"stopped at ${usage.cost_usd:.4f} (max_cost_usd={cap:g}); raise the budget "
                "or narrow the goal")
    return None


REASONING_MARK = "[reasoning] "


class _ReasoningTail:
    """Reasoning in the live tail: each of its lines marked (activity `reasoning`)."""

    def __init__(self, control: TaskControl) -> None:
        self._control = control
        self._started = False

    def write(self, piece: str) -> None:
        """A piece of reasoning; "" when the answer begins (on a line of its own)."""
        if not piece:
            if self._started:
                self._started = False
                self._control.on_reasoning("\n")
            return
        if not self._started:
            self._started = True
            piece = REASONING_MARK + piece
        self._control.on_reasoning(piece.replace("\n", "\n" + REASONING_MARK))


def _cut_call_notice(calls: list[dict[str, Any]]) -> dict[str, str]:
    names = ", ".join(str(c["function"]["name"] or "?") for c in calls)
    return {"role": "user", "content": (
        f"[engine] Your last reply was cut by the output token limit (finish_reason "
        f"\"length\") while it called {names}; the call did not run. Make the call again "
        "with shorter arguments, or split the work into smaller steps.")}


async def _run_tool(
    control: TaskControl, call: dict[str, Any], executor: Executor, refused: str | None = None
) -> dict[str, Any]:
    name, arguments = call["function"]["name"], call["function"]["arguments"]
    control.set_activity(f"tool: {name}", f"→ {name}({short(arguments, 120)})")
    control.emit("tool_call", name=name, arguments=short(arguments, 2000))
    if refused is not None:  # denied or refused: it never runs, the model reads why
        outcome = ToolOutcome(refused, False, 0.0)
    else:
        outcome = await control.task.tools.run(name, arguments, executor,
                                               control.task.tool_timeout)
    text = control.redact(outcome.text)  # before the trace, the transcript, the next request
    preview = short(text, 200)
    control.record_tool(ToolTraceEntry(name, arguments, preview, outcome.ok, outcome.duration_s))
    control.set_activity("thinking", f"← {name}: {short(text, 160)}")
    control.emit("tool_result", name=name, ok=outcome.ok, preview=preview,
               duration_s=round(outcome.duration_s, 4))
    return {"role": "tool", "tool_call_id": call["id"], "content": text}

