"""A bounded tail of a task's output: the last lines plus the line being streamed now."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ..core.secrets import Secrets

__all__ = ["OutputTail", "RedactedTail"]


class OutputTail:
    """Ring buffer of at most `max_lines` lines of at most `max_chars` characters each.

    Models often stream for a long while without a newline, so the unfinished line is part of
    what `lines()` returns. A line longer than `max_chars` keeps its *end*: a live view must
    keep moving while a long line streams. Not thread-safe on its own: the task guards it.
    """

    def __init__(self, max_lines: int = 200, max_chars: int = 500) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._partial: list[str] = []
        self._partial_len = 0
        self._max_chars = max_chars
        self._cut = False  # the unfinished line lost its start

    def write(self, text: str) -> None:
        """Append streamed text; newlines end lines."""
        if not text:
            return
        *complete, rest = text.split("\n")
        for piece in complete:
            self._add_partial(piece)
            self._end_line()
        self._add_partial(rest)

    def line(self, text: str) -> None:
        """Add one whole line (tool activity), ending any unfinished streamed line first."""
        if self._partial_len:
            self._end_line()
        self._lines.append(self._clip(text.replace("\n", " ")))

    def lines(self, n: int | None = None) -> list[str]:
        """The last `n` lines (all kept lines when None), the unfinished one included."""
        out = list(self._lines)
        if self._partial_len:
            out.append(self._current())
        return out if n is None else out[-n:] if n > 0 else []

    def _add_partial(self, piece: str) -> None:
        if not piece:
            return
        self._partial.append(piece)
        self._partial_len += len(piece)
        if self._partial_len > 2 * self._max_chars:  # keep memory bounded: drop the start
            joined = "".join(self._partial)[-self._max_chars :]
            self._partial, self._partial_len, self._cut = [joined], len(joined), True

    def _current(self) -> str:
        return self._clip("".join(self._partial), cut=self._cut)

    def _end_line(self) -> None:
        self._lines.append(self._current())
        self._partial.clear()
        self._partial_len = 0
        self._cut = False

    def _clip(self, line: str, cut: bool = False) -> str:
        if len(line) <= self._max_chars and not cut:
            return line
        return "…" + line[-(self._max_chars - 1) :]


class RedactedTail(OutputTail):
    """An `OutputTail` that keeps and passes on only redacted text: streamed pieces go through
    a `StreamRedactor` (a secret split across two never shows; `flush` releases what it held
    back when a model call ends), whole lines through the registry. `sink` gets the text
    shown, in order. Guarded by the task's lock like its base."""

    def __init__(self, secrets: Secrets, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._secrets = secrets
        self._stream = secrets.stream()
        self._sink = sink

    def feed(self, text: str) -> None:
        self._show(self._stream.feed(text))

    def flush(self) -> None:
        self._show(self._stream.flush())

    def line(self, text: str) -> None:
        self.flush()
        super().line(self._secrets.redact(text))

    def _show(self, text: str) -> None:
        if text:
            self.write(text)
            self._sink(text)
