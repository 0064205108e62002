"""The one place that knows which strings are secret, and takes them out of text.

Every string the engine stores, shows, logs, journals or sends to a model passes through a
`Secrets.redact` (or, for streamed text, a `StreamRedactor`) at one choke point per path.
The registry holds the credential pool's keys, credentials found inside URLs, and whatever a
toolset registers (MCP server headers and env values); besides those, anything shaped like a
well-known key format is masked too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "Secrets", "StreamRedactor", "redact"]

MASK = "***"
MIN_SECRET = 4  # shorter strings are too common to mask without mangling ordinary text
_KEY_PATTERN = re.compile(
    r"\b(?:sk|pk|rk|key|nous|or|sess|ghp|gho|xox[abp])-[A-Za-z0-9_\-*.]{6,}"
    r"|\bBearer\s+[A-Za-z0-9_\-.=]{12,}"
)


class Secrets:
    """A thread-safe registry of secret strings; `redact(text)` masks every one of them."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        for value in values:
            self.add(value)

    def add(self, value: str | None) -> None:
        """Register `value` (and its URL-decoded form); short or empty values are ignored."""
        if not isinstance(value, str):
            return
        found = {v for v in (value, unquote(value)) if len(v) >= MIN_SECRET}
        if not found:
            return
        with self._lock:
            merged = set(self._values) | found
            # Longest first, so a secret that contains another is masked whole.
            self._values = tuple(sorted(merged, key=len, reverse=True))

    def add_url(self, url: str | None) -> None:
        """Register the user name and password of a URL such as `https://u:p@host/v1`."""
        if not url:
            return
        parts = urlsplit(url)
        if parts.password:
            self.add(parts.password)
        if parts.username and parts.password:
            self.add(parts.username)

    @property
    def values(self) -> tuple[str, ...]:
        return self._values

    @property
    def longest(self) -> int:
        values = self._values
        return len(values[0]) if values else 0

    def redact(self, text: str) -> str:
        """`text` with every registered secret, and anything shaped like a key, masked."""
        return redact(text, self._values)

    def stream(self) -> StreamRedactor:
        """A redactor for text that arrives in pieces (a secret may be split across two)."""
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts streamed text: holds back just enough of the end that a secret split across
    two pieces is never shown half. `feed` returns what is safe to show; `flush` the rest."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        keep = max(self._secrets.longest - 1, 0)
        if keep == 0:
            self._held = ""
            return self._secrets.redact(text)
        cleaned = self._secrets.redact(text)
        if len(cleaned) <= keep:
            self._held = cleaned
            return ""
        self._held = cleaned[-keep:]
        return cleaned[:-keep]

    def flush(self) -> str:
        rest, self._held = self._held, ""
        return self._secrets.redact(rest)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (4+ characters) and anything shaped like a key masked."""
    if not isinstance(text, str):
        text = str(text)
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET and secret in text:
            text = text.replace(secret, MASK)
    return _KEY_PATTERN.sub(MASK, text)
