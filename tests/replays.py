"""Byte-exact replays of what real OpenAI-compatible servers send, as `Raw` outcomes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from hermes_jupyter.testing import Raw

JSON = {"Content-Type": "application/json"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, int] | None = None, *, choices: bool = True) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice (or `choices: []`)."""
    out: dict[str, Any] = {"id": "chatcmpl-r", "object": "chat.completion.chunk",
                           "created": 1, "model": "m", "choices": []}
    if choices:
        out["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        out["usage"] = usage
    return out


def text(piece: str) -> dict[str, Any]:
    return chunk({"content": piece})


def call(name: str | None = None, arguments: str | None = None, *, id: str | None = None,
         index: int | None = None, **extra: Any) -> dict[str, Any]:
    """A chunk with one tool-call delta; only the given fields are sent."""
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if arguments is not None:
        fn["arguments"] = arguments
    tc: dict[str, Any] = {"function": fn, **extra}
    if id is not None:
        tc["id"], tc["type"] = id, "function"
    if index is not None:
        tc["index"] = index
    return chunk({"tool_calls": [tc]})


def event(obj: Any, eol: str = "\n") -> str:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {data}{eol}{eol}"


def sse(*items: Any, done: bool = True, eol: str = "\n", end: str = "close") -> Raw:
    """A stream of `items` (dicts become `data:` events, strings are sent verbatim)."""
    pieces: list[bytes | str | float] = [
        item if isinstance(item, (str, bytes, float)) else event(item, eol) for item in items
    ]
    if done:
        pieces.append(f"data: [DONE]{eol}{eol}")
    return Raw(pieces, end=end)


def body(obj: dict[str, Any], status: int = 200, **headers: str) -> Raw:
    """A whole JSON body (a completion, or an error) sent with a Content-Length."""
    return Raw([json.dumps(obj)], status=status, headers={**JSON, **headers}, chunked=False)


def completion(message: dict[str, Any], finish: str | None = "stop",
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "chatcmpl-b", "object": "chat.completion", "created": 1,
                           "model": "m", "choices": [
                               {"index": 0, "message": message, "finish_reason": finish}]}
    if usage:
        out["usage"] = usage
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Poll a condition (the engine exposes no event for it); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what or predicate}")
        time.sleep(0.005)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def read_file(path: str) -> str:
    """Read a file."""
    return f"contents of {path}"
