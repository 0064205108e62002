"""One pool of API keys shared by every task of a session, with per-key cooldown.

The pool lives on the engine's event loop and is only touched from that thread, so it needs
no lock. Keys are referred to by position ("key 2 of 3") everywhere outside this module.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..core.errors import ConfigurationError
from ..core.models import ExitReason
from ..core.secrets import redact
from .failures import ProviderError

__all__ = ["CredentialPool", "PooledKey", "redact", "resolve_keys"]


@dataclass(eq=False)
class PooledKey:
    """One key and its health. `secret` never leaves the provider."""

    secret: str
    index: int
    total: int
    cooldown_until: float = 0.0
    removed: bool = False
    out_of_quota: bool = False  # removed because its quota or credit ran out (402, 429)

    @property
    def label(self) -> str:
        return f"key {self.index + 1} of {self.total}"

    def __repr__(self) -> str:
        return f"<PooledKey {self.label}>"


class CredentialPool:
    """Hands out the next key that is not cooling down; while all are, callers share one wait."""

    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ConfigurationError("No API key: pass api_keys=[...] or set OPENAI_API_KEY.")
        self.keys = [PooledKey(s, i, len(secrets)) for i, s in enumerate(secrets)]
        self._turn = itertools.count()

    @property
    def secrets(self) -> list[str]:
        return [k.secret for k in self.keys]

    def live(self) -> list[PooledKey]:
        return [k for k in self.keys if not k.removed]

    async def acquire(self) -> PooledKey:
        """The next usable key, round-robin; waits (cancellably) while every key cools down."""
        while True:
            live = self.live()
            if not live:
                raise self._exhausted()
            now = time.monotonic()
            ready = [k for k in live if k.cooldown_until <= now]
            if ready:
                return ready[next(self._turn) % len(ready)]
            await asyncio.sleep(min(k.cooldown_until for k in live) - now)

    def next_ready_in(self) -> float:
        """Seconds until some key is usable (0 when one is now)."""
        live = self.live()
        if not live:
            return 0.0
        return max(0.0, min(k.cooldown_until for k in live) - time.monotonic())

    def cool_down(self, key: PooledKey, seconds: float) -> None:
        key.cooldown_until = max(key.cooldown_until, time.monotonic() + seconds)

    def remove(self, key: PooledKey, quota: bool = False) -> None:
        """Take `key` out for good: rejected (401/403), or out of quota or credit."""
        key.removed = True
        key.out_of_quota = quota

    def _exhausted(self) -> ProviderError:
        quota = sum(k.out_of_quota for k in self.keys)
        if quota == len(self.keys):
            return ProviderError(
                "Every API key is out of quota or credit (402 / insufficient_quota): add "
                "credit or set other keys in api_keys or OPENAI_API_KEY",
                ExitReason.QUOTA_EXHAUSTED,
            )
        also = f" ({quota} of them out of quota or credit)" if quota else ""
        return ProviderError(
            f"Every API key was rejected (401/403){also}: set valid keys in api_keys or "
            "OPENAI_API_KEY",
            ExitReason.AUTH_FAILED,
        )


def resolve_keys(api_keys: Iterable[str] | str | None, base_url: str | None) -> list[str]:
    """The pool's keys: `api_keys` (a list or comma-separated), else HERMES_API_KEYS, else
    OPENAI_API_KEY; a local endpoint needs none."""
    if api_keys is None:
        api_keys = os.environ.get("HERMES_API_KEYS") or os.environ.get("OPENAI_API_KEY") or ""
    if isinstance(api_keys, str):
        api_keys = api_keys.split(",")
    keys = [k.strip() for k in api_keys if k and k.strip()]
    for number, key in enumerate(keys, 1):
        if not all(" " <= c <= "~" for c in key):  # never repeated: it is a secret
            raise ConfigurationError(
                f"Bad API key #{number}: it holds a character an HTTP header cannot carry (a "
                "non-ASCII letter or a control character); copy the key again.")
    if not keys and base_url:
        keys = ["no-key-needed"]  # local servers (Ollama, vLLM, llama.cpp) accept any key
    if not keys:
        raise ConfigurationError(
            "No API key: pass api_keys=[...] or set OPENAI_API_KEY (or HERMES_API_KEYS for a "
            "pool); for a local server set base_url."
        )
    return list(dict.fromkeys(keys))
