"""Provider dialects in one place: whatever a server streams (or answers in one JSON body)
becomes one `Completion`, with the provider's extra fields kept to be sent back unchanged.

Rules (docs/architecture.md, "Provider dialects"):
* tool-call deltas: a new `id` or a new `index` starts a new call; a delta with neither goes
  on with the last call; a name repeated in every delta is one name; a call whose id is
  missing or collides with an earlier one gets a fresh unique id, every other id is kept.
* `content` is the answer; `reasoning_content` (DeepSeek, vLLM, llama.cpp, Qwen) and
  `reasoning` (OpenRouter) are reasoning; any other field of the message or of a tool call is
  kept (strings and lists concatenated across deltas, anything else the latest value).
* `usage` may come in every chunk (cumulative: the last wins) or in none (then estimated).
* `{"error": ...}` in a chunk is a `Failure`, classified like the same HTTP status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .failures import Failure, FailureKind, classify, error_message

__all__ = ["Completion", "CompletionBuilder", "Replay", "estimate_tokens"]

TextSink = Callable[[str], None]
REASONING_KEYS = ("reasoning_content", "reasoning")
_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "refusal", "function_call",
                           *REASONING_KEYS})
_CALL_KEYS = frozenset({"index", "id", "type", "function"})
_FUNCTION_KEYS = frozenset({"name", "arguments"})


@dataclass
class Completion:
    """One finished model turn. `tool_calls` are in the wire form (id, type, function, and
    any extra field the provider sent); `extra` holds the message's unknown fields."""

    text: str = ""
    reasoning: str = ""
    reasoning_key: str = "reasoning_content"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    reported_cost_usd: float | None = None
    """What the provider said the call cost (OpenRouter's `usage.cost`, USD), if it did."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        """The output token limit cut this turn (finish_reason "length")."""
        return self.finish_reason == "length"

    def assistant_message(self, with_calls: bool = True) -> dict[str, Any]:
        """The message to append to the conversation: what came, as it came."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.reasoning:
            message[self.reasoning_key] = self.reasoning
        message.update(self.extra)
        if with_calls and self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class _Call:
    __slots__ = ("arguments", "extra", "function_extra", "id", "name")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name = ""
        self.arguments: list[str] = []
        self.extra: dict[str, Any] = {}
        self.function_extra: dict[str, Any] = {}

    def complete_json(self) -> bool:
        try:
            json.loads("".join(self.arguments))
        except ValueError:
            return False
        return bool(self.arguments)


class CompletionBuilder:
    """Feed it chunks (`add`) or a whole body (`add_body`), then `finish()`."""

    def __init__(self, on_text: TextSink, on_reasoning: TextSink) -> None:
        self._on_text = self._text = on_text
        self._on_reasoning = on_reasoning
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_key = "reasoning_content"
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}
        self._calls: list[_Call] = []
        self._by_index: dict[Any, _Call] = {}

    @property
    def has_calls(self) -> bool:
        return bool(self._calls)

    # ---- input -------------------------------------------------------------------------
    def add(self, chunk: Any) -> None:
        """One parsed SSE data payload (a `chat.completion.chunk`, or an error)."""
        if not isinstance(chunk, dict):
            return  # a gateway's keep-alive sent as data
        if chunk.get("error"):
            raise _stream_failure(chunk["error"])
        usage = chunk.get("usage")
        if usage:
            self.usage = usage  # cumulative where repeated: the last one wins
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message")
            if delta:
                text = delta.get("content")
                if len(delta) == 1 and text:  # the common chunk: only text
                    self.parts.append(text)
                    self._on_text(text)
                else:
                    self._delta(delta)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = reason

    def add_body(self, body: Any) -> None:
        """A whole `chat.completion` (a server that ignored `stream: true`)."""
        if not isinstance(body, dict) or ("choices" not in body and not body.get("error")):
            raise Failure(FailureKind.REFUSED, None, "the endpoint sent a JSON reply that is "
                          "not a chat completion: check base_url")
        self.add(body)

    def _delta(self, delta: dict[str, Any]) -> None:
        for key, value in delta.items():
            if value is None or value == "" or value == [] or value == {}:
                continue  # nothing to keep: e.g. OpenAI's `"annotations": []`
            if key == "content":
                if isinstance(value, str):
                    self.parts.append(value)
                    self._on_text(value)
            elif key in REASONING_KEYS:
                if isinstance(value, str):
                    self._reason(key, value)
            elif key == "tool_calls":
                for tc in value:
                    if isinstance(tc, dict):
                        self._tool_delta(tc)
            elif key not in _MESSAGE_KEYS:
                _merge(self.extra, key, value)

    def _reason(self, key: str, value: str) -> None:
        self.reasoning_key = key
        self.reasoning.append(value)
        self._on_reasoning(value)
        if self._on_text is self._text:
            self._on_text = self._after_reasoning

    def _after_reasoning(self, text: str) -> None:
        """The answer begins: an empty reasoning piece says the reasoning ended."""
        self._on_text = self._text
        self._on_reasoning("")
        self._text(text)

    def _tool_delta(self, tc: dict[str, Any]) -> None:
        index, call_id = tc.get("index"), tc.get("id") or ""
        fn = tc.get("function") or {}
        name = fn.get("name") or ""
        arguments = fn.get("arguments") or ""
        call = self._by_index.get(index) if index is not None else (
            self._calls[-1] if self._calls else None)
        if call is None or (call_id and call.id and call_id != call.id) or (
            index is None and name and arguments and call.complete_json()
        ):
            call = _Call(call_id)  # a new id, a new index, or a whole call after a whole call
            self._calls.append(call)
            self._by_index[index] = call
        elif call_id and not call.id:
            call.id = call_id
        if name and name != call.name:
            call.name += name  # a name in pieces is joined; a repeated name stays one name
        if arguments:
            call.arguments.append(arguments)
        for key, value in tc.items():
            if key not in _CALL_KEYS and value is not None:
                _merge(call.extra, key, value)
        for key, value in fn.items():
            if key not in _FUNCTION_KEYS and value is not None:
                _merge(call.function_extra, key, value)

    # ---- output ------------------------------------------------------------------------
    def finish(self, messages: list[dict[str, Any]], tools: Any) -> Completion:
        out = Completion(
            text="".join(self.parts), reasoning="".join(self.reasoning),
            reasoning_key=self.reasoning_key, finish_reason=self.finish_reason,
            extra=self.extra, tool_calls=self._wire_calls(),
        )
        usage = self.usage
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
        cost = usage.get("cost") if isinstance(usage, dict) else None
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            out.reported_cost_usd = float(cost)
        if isinstance(prompt, int) and isinstance(completion, int):
            out.prompt_tokens, out.completion_tokens = prompt, completion
        else:
            out.usage_estimated = True
            out.prompt_tokens = estimate_tokens(messages, tools)
            out.completion_tokens = max(1, (len(out.text) + len(out.reasoning) + sum(
                len(c["function"]["arguments"]) for c in out.tool_calls)) // 4)
        return out

    def _wire_calls(self) -> list[dict[str, Any]]:
        seen: set[str] = set()
        calls = []
        for call in self._calls:
            call_id = call.id
            if not call_id or call_id in seen:
                call_id = f"call_{uuid.uuid4().hex[:24]}"
            seen.add(call_id)
            function = {"name": call.name, "arguments": "".join(call.arguments),
                        **call.function_extra}
            calls.append({"id": call_id, "type": "function", "function": function,
                          **call.extra})
        return calls


class Replay:
    """What a retried stream shows: only text past what an earlier attempt already showed,
    so a retry never shows the same text twice. The repeated part goes to `hidden` (it is
    still part of the answer); a reply that goes another way starts over after a `notice`."""

    def __init__(self, sink: TextSink, hidden: TextSink, notice: TextSink) -> None:
        self._sink = sink
        self._hidden = hidden
        self._notice = notice
        self._shown = ""
        self._pos = 0
        self._diverged = False

    def sink(self) -> TextSink:
        if not self._shown:
            return self._sink  # a first attempt: no cost per chunk
        self._pos, self._diverged = 0, False
        return self._filtered

    def attempt_ended(self, parts: list[str]) -> None:
        made = "".join(parts)
        if self._diverged or len(made) > len(self._shown):
            self._shown = made

    def _filtered(self, text: str) -> None:
        if self._diverged or not text:
            self._sink(text)
            return
        pos = self._pos
        overlap = self._shown[pos:pos + len(text)]
        if text.startswith(overlap):
            self._pos = pos + len(text)
            self._hidden(overlap)
            if len(text) > len(overlap):
                self._sink(text[len(overlap):])
            return
        self._diverged = True
        self._notice("↻ after a retry the reply went another way:")
        self._sink(self._shown[:pos] + text)


def estimate_tokens(messages: list[dict[str, Any]], tools: Any = None) -> int:
    """About four characters per token over the whole request (what we can know offline)."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif content is not None:
            chars += len(json.dumps(content))
        for call in message.get("tool_calls") or ():
            chars += len(json.dumps(call))
    if tools:
        chars += len(json.dumps(tools))
    return max(1, chars // 4)


def _merge(into: dict[str, Any], key: str, value: Any) -> None:
    """Streamed extras: strings and lists arrive in pieces; anything else, the latest."""
    old = into.get(key)
    if isinstance(old, list) and isinstance(value, list):
        into[key] = [*old, *value]
        return
    into[key] = old + value if isinstance(old, str) and isinstance(value, str) else value


def _stream_failure(error: Any) -> Failure:
    status = None
    if isinstance(error, dict):
        for key in ("status_code", "status", "code"):
            value = error.get(key)
            if isinstance(value, int):
                status = value
                break
    line = error_message(error, status)
    return Failure(classify(status, error if isinstance(error, dict) else None), status,
                   f"the server sent an error inside the stream: {line}")
