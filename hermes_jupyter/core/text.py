"""Small wording helpers shared by every text a user reads."""

from __future__ import annotations

__all__ = ["plural", "short"]


def plural(n: int, word: str) -> str:
    """`1 call`, `2 calls`, `0 calls`, `1,234 calls`: the one wording of every count a user
    reads (the dashboard's JavaScript has the same rule in its `plural`)."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def short(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
