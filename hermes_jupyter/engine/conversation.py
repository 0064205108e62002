"""A task's conversation as far as it went, kept at every completed step, to go on from later.

The subagent loop tells its task's `Conversation` each time the transcript is consistent (the
goal written, a model reply kept, a tool result kept, a steer delivered); the conversation
keeps the new messages, redacted, and hands them to its listener (the session's journal, or
on a Dask worker the op log the kernel drains). So a task whose process died can start again
from what it had done (`resumed_transcript`): tool calls that returned are never run again,
and a call that was running when the process stopped reads that it was interrupted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["INTERRUPTED_CALL", "RESUMED_NOTE", "Conversation", "Listener",
           "resumed_transcript"]

Message = dict[str, Any]
Listener = Callable[[int, list[Message]], None]
"""`(start, messages)`: the conversation from index `start` on is now `messages`."""

INTERRUPTED_CALL = ("[engine] Interrupted before this call finished (the process running the "
                    "task stopped); it has no result and may or may not have taken effect: "
                    "check before running it again.")
RESUMED_NOTE = ("[engine] This task stopped (the process running it ended) and was resumed "
                "from the conversation above: tool calls that have a result ran once and are "
                "not run again. Go on from where you left off.")


class Conversation:
    """The messages of one task so far (redacted), appended at each consistent point."""

    def __init__(self, redact_data: Callable[[Any], Any]) -> None:
        self._redact = redact_data
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._seen = 0  # how much of the loop's transcript has been taken
        self.listener: Listener | None = None  # called outside the lock, on the caller's thread

    def messages(self) -> list[Message]:
        """A copy of the messages kept so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def step(self, transcript: list[Message]) -> None:
        """The loop's `transcript` is consistent now: keep what it gained since the last step
        (nothing when it gained nothing)."""
        with self._lock:
            start, self._seen = self._seen, len(transcript)
        if len(transcript) > start:
            self.replace(start, transcript[start:])

    def drop(self) -> None:
        """The task has ended (its result holds the transcript): let the copy go."""
        with self._lock:
            self._messages = []

    def replace(self, start: int, messages: list[Message]) -> None:
        """The conversation from index `start` on is `messages` (redacted here); the kernel
        calls this with what a worker kept."""
        kept = self._redact([dict(m) for m in messages])
        with self._lock:
            start = min(start, len(self._messages))
            self._messages[start:] = kept
            listener = self.listener
        if listener is not None:
            listener(start, kept)


def resumed_transcript(prior: list[Message], system_prompt: str) -> list[Message]:
    """The transcript a task resumed from `prior` starts with: today's system prompt, the
    prior messages, a result saying "interrupted" for each tool call that has none, and a
    note saying the task was resumed. Every prior message but the system prompt keeps its
    order; what is added comes after them."""
    body = [dict(m) for m in prior if m.get("role") != "system"]
    answered = {m.get("tool_call_id") for m in body if m.get("role") == "tool"}
    missing = [call["id"] for m in body for call in (m.get("tool_calls") or ())
               if call.get("id") not in answered]
    return [{"role": "system", "content": system_prompt}, *body,
            *({"role": "tool", "tool_call_id": call_id, "content": INTERRUPTED_CALL}
              for call_id in missing),
            {"role": "user", "content": RESUMED_NOTE}]
