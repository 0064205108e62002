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
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "MASK",
    "POINTER_ENV_NAMES",
    "SECRET_ENV_NAMES",
    "SECRET_ENV_SUFFIXES",
    "Secrets",
    "StreamRedactor",
    "redact",
    "redact_data",
    "scrub_environ",
]

MASK = "***"
MIN_SECRET = 4  # shorter strings are too common to mask without mangling ordinary text
# Shaped like a provider's key or token: a known prefix, then 16+ characters with a digit
# (so words such as "key-findings" or "sk-learn" stay readable).
_KEY_PATTERN = re.compile(
    r"\b(?:sk|pk|rk|nous|sess|key|ghp|gho|ghu|ghs|github_pat|glpat|hf|xox[abpr])[-_]"
    r"(?=[A-Za-z0-9_\-.]*\d)[A-Za-z0-9_\-.]{16,}"
    r"|\bBearer\s+[A-Za-z0-9_\-.=]{12,}"
)


# Environment variables a tool process never gets unless allowlisted by name: these names,
# and any name ending in one of the suffixes (`MY_API_KEY`, `GITHUB_TOKEN`, `DB_PASSWORD`).
SECRET_ENV_NAMES = frozenset({"OPENAI_API_KEY", "HERMES_API_KEYS"})
SECRET_ENV_SUFFIXES = ("_KEY", "_KEYS", "_TOKEN", "_SECRET", "_PASSWORD")
# Variables that point a tool at a process holding keys (the Jupyter server): never passed.
POINTER_ENV_NAMES = frozenset({"JPY_PARENT_PID", "JPY_INTERRUPT_EVENT"})


class Secrets:
    """A thread-safe registry of secret strings; `redact(text)` masks every one of them."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        for value in values:
            self.add(value)

    def __reduce__(self) -> tuple[type[Secrets], tuple[tuple[str, ...]]]:
        # A copy (a tool sent to a Dask worker, straight to it, never via the scheduler)
        # redacts the same values there; it gets a lock of its own.
        with self._lock:
            return (Secrets, (self._values,))

    @classmethod
    def of_endpoint(
        cls, keys: Iterable[str], base_url: str | None, environ: Mapping[str, str]
    ) -> Secrets:
        """A session's registry: its keys, the credentials inside `base_url`, and the keys in
        `environ` (OPENAI_API_KEY, HERMES_API_KEYS) even when others were passed."""
        secrets = cls(k for k in keys if k != "no-key-needed")
        secrets.add_url(base_url)
        for name in sorted(SECRET_ENV_NAMES):
            for value in environ.get(name, "").split(","):
                secrets.add(value.strip())
        return secrets

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

    def redact_data(self, value: Any) -> Any:
        """`value` with every string inside it (dicts, lists, tuples) redacted; a new object
        when anything changed, else `value` itself."""
        return redact_data(value, self._values)

    def contains(self, text: str) -> bool:
        """Whether a registered secret occurs in `text`."""
        return any(v in text for v in self._values)

    def stream(self) -> StreamRedactor:
        """A redactor for text that arrives in pieces (a secret may be split across two)."""
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts streamed text: holds back just the end that could still become a secret (a
    proper prefix of a registered one, or a trailing run of key characters, since a key
    shaped like `sk-...` may be cut anywhere). `feed` returns what is safe to show now;
    `flush` the rest, at the end of the stream."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece  # held back raw: a key cut short must not match half
        values = self._secrets.values
        cut = len(text) - max(_open_prefix(text, values), _open_token(text))
        cut = _before_matches(text, cut, values)
        self._held = text[cut:]
        return self._secrets.redact(text[:cut])

    def flush(self) -> str:
        rest, self._held = self._held, ""
        return self._secrets.redact(rest)


_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_BEARER_BEFORE = re.compile(r"Bearer\s*\Z")
MAX_TOKEN = 256  # a trailing run of key characters longer than this is shown anyway


def _open_prefix(text: str, secrets: Iterable[str]) -> int:
    """Length of the longest end of `text` that is a proper prefix of a secret. Only places
    where the secret's first character occurs are tried (streamed chunks are short and
    rarely hold one), earliest first: the first that fits is the longest."""
    best = 0
    n = len(text)
    for secret in secrets:
        first = secret[0]
        i = text.find(first, max(0, n - len(secret) + 1))
        while i != -1 and n - i > best:
            if secret.startswith(text[i:]):
                best = n - i
                break
            i = text.find(first, i + 1)
    return best


def _before_matches(text: str, cut: int, secrets: Iterable[str]) -> int:
    """`cut` moved back to the start of any secret or key-shaped match that spans it."""
    spans = [(m.start(), m.end()) for m in _KEY_PATTERN.finditer(text)]
    for secret in secrets:
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    for start, end in sorted(spans, reverse=True):
        if start < cut < end:
            cut = start
    return cut


def _open_token(text: str) -> int:
    """Length of the run of key characters (or `Bearer ...`) that `text` ends with: scanned
    backwards, so a chunk ending in a space or a mark costs one comparison."""
    i = len(text)
    stop = max(0, i - MAX_TOKEN - 1)
    while i > stop and text[i - 1] in _KEY_CHARS:
        i -= 1
    n = len(text) - i
    if n > MAX_TOKEN:
        return 0
    head = _BEARER_BEFORE.search(text[max(0, i - 16):i])
    return n + (len(head.group()) if head else 0)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (4+ characters) and anything shaped like a key masked."""
    if not isinstance(text, str):
        text = str(text)
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET and secret in text:
            text = text.replace(secret, MASK)
    return _KEY_PATTERN.sub(MASK, text)


def redact_data(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with every string in it (through dicts, lists and tuples) redacted."""
    values = tuple(secrets)
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, dict):
        return {k: redact_data(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(v, values) for v in value)
    return value


def scrub_environ(
    environ: Mapping[str, str], secrets: Secrets | None = None, allow: Iterable[str] = ()
) -> dict[str, str]:
    """The environment a tool process gets: `environ` less secret-looking variables.

    Dropped: `SECRET_ENV_NAMES`, names ending in `SECRET_ENV_SUFFIXES` (case-insensitive)
    unless named in `allow`, and, whatever `allow` says, any variable whose value holds a
    secret registered in `secrets` (a pool key never reaches tool code) and the pointers to
    other processes in `POINTER_ENV_NAMES`.
    """
    allowed = {name.upper() for name in allow}
    out: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        named = upper in SECRET_ENV_NAMES or upper.endswith(SECRET_ENV_SUFFIXES) or (
            "_" + upper).endswith(SECRET_ENV_SUFFIXES)
        if (named and upper not in allowed) or upper in POINTER_ENV_NAMES:
            continue
        if secrets is not None and secrets.contains(value):
            continue
        out[name] = value
    return out
