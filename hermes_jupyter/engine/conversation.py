"""A task's conversation as far as it went, kept at every completed step, to go on from later.

The subagent loop tells its task's `Conversation` each time the transcript is consistent (the
goal written, a model reply kept, a tool result kept, a steer delivered); the conversation
keeps the new messages, redacted, and hands them to its listener (the session's journal, or
on a Dask worker the op log the kernel drains). So a task whose process died can start again
from what it had done (`resumed_transcript`): tool calls that returned are never run again,
and a call that was running when the process stopped reads that it was interrupted. Calls run
one at a time in order after the approval desk has decided on all of a turn's calls, so the
first unanswered call may have taken effect and the ones after it did not run; a call waiting
for a person is marked in the kept message (`CALLS_KEY`, `mark`) while it waits, and then no
call of that turn has run. The mark is never sent to a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CALLS_KEY", "INTERRUPTED_CALL", "NOT_STARTED_CALL", "RESUMED_NOTE",
           "UNAPPROVED_CALL", "Conversation", "Listener", "resumed_transcript",
           "unanswered"]

Message = dict[str, Any]
Listener = Callable[[int, list[Message]], None]
"""`(start, messages)`: the conversation from index `start` on is now `messages`."""

INTERRUPTED_CALL = ("[engine] Interrupted before this call finished (the process running the "
                    "task stopped); it has no result and may or may not have taken effect: "
                    "check before running it again.")
UNAPPROVED_CALL = ("[engine] This call was waiting for a person's approval when the task "
                   "stopped; it did not run. Ask for it again if it is still needed.")
NOT_STARTED_CALL = ("[engine] The task stopped before this call started; it did not run. Ask "
                    "for it again if it is still needed.")
CALLS_KEY = "hj_waiting"
"""The key of a kept assistant message mapping those of its tool call ids that wait for a
person's approval to "approval" (the journal's and the worker's copy only; never sent)."""
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
        (nothing when it gained nothing, or when no listener wants it: a task with no journal
        and not on a worker has nobody to go on from its copy, so it redacts and keeps none)."""
        with self._lock:
            start, self._seen = self._seen, len(transcript)
            if self.listener is None:
                return
        if len(transcript) > start:
            self.replace(start, transcript[start:])

    def mark(self, call_ids: list[str], state: str | None) -> None:
        """The tool calls `call_ids` of the last kept assistant message are at `state`
        ("approval": waiting for a person; None: decided): kept, and told to the listener."""
        with self._lock:
            index = next((i for i in range(len(self._messages) - 1, -1, -1)
                          if self._messages[i].get("tool_calls")), None)
            if index is None:
                return
            message = dict(self._messages[index])
            ids = {call.get("id") for call in message["tool_calls"]}
            marks = {k: v for k, v in (message.pop(CALLS_KEY, None) or {}).items()
                     if k not in call_ids}
            marks.update({c: state for c in call_ids if c in ids and state is not None})
            if marks:
                message[CALLS_KEY] = marks
            self._messages[index] = message
            tail = self._messages[index:]
            listener = self.listener
        if listener is not None:
            listener(index, tail)

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
    prior messages, a result for each tool call that has none (`unanswered`), and a note
    saying the task was resumed. Every prior message but the system prompt keeps its
    order (without `CALLS_KEY`); what is added comes after them."""
    body = [dict(m) for m in prior if m.get("role") != "system"]
    answered = {m.get("tool_call_id") for m in body if m.get("role") == "tool"}
    missing = [pair for m in body for pair in unanswered(m, answered)]
    for message in body:
        message.pop(CALLS_KEY, None)
    return [{"role": "system", "content": system_prompt}, *body,
            *({"role": "tool", "tool_call_id": call_id, "content": text}
              for call_id, text in missing),
            {"role": "user", "content": RESUMED_NOTE}]


def unanswered(message: Message, answered: set[Any]) -> list[tuple[str, str]]:
    """(call id, the result the model reads) for each call of `message` without a result in
    `answered`: while any call waited for approval none had run; else the first may have
    taken effect and those after it did not start."""
    waiting = message.get(CALLS_KEY) or {}
    calls = [c["id"] for c in message.get("tool_calls") or () if c.get("id") not in answered]
    if waiting:
        return [(c, UNAPPROVED_CALL if c in waiting else NOT_STARTED_CALL) for c in calls]
    return [(c, INTERRUPTED_CALL if i == 0 else NOT_STARTED_CALL) for i, c in enumerate(calls)]
