"""What the fake model does with one request: answer (`Reply`), refuse (`Fail`) or hang up (`Drop`).

They are immutable values, so one `Reply` can be scripted many times or used as the default;
anything that must differ per request (tool-call ids, completion ids) is assigned by the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = ["Drop", "Fail", "Outcome", "Raw", "Reply", "ToolCall"]


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asks for.

    `arguments` given as a string is sent verbatim, so malformed JSON can be tested;
    a mapping is `json.dumps`-ed. `id=None` gets a fresh `call_<n>` for every request.
    """

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arguments, str):
            if not isinstance(self.arguments, Mapping):
                kind = type(self.arguments).__name__
                raise TypeError(f"ToolCall.arguments must be a str or a dict, not {kind}")
            object.__setattr__(self, "arguments", json.dumps(dict(self.arguments)))

    @property
    def arguments_text(self) -> str:
        """The arguments exactly as they go on the wire."""
        assert isinstance(self.arguments, str)  # normalised in __post_init__
        return self.arguments


@dataclass(frozen=True)
class Reply:
    """A successful completion, streamed in `chunk_size`-character pieces when asked to stream.

    A stream sends its headers at once, waits `first_delay`, sends the role chunk and the text
    and tool-call chunks `delay` apart, then the finish_reason chunk. `truncate=True` ends the
    stream cleanly (with `[DONE]`) but without a finish_reason, as several servers do after a
    complete answer. `usage=(prompt, completion)` overrides the estimate of about 4 chars per token.
    `cost` (USD) is sent as `usage.cost`, the way OpenRouter reports what a call cost.
    """

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    chunk_size: int = 16
    delay: float = 0.0
    first_delay: float = 0.0
    finish_reason: str | None = None
    truncate: bool = False
    usage: tuple[int, int] | None = None
    cost: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.tool_calls, ToolCall):
            raise TypeError("Reply.tool_calls takes a list of ToolCall, not a single ToolCall")
        calls = tuple(self.tool_calls)
        for call in calls:
            if not isinstance(call, ToolCall):
                raise TypeError(f"Reply.tool_calls items must be ToolCall, not {call!r}")
        object.__setattr__(self, "tool_calls", calls)  # a tuple keeps the value immutable
        if self.chunk_size < 1:
            raise ValueError(f"Reply.chunk_size must be >= 1, got {self.chunk_size}")
        _check_delay("Reply.delay", self.delay)
        _check_delay("Reply.first_delay", self.first_delay)
        if self.usage is not None and (
            len(self.usage) != 2 or any(not isinstance(n, int) or n < 0 for n in self.usage)
        ):
            raise ValueError(
                f"Reply.usage must be (prompt_tokens, completion_tokens), got {self.usage}"
            )
        if self.cost is not None and not (isinstance(self.cost, int | float)
                                          and 0 <= self.cost < float("inf")):
            raise ValueError(f"Reply.cost must be a number of USD >= 0, got {self.cost!r}")

    @classmethod
    def json(cls, value: Any, **options: Any) -> Reply:
        """A reply whose text is `value` as JSON (a typed final answer); `options` as for
        `Reply` (chunk_size, delay, usage, ...)."""
        return cls(text=json.dumps(value), **options)

    @property
    def effective_finish_reason(self) -> str:
        """`finish_reason`, or the one OpenAI would send for this content."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class Fail:
    """An HTTP error with an OpenAI-shaped JSON body, sent after `delay` seconds.

    `retry_after` adds a `Retry-After` header (seconds); `type` and `code` override the
    error fields derived from the status, e.g. `Fail(429, code="insufficient_quota")`.
    """

    status: int = 500
    message: str = "scripted failure"
    retry_after: float | None = None
    delay: float = 0.0
    type: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"Fail.status must be an HTTP error status, got {self.status}")
        _check_delay("Fail.delay", self.delay)
        if self.retry_after is not None:
            _check_delay("Fail.retry_after", self.retry_after)


@dataclass(frozen=True)
class Drop:
    """Close the TCP connection abruptly after `after_chunks` text chunks (no `[DONE]`).

    Each chunk carries `text`; `delay` is waited before every chunk and before hanging up.
    A non-streaming request is dropped before any response is sent.
    """

    after_chunks: int = 1
    text: str = "partial "
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.after_chunks < 0:
            raise ValueError(f"Drop.after_chunks must be >= 0, got {self.after_chunks}")
        _check_delay("Drop.delay", self.delay)


@dataclass(frozen=True)
class Raw:
    """Bytes exactly as a real server sends them: replays of other dialects and failures.

    `pieces` are written in order, each flushed at once (a `float` among them is a pause in
    seconds); a `str` is sent UTF-8 encoded. `chunked=True` frames the body with chunked
    transfer encoding (as streams are), else it is sent with a Content-Length.
    `end="close"` ends the body cleanly; `"drop"` hangs up without ending it (a dropped
    connection); `"hang"` sends nothing more and keeps the connection open until the server
    stops (a stalled stream).
    """

    pieces: Sequence[bytes | str | float] = ()
    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"Content-Type": "text/event-stream"}
    )
    chunked: bool = True
    end: str = "close"

    def __post_init__(self) -> None:
        if isinstance(self.pieces, (bytes, str)):
            object.__setattr__(self, "pieces", (self.pieces,))
        object.__setattr__(self, "pieces", tuple(self.pieces))
        object.__setattr__(self, "headers", dict(self.headers))
        if not 100 <= self.status <= 599:
            raise ValueError(f"Raw.status must be an HTTP status, got {self.status}")
        if self.end not in ("close", "drop", "hang"):
            raise ValueError(f"Raw.end must be 'close', 'drop' or 'hang', got {self.end!r}")
        if not self.chunked and any(isinstance(p, float) for p in self.pieces):
            raise ValueError("Raw pauses need chunked=True (a sized body is sent at once)")


Outcome: TypeAlias = Reply | Fail | Drop | Raw
"""Anything a script, a key rule or a responder may hand the server for one request."""


def _check_delay(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value}")
