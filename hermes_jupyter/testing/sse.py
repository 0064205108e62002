"""The OpenAI chat-completions wire format, built from a `Reply`.

Streamed chunks and the non-streaming body come from the same pieces, so the two modes
always agree on content, tool calls and usage. Only plain dicts here; the server writes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .records import content_text
from .replies import Fail, Reply

__all__ = [
    "DONE",
    "CompletionMeta",
    "chunk",
    "completion",
    "encode_event",
    "error_body",
    "reply_deltas",
    "usage",
    "usage_chunk",
]

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class CompletionMeta:
    """The fields every chunk of one completion repeats."""

    id: str
    model: str
    created: int
    include_usage: bool = False


def encode_event(obj: dict[str, Any]) -> bytes:
    """One server-sent event carrying `obj` as compact JSON."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def reply_deltas(reply: Reply, call_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The counted deltas of a stream: text pieces, then each tool call's head and arguments.

    The head delta of a call carries id, type and name; its arguments follow in at least two
    pieces when longer than a few characters, because clients must concatenate them.
    """
    deltas: list[dict[str, Any]] = [
        {"content": piece} for piece in _split(reply.text, reply.chunk_size)
    ]
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, call_ids, strict=True)):
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        arguments = call.arguments_text
        size = (
            reply.chunk_size
            if len(arguments) <= 4
            else min(reply.chunk_size, math.ceil(len(arguments) / 2))
        )
        for piece in _split(arguments, size):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def chunk(
    meta: CompletionMeta, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice."""
    body: dict[str, Any] = {
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if meta.include_usage:
        body["usage"] = None  # OpenAI sends an explicit null until the usage chunk
    return body


def usage_chunk(meta: CompletionMeta, counts: dict[str, Any]) -> dict[str, Any]:
    """The extra last chunk sent for `stream_options={"include_usage": true}`."""
    return {
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": None,
        "choices": [],
        "usage": counts,
    }


def completion(
    meta: CompletionMeta, reply: Reply, call_ids: Sequence[str], counts: dict[str, Any]
) -> dict[str, Any]:
    """A non-streaming `chat.completion`; `truncate` shows as a null finish_reason."""
    calls = [
        {
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_text},
        }
        for call, call_id in zip(reply.tool_calls, call_ids, strict=True)
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI sends null content when the model only calls tools.
        "content": reply.text if reply.text or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": None if reply.truncate else reply.effective_finish_reason,
            }
        ],
        "usage": counts,
    }


def usage(reply: Reply, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Token counts: `reply.usage`, else about four characters per token; plus `cost` (USD)
    when the reply has one, as OpenRouter sends it.

    The prompt estimate counts the text of every message's content.
    """
    if reply.usage is not None:
        prompt, completion_tokens = reply.usage
    else:
        prompt = sum(len(content_text(m.get("content"))) for m in messages) // 4
        argument_chars = sum(len(call.arguments_text) for call in reply.tool_calls)
        completion_tokens = max(1, len(reply.text) // 4) + argument_chars // 4
    counts: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if reply.cost is not None:
        counts["cost"] = reply.cost
    return counts


# What OpenAI puts in error.type / error.code for the statuses clients branch on.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def error_body(fail: Fail) -> dict[str, Any]:
    """`{"error": {...}}` as the OpenAI API sends it, so SDKs build their usual exceptions."""
    default_type, default_code = _ERROR_KINDS.get(
        fail.status, ("server_error" if fail.status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": fail.message,
            "type": fail.type or default_type,
            "param": None,
            "code": fail.code if fail.code is not None else default_code,
        }
    }


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
