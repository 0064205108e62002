"""What went wrong with a model call, in the engine's terms: one classification for HTTP
statuses and for errors a server sends inside a 200 stream, and Retry-After in every form.
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Mapping
from typing import Any

from ..core.models import ExitReason

__all__ = ["Failure", "FailureKind", "ProviderError", "classify", "retry_after"]


class ProviderError(Exception):
    """A model call failed for good. The message is one line, free of secrets; `reason`
    is the task's exit reason."""

    def __init__(self, message: str, reason: ExitReason = ExitReason.PROVIDER_ERROR) -> None:
        super().__init__(message)
        self.reason = reason


class FailureKind(enum.Enum):
    RETRY = "retry"  # overloaded, 5xx, timeouts: try again after a backoff
    RATE_LIMIT = "rate_limit"  # cool this key down, then go on
    QUOTA = "quota"  # this key is out of credit: take it out of the pool
    AUTH = "auth"  # this key is rejected: take it out of the pool
    REFUSED = "refused"  # the request itself is wrong: fail with the server's line


class Failure(Exception):
    """A failed attempt, classified; raised for errors found inside a stream as well."""

    def __init__(self, kind: FailureKind, status: int | None, message: str,
                 wait: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.message = message
        self.wait = wait


_QUOTA_WORDS = ("insufficient_quota", "insufficient_credits", "billing", "credit", "quota")
# What servers (and gateways that rewrite the code, such as LiteLLM) say in the message when
# credit is gone; not plain "quota", which Gemini also says of per-minute rate limits.
_QUOTA_PHRASES = ("exceeded your current quota", "check your plan and billing",
                  "insufficient credit", "insufficient_quota", "credit balance is too low",
                  "out of credits", "payment required")
_WORD_STATUS = (  # error codes and types servers put in a body, mapped to a status
    ("overloaded", 529), ("rate_limit", 429), ("too_many_requests", 429),
    ("resource_exhausted", 429), ("unavailable", 503), ("timeout", 504),
    ("server_error", 500), ("internal", 500), ("authentication", 401),
    ("invalid_api_key", 401), ("permission", 403), ("unauthorized", 401),
)


def classify(status: int | None, error: Mapping[str, Any] | None) -> FailureKind:
    """The kind of a failure from its HTTP status and error object (`{"code", "type", ...}`).

    A 429 whose code says the quota or credit is gone, and 402, are QUOTA, not RATE_LIMIT:
    waiting does not bring credit back.
    """
    words = _words(error)
    if status is None or status == 200:
        status = _status_from(error, words)
    if status == 402 or (status in (429, 403, None) and (_is_quota(words) or _says_quota(error))):
        return FailureKind.QUOTA
    if status in (401, 403):
        return FailureKind.AUTH
    if status == 429:
        return FailureKind.RATE_LIMIT
    if status is None or status >= 500 or status in (408, 409, 425):
        return FailureKind.RETRY
    return FailureKind.REFUSED


def error_message(error: Any, status: int | None = None) -> str:
    """One readable line from an error object (never a dict's repr)."""
    message = None
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("detail") or error.get("error")
        if isinstance(message, Mapping):
            return error_message(message, status)
        if not isinstance(message, str):
            code = error.get("code") or error.get("type")
            message = f"error {code}" if code else "an error without a message"
    elif isinstance(error, str):
        message = error
    else:
        message = "an error without a message"
    line = " ".join(str(message).split())
    return f"{status}: {line}" if status and status != 200 else line


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date
    (the same behind LiteLLM, as `llm_provider-retry-after[-ms]`).

    Anything else (`soon`, negative, a malformed date) is None: the caller backs off.
    """
    if not headers:
        return None
    # LiteLLM passes the upstream's headers on with an `llm_provider-` prefix.
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0),
                        ("llm_provider-retry-after-ms", 0.001),
                        ("llm_provider-retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        seconds: float | None
        try:
            seconds = float(value) * scale
        except ValueError:
            seconds = _http_date(value) if not name.endswith("-ms") else None
        if seconds is None:
            continue
        if seconds >= 0 and seconds == seconds and seconds != float("inf"):
            return seconds
    return None


def _http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _words(error: Mapping[str, Any] | None) -> str:
    if not isinstance(error, Mapping):
        return ""
    parts = [error.get("code"), error.get("type"), error.get("status")]
    return " ".join(str(p).lower() for p in parts if p is not None)


def _is_quota(words: str) -> bool:
    return any(w in words for w in _QUOTA_WORDS)


def _says_quota(error: Mapping[str, Any] | None) -> bool:
    message = error.get("message") if isinstance(error, Mapping) else None
    return isinstance(message, str) and any(p in message.lower() for p in _QUOTA_PHRASES)


def _status_from(error: Mapping[str, Any] | None, words: str) -> int | None:
    if isinstance(error, Mapping):
        for key in ("status_code", "status", "code"):
            value = error.get(key)
            if isinstance(value, int) and 400 <= value <= 599:
                return value
            if isinstance(value, str) and value.isdigit() and 400 <= int(value) <= 599:
                return int(value)
    for word, status in _WORD_STATUS:
        if word in words:
            return status
    return None
