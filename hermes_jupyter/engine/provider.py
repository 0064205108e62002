"""Model calls over the official `openai` client: streaming, key rotation, retries.

Runs on the engine's event loop (`AsyncOpenAI`), so cancelling the calling asyncio task
abandons an in-flight stream at once; the SDK's own retries are off (`max_retries=0`) so that
a 429 reaches the credential pool immediately and the engine owns every retry. What a server
sends is read by `sse.SSEParser` and turned into a `Completion` by `stream.CompletionBuilder`;
what went wrong is classified by `failures.classify`, the same for HTTP statuses and for
errors sent inside a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai

from ..core import validate as v
from ..core.models import ExitReason
from .credentials import CredentialPool, PooledKey, redact
from .failures import Failure, FailureKind, ProviderError, classify, error_message, retry_after
from .sse import SSEParser, StallWatch, cancelled_by_others
from .stream import Completion, CompletionBuilder, Replay

__all__ = ["Completion", "Provider", "ProviderError", "ProviderSetting", "RetryPolicy"]

DEFAULT_STALL_TIMEOUT = 120.0
DEFAULT_COOLDOWN_CAP = 300.0
# Fields the engine adds on its own: a server that refuses one (400) is asked again without.
OPTIONAL_FIELDS: dict[str, Any] = {"stream_options": {"include_usage": True}}
# Fields a caller may add per request (`complete(response_format=...)`), refused the same way;
# each with the words that name it in a server's refusal.
PER_CALL_FIELDS: dict[str, tuple[str, ...]] = {"response_format": ("response_format",
                                                                   "json_schema")}
_UNKNOWN_FIELD_WORDS = ("unrecognized", "not permitted", "unknown field", "unknown parameter",
                        "unsupported parameter", "additional properties", "extra inputs")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors raised while reading a stream: the SDK wraps them only at request time."""
    found: list[type[BaseException]] = [OSError, asyncio.IncompleteReadError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                         ("aiohttp", "ClientError")):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(__import__(module), name))
    return tuple(found)


_TRANSPORT: tuple[type[BaseException], ...] = (openai.APIConnectionError, *_transport_errors())


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
    """All model traffic of one session: one `AsyncOpenAI` client per key, shared pool.

    `stall_timeout`: seconds without a byte (keep-alive comments count) after which a stream
    is abandoned and retried. `cooldown_cap`: the longest a call waits on rate limits in all
    before it fails with exit reason `rate_limit_cap`.
    """

    def __init__(
        self,
        pool: CredentialPool,
        base_url: str | None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 600.0,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        cooldown_cap: float = DEFAULT_COOLDOWN_CAP,
    ) -> None:
        self.pool = pool
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self.stall_timeout = stall_timeout
        self.cooldown_cap = cooldown_cap
        self.refused_fields: set[str] = set()  # optional fields this endpoint refused
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
        on_reasoning: TextSink | None = None,
        on_activity: TextSink | None = None,
        on_hidden: TextSink | None = None,
        on_notice: TextSink | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """Stream one completion, rotating keys on 429 and retrying transient failures.

        `response_format` (structured output) is sent unless this endpoint refused it before;
        a 400 naming it is asked again once without it, and remembered on success
        (`refused_fields`), like the optional fields the engine adds on its own.

        `on_text` / `on_reasoning` get what to show as it streams; after a retry, answer text
        the earlier attempt already showed goes to `on_hidden` instead, and `on_notice` gets a
        line when the retried reply goes another way. `on_activity` gets one-line states
        (waits, retries). Raises `ProviderError` (one redacted line, with its exit reason).
        """
        def ignore(_text: str) -> None:
            pass

        extra = {"response_format": response_format} if response_format is not None else {}
        run = _Run(self, on_event, on_activity or ignore, extra)
        text = Replay(on_text, on_hidden or ignore, on_notice or ignore)
        reasoning = Replay(on_reasoning or ignore, ignore, on_notice or ignore)
        while True:
            key = await run.key()
            on_request()
            builder = CompletionBuilder(text.sink(), reasoning.sink())
            try:
                out = await self._attempt(key, model, messages, tools, builder, run.dropping,
                                          extra)
            except Failure as failure:
                await run.failed(failure, key)
            except openai.APIStatusError as err:
                await run.failed(_status_failure(err), key)
            except _TRANSPORT as err:
                line = _transport_line(err, self.base_url)
                await run.failed(Failure(FailureKind.RETRY, None, line), key)
            except (ValueError, TypeError, KeyError, AttributeError):
                line = "the endpoint sent a reply that is not a chat completion"
                await run.failed(Failure(FailureKind.RETRY, None, line), key)
            else:
                run.succeeded()
                return out
            finally:
                text.attempt_ended(builder.parts)
                reasoning.attempt_ended(builder.reasoning)

    async def _attempt(
        self,
        key: PooledKey,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        out: CompletionBuilder,
        dropping: frozenset[str],
        extra: dict[str, Any],
    ) -> Completion:
        # The conversation goes in `extra_body`, which the SDK sends as is: its per-request
        # transform of typed params walks every message and cost ~10 ms a call at 64 tasks.
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        skip = self.refused_fields | dropping
        body.update((k, v) for k, v in OPTIONAL_FIELDS.items() if k not in skip)
        body.update((k, v) for k, v in extra.items() if k not in skip)
        watch = StallWatch(self.stall_timeout)
        finished = responded = False
        try:
            async with self._client(key).chat.completions.with_streaming_response.create(
                model=model, messages=(), stream=True, extra_body=body,
            ) as response:
                responded = True
                kind = response.headers.get("content-type", "")
                if "json" in kind and "event-stream" not in kind:
                    out.add_body(json.loads(await response.read()))
                    finished = True  # a whole completion: the server ignored `stream`
                else:
                    finished = await _read_events(response.iter_bytes(), out, watch)
        except (ValueError, TypeError) as err:
            if responded:
                raise  # the reply was not a chat completion: `complete` says so
            raise Failure(FailureKind.REFUSED, None, "the request could not be sent to "
                          f"{_endpoint(self.base_url) if self.base_url else 'the OpenAI API'}"
                          f" ({type(err).__name__}): check base_url and the keys") from None
        except asyncio.CancelledError:
            if watch.fired and not cancelled_by_others():
                raise Failure(FailureKind.RETRY, None, f"the stream sent nothing for "
                              f"{self.stall_timeout:g}s (stall_timeout)") from None
            raise
        finally:
            watch.stop()
        if out.finish_reason == "error":  # OpenRouter ends a failed upstream reply so
            raise Failure(FailureKind.RETRY, None, "the server ended the reply with an error")
        if out.finish_reason is None:
            if not finished:
                raise Failure(FailureKind.RETRY, None, "the stream ended before the reply was "
                              "complete (no [DONE], no finish reason)")
            out.finish_reason = "tool_calls" if out.has_calls else "stop"
        return out.finish(messages, tools)


async def _read_events(pieces: AsyncIterator[bytes], out: CompletionBuilder,
                       watch: StallWatch) -> bool:
    """Feed the SSE stream into `out`; True when the server said `[DONE]`."""
    parser = SSEParser()
    loads = json.loads
    async for piece in pieces:
        watch.seen += 1
        for event, data in parser.feed(piece):
            if data[:6] == b"[DONE]":
                watch.stop()  # the reply is complete: draining is no stall
                await _drain(pieces)
                return True
            try:  # decoding first is faster than `loads(bytes)`, which sniffs the encoding
                chunk = loads(data.decode("utf-8", "replace"))
            except ValueError:
                continue  # not JSON: some gateways send comments as data
            if event == "error" and isinstance(chunk, dict) and "error" not in chunk:
                chunk = {"error": chunk}
            out.add(chunk)
    return False


class _Run:
    """The retry state of one `complete` call: counters, waits, the refused-field probe."""

    def __init__(self, provider: Provider, on_event: EventSink, on_activity: TextSink,
                 extra: dict[str, Any]) -> None:
        self.p = provider
        self.extra = extra  # per-call fields this request carries
        self.on_event = on_event
        self.on_activity = on_activity
        self.failures = 0
        self.rate_limited = 0
        self.waited = 0.0
        self.dropping: frozenset[str] = frozenset()

    async def key(self) -> PooledKey:
        pool = self.p.pool
        wait = pool.next_ready_in()
        if wait > 0:
            cap = self.p.cooldown_cap
            if self.waited + wait > cap:
                line = (f"rate limited: the endpoint asks to wait {wait:.0f}s more, past the "
                        f"cooldown cap of {cap:g}s (cooldown_cap); try later or raise the cap")
                self.on_activity(line)
                self.on_event("rate_limit_cap", {"seconds": round(wait, 2), "cap": cap})
                raise ProviderError(line, ExitReason.RATE_LIMIT_CAP)
            self.on_event("waiting_for_key", {"seconds": round(wait, 2)})
            self.on_activity(f"rate limited: waiting {wait:.0f}s for a key")
            self.waited += wait
        return await pool.acquire()

    def succeeded(self) -> None:
        if self.dropping:
            self.p.refused_fields |= self.dropping
            self.on_event("fields_dropped", {"fields": sorted(self.dropping)})

    async def failed(self, failure: Failure, key: PooledKey) -> None:
        line = redact(failure.message, self.p.pool.secrets)[:300]
        kind = failure.kind
        if kind in (FailureKind.AUTH, FailureKind.QUOTA):
            self.p.pool.remove(key, quota=kind is FailureKind.QUOTA)
            self.on_event("key_removed", {"key": key.label, "status": failure.status,
                                          "cause": "quota" if kind is FailureKind.QUOTA
                                          else "rejected"})
            self.on_activity(f"{key.label} removed: {line}")
        elif kind is FailureKind.RATE_LIMIT:
            self.rate_limited += 1
            if self.rate_limited > self.p.retry.max_rate_limit_waits:
                raise ProviderError(f"rate limited too often: {line}", ExitReason.RATE_LIMIT_CAP)
            wait = failure.wait if failure.wait is not None else self.p.retry.backoff(
                self.rate_limited)
            self.p.pool.cool_down(key, wait)
            self.on_event("key_cooldown", {"key": key.label, "seconds": round(wait, 2)})
        elif kind is FailureKind.RETRY:
            self.failures += 1
            if self.failures > self.p.retry.max_retries:
                raise ProviderError(f"gave up after retries: {line}")
            delay = self.p.retry.backoff(self.failures)
            if failure.wait is not None:
                delay = min(max(delay, failure.wait), self.p.cooldown_cap)
            self.on_event("retry", {"attempt": self.failures, "delay": round(delay, 2),
                                    "reason": line})
            self.on_activity(f"retrying in {delay:.0f}s: {line}")
            await asyncio.sleep(delay)
        elif not self._drop_optional(failure):
            raise ProviderError(f"request refused: {line}")

    def _drop_optional(self, failure: Failure) -> bool:
        """A 400/422 while optional fields were sent: ask again without the ones it names
        (once each), or without all of them when it names none but says a field is unknown
        (once)."""
        if failure.status not in (400, 422):
            return False
        sent = [k for k in (*OPTIONAL_FIELDS, *self.extra)
                if k not in self.p.refused_fields and k not in self.dropping]
        if not sent:
            return False
        message = failure.message.lower()
        named = [k for k in sent if any(w in message for w in PER_CALL_FIELDS.get(k, (k,)))]
        if not named and (self.dropping
                          or not any(w in message for w in _UNKNOWN_FIELD_WORDS)):
            return False  # a 400 about something else: fail with it
        self.dropping |= frozenset(named or sent)
        self.on_event("retry", {"attempt": 0, "delay": 0.0, "reason": "the endpoint refused "
                                f"{', '.join(sorted(self.dropping))}: asking again without"})
        return True


class ProviderSetting:
    """A `Session` attribute that lives on its provider (read at each attempt, so a change
    applies to the next request); set values must be positive seconds (or None if allowed)."""

    def __init__(self, allow_none: bool = False) -> None:
        self.allow_none = allow_none
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj._provider, self.name)

    def __set__(self, obj: Any, value: float | None) -> None:
        if value is None and self.allow_none:
            setattr(obj._provider, self.name, None)
            return
        seconds = v.seconds(self.name, value, none_means="no limit" if self.allow_none else "")
        setattr(obj._provider, self.name, seconds)


def _status_failure(err: openai.APIStatusError) -> Failure:
    body = err.body if isinstance(err.body, dict) else None
    error = body.get("error", body) if body and isinstance(body.get("error"), dict) else body
    status = err.status_code
    if error:
        line = error_message(error, status)
    else:  # not JSON: an HTML error page of a proxy, or nothing
        text = " ".join(str(err.body or "").split())[:160]
        line = f"HTTP {status}" + (f": {text}" if text else "")
    wait = retry_after(err.response.headers)
    return Failure(classify(status, error), status, line, wait)


def _transport_line(err: BaseException, base_url: str | None = None) -> str:
    """A readable line for a network failure (never a library's exception text).

    The cause chain decides, not the outer type: the aiohttp transport reports a refused
    connection or an unknown host as a connect *timeout*."""
    where = _endpoint(base_url) if base_url else "the OpenAI API"
    causes = _causes(err)
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"could not connect to {where} (its host name does not resolve)"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return f"could not connect to {where} (connection refused)"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return f"could not connect to {where} (the TLS handshake failed)"
    if isinstance(err, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(err, openai.APIConnectionError):
        return f"could not connect to {where}"
    return "the connection dropped before the reply was complete"


def _endpoint(url: str) -> str:
    """The URL without user info, query or fragment (where a secret may ride)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def _causes(err: BaseException) -> list[BaseException]:
    """`err` and what it wraps (`__cause__`, else `__context__`), at most eight deep."""
    out: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and len(out) < 8 and all(current is not c for c in out):
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


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


async def _drain(pieces: AsyncIterator[bytes], limit: float = 1.0) -> None:
    """Read the body's last bytes after `[DONE]`: HTTP/1.1 reuses a connection only then."""

    async def rest() -> None:
        async for _ in pieces:
            pass

    with contextlib.suppress(Exception):
        await asyncio.wait_for(rest(), limit)
