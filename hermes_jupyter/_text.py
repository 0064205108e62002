"""Small wording helpers shared by every text a user reads."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, word: str) -> str:
    """`1 call`, `2 calls`, `0 calls`."""
    return f"{n} {word}{'' if n == 1 else 's'}"
