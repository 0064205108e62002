"""What a parent `Agent` reads and keeps: its children's result messages, the repair of a
conversation an interrupted turn left, and the pump that hands streamed text to the caller."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from ..core.models import TaskResult
from ..core.text import short
from .task import Task

__all__ = ["ERROR_CAP", "INTERRUPTED", "RESULTS_HEADER", "SUMMARY_CAP", "pump", "repair",
           "result_message", "results_message"]

RESULTS_HEADER = "[background task results]"
SUMMARY_CAP = 4000  # characters of a child's summary in its pushed message
ERROR_CAP = 500
INTERRUPTED = "Interrupted by the user before this tool call finished; it has no result."


def result_message(task: Task, result: TaskResult) -> str:
    """A child's result as a message that stands on its own, each part capped."""
    lines = [f"{result.headline()}", f"Goal: {short(task.goal, 300)}"]
    if result.summary:
        summary = result.summary
        if len(summary) > SUMMARY_CAP:
            summary = summary[:SUMMARY_CAP] + f"… [cut at {SUMMARY_CAP} characters]"
        lines.append(f"Summary:\n{summary}")
    if result.error:
        lines.append(f"Error: {short(result.error, ERROR_CAP)}")
    if not result.ok:
        lines.append(f"Ended: {result.exit_reason.value} ({result.exit_reason.meaning}).")
    lines.append(f'(The full result stays available: collect_task("{task.id}").)')
    return "\n".join(lines)


def results_message(arrived: list[tuple[str, str]]) -> str:
    count = len(arrived)
    head = f"{RESULTS_HEADER} {count} of your tasks ended since your last turn."
    return "\n\n".join([head, *(text for _, text in arrived)])


def repair(convo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every tool call left without an answer one, so strict servers accept the next
    turn (an interrupted turn may stop between a call and its result)."""
    answered = {m.get("tool_call_id") for m in convo if m.get("role") == "tool"}
    out: list[dict[str, Any]] = []
    for message in convo:
        out.append(message)
        for call in message.get("tool_calls") or ():
            if call["id"] not in answered:
                out.append({"role": "tool", "tool_call_id": call["id"], "content": INTERRUPTED})
    return out


def pump(future: Any, pieces: queue.SimpleQueue[str],
          on_text: Callable[[str], None] | None) -> None:
    """Hand streamed pieces to `on_text` on this thread until the turn ends; the short
    blocking waits keep the caller interruptible."""
    while True:
        try:
            piece = pieces.get(timeout=0.05)
        except queue.Empty:
            if future.done():
                break
            continue
        if on_text is not None:
            on_text(piece)
    while not pieces.empty():
        piece = pieces.get_nowait()
        if on_text is not None:
            on_text(piece)
