"""A SQLite file the engine keeps (the journal) that cannot be used is one line, not a traceback."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import ConfigurationError

__all__ = ["unusable"]


@contextmanager
def unusable(path: Path, what: str) -> Iterator[None]:
    """Turn a file or folder that cannot serve as the `what` file (not a database, unwritable,
    a file where its folder should be) into one `ConfigurationError` line naming the path and
    what to do: move the file away, or pass `what=False` or another path."""
    try:
        yield
    except (sqlite3.Error, OSError) as err:
        reason = " ".join(str(getattr(err, "strerror", None) or err).split())
        raise ConfigurationError(
            f"The {what} {str(path)!r} cannot be opened or created ({reason}): move the file "
            f"(and its -wal, -shm) away, or pass {what}=False or {what}=<another path>."
        ) from None
