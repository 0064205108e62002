"""Model calls over the official `openai` client: streaming, key rotation, retries.

Runs on the engine's event loop (`AsyncOpenAI`), so cancelling the calling asyncio task
abandons an in-flight stream at once; the SDK's own retries are off (`max_retries=0`) so that
a 429 reaches the credential pool immediately and the engine owns every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import openai

from .credentials import CredentialPool, PooledKey, redact

__all__ = ["Completion", "Provider", "ProviderError", "RetryPolicy"]


class ProviderError(Exception):
    """A model call failed for good; the message is one line, free of secrets."""


class _Truncated(Exception):
    """The stream ended without a finish reason."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors raised while reading a stream: the SDK wraps them only at request time."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(__import__(module).TransportError)
    return tuple(found)


_TRANSIENT: tuple[type[BaseException], ...] = (
    openai.InternalServerError, openai.APIConnectionError, _Truncated, *_transport_errors()
)


@dataclass
class Completion:
    """One finished model turn."""

    text: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on the engine's retries; backoff is exponential with full jitter."""

    max_retries: int = 4
    max_rate_limit_waits: int = 50
    base_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


# on_event(kind, data) reports retries and key changes; on_text(delta) streams text.
EventSink = Callable[[str, dict[str, Any]], None]
TextSink = Callable[[str], None]


class Provider:
    """All model traffic of one session: one `AsyncOpenAI` client per key, shared pool."""

    def __init__(
        self,
        pool: CredentialPool,
        base_url: str | None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 600.0,
    ) -> None:
        self.pool = pool
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self._timeout = request_timeout
        self._clients: dict[int, openai.AsyncOpenAI] = {}

    def _client(self, key: PooledKey) -> openai.AsyncOpenAI:
        client = self._clients.get(key.index)
        if client is None:
            client = openai.AsyncOpenAI(
                api_key=key.secret, base_url=self.base_url, max_retries=0,
                timeout=self._timeout, http_client=_http_client(),
            )
            self._clients[key.index] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextSink,
        on_event: EventSink,
        on_request: Callable[[], None],
    ) -> Completion:
        """Stream one completion, rotating keys on 429 and retrying transient failures."""
        failures = 0
        rate_limited = 0
        while True:
            if self.pool.next_ready_in() > 0:
                on_event("waiting_for_key", {"seconds": round(self.pool.next_ready_in(), 2)})
            key = await self.pool.acquire()
            on_request()
            try:
                return await self._stream(self._client(key), model, messages, tools, on_text)
            except openai.RateLimitError as err:
                rate_limited += 1
                wait = _retry_after(err) or self.retry.backoff(rate_limited)
                self.pool.cool_down(key, wait)
                on_event("key_cooldown", {"key": key.label, "seconds": round(wait, 2)})
                if rate_limited > self.retry.max_rate_limit_waits:
                    raise ProviderError(self._line("rate limited too often", err)) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
                self.pool.remove(key)
                on_event("key_removed", {"key": key.label, "status": err.status_code})
            except _TRANSIENT as err:
                failures += 1
                if failures > self.retry.max_retries:
                    raise ProviderError(self._line("gave up after retries", err)) from None
                delay = self.retry.backoff(failures)
                on_event("retry", {"attempt": failures, "delay": round(delay, 2),
                                   "reason": self._line("", err)})
                on_text("\n")
                await asyncio.sleep(delay)
            except openai.APIStatusError as err:
                raise ProviderError(self._line("request refused", err)) from None

    async def _stream(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextSink,
    ) -> Completion:
        """Read the SSE lines ourselves: a model object per chunk costs more than the parse."""
        # The conversation goes in `extra_body`, which the SDK sends as is: its per-request
        # transform of typed params walks every message and cost ~10 ms a call at 64 tasks.
        body: dict[str, Any] = {"messages": messages, "tools": tools} if tools else {
            "messages": messages}
        out = Completion()
        calls: dict[int, dict[str, str]] = {}
        parts: list[str] = []
        async with client.chat.completions.with_streaming_response.create(
            model=model,
            messages=(),
            stream=True,
            stream_options={"include_usage": True},
            extra_body=body,
        ) as response:
            lines = response.iter_lines()
            async for line in lines:
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    await _drain(lines)
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise ProviderError(f"the server sent an error mid-stream: {chunk['error']}")
                usage = chunk.get("usage")
                if usage:
                    out.prompt_tokens = usage.get("prompt_tokens") or 0
                    out.completion_tokens = usage.get("completion_tokens") or 0
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text:
                        parts.append(text)
                        on_text(text)
                    for tc in delta.get("tool_calls") or ():
                        _merge_tool_delta(calls, tc)
                    if choice.get("finish_reason"):
                        out.finish_reason = choice["finish_reason"]
        if out.finish_reason is None:
            raise _Truncated("the stream ended without a finish reason")
        out.text = "".join(parts)
        out.tool_calls = [calls[i] for i in sorted(calls)]
        return out

    def _line(self, prefix: str, err: BaseException) -> str:
        status = getattr(err, "status_code", None)
        message = getattr(err, "message", None) or str(err) or type(err).__name__
        body = getattr(err, "body", None)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        text = f"{status}: {message}" if status else message
        text = " ".join(text.split())
        line = f"{prefix}: {text}" if prefix else text
        return redact(line, self.pool.secrets)[:300]


def _http_client() -> Any:
    """The SDK's aiohttp transport when aiohttp is installed (`openai[aiohttp]`), else None.

    Measured with 64 streaming tasks (bench/): it halves the engine's CPU per streamed chunk,
    and the engine thread's GIL bursts get short enough that other threads (the kernel's)
    wait 0.9 ms instead of 8 ms at p99. None means the SDK's default httpx transport.
    """
    try:
        return openai.DefaultAioHttpClient()
    except (AttributeError, RuntimeError):  # an older openai, or aiohttp not installed
        return None


async def _drain(lines: AsyncIterator[str], limit: float = 1.0) -> None:
    """Read the body's last bytes after `[DONE]`: HTTP/1.1 reuses a connection only then."""

    async def rest() -> None:
        async for _ in lines:
            pass

    with contextlib.suppress(Exception):
        await asyncio.wait_for(rest(), limit)


def _merge_tool_delta(calls: dict[int, dict[str, str]], tc: dict[str, Any]) -> None:
    slot = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": ""})
    if tc.get("id"):
        slot["id"] = tc["id"]
    fn = tc.get("function") or {}
    if fn.get("name"):
        slot["name"] += fn["name"]
    if fn.get("arguments"):
        slot["arguments"] += fn["arguments"]


def _retry_after(err: openai.APIStatusError) -> float | None:
    """Seconds from Retry-After / retry-after-ms, when the server sent them."""
    headers = err.response.headers
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
