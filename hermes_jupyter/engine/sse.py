"""Server-sent events read as the WHATWG spec says, from the bytes the transport hands us.

Why our own parser: the SDK's `iter_lines()` (httpx's `LineDecoder`) splits lines with
`str.splitlines`, which also breaks on U+2028, U+2029, U+0085 and form feeds — characters
that are legal, unescaped, inside a JSON string a model writes — and so cuts a chunk in two.
`httpx-sse` (≥ 0.4.2) splits correctly, but wants an `httpx.Response` (ours is the SDK's
`httpx2` one), hides comments (we count keep-alives as life) and builds an object per event,
which alone would cost more than the whole per-chunk budget of the engine. This parser works
on bytes, where only CR and LF bytes can end a line (UTF-8 never uses them inside a
character), and is tested against the spec's own examples (tests/test_dialects_sse.py).
"""

from __future__ import annotations

import asyncio

__all__ = ["SSEParser", "StallWatch", "cancelled_by_others"]

_BOM = b"\xef\xbb\xbf"


class SSEParser:
    """Incremental: `feed(bytes)` returns the events completed by those bytes.

    An event is `(event_type, data)`: `event_type` is "" for the default "message", `data`
    the data lines joined with LF (bytes, undecoded: `json.loads` takes bytes). Comments,
    `id:` and `retry:` fields are consumed (we never reconnect by id). As the spec says, an
    event is dispatched only at a blank line, and one with no data line is dropped.
    """

    __slots__ = ("_buffer", "_data", "_event", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = ""
        self._skip_lf = False  # the last piece ended in CR: an LF right after belongs to it
        self._started = False

    def feed(self, piece: bytes) -> list[tuple[str, bytes]]:
        # The common piece: exactly one `data: ...` line and its blank line, nothing pending.
        end = len(piece) - 2
        if (
            piece[:6] == b"data: "
            and piece.find(b"\n", 6) == end
            and piece[end + 1:] == b"\n"
            and self._started
            and not (self._buffer or self._data or self._event or self._skip_lf)
            and b"\r" not in piece
        ):
            return [("", piece[6:end])]
        return self._feed(piece)

    def _feed(self, piece: bytes) -> list[tuple[str, bytes]]:
        if self._skip_lf:
            self._skip_lf = False
            if piece[:1] == b"\n":
                piece = piece[1:]
        if b"\r" in piece:
            self._skip_lf = piece.endswith(b"\r")
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._buffer:
            piece = self._buffer + piece
        if not self._started:  # one byte-order mark may open the stream
            if len(piece) < 3 and _BOM.startswith(piece):
                self._buffer = piece
                return []
            self._started = True
            if piece.startswith(_BOM):
                piece = piece[3:]
        lines = piece.split(b"\n")
        self._buffer = lines.pop()  # the unfinished line (b"" when the piece ended one)
        events: list[tuple[str, bytes]] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the common case first
                data.append(line[6:])
            elif not line:
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data = self._data = []
                self._event = ""
            elif line[0] != 58:  # 58 is ":", a comment
                self._field(line)
                data = self._data
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # id, retry and unknown fields are ignored (the spec ignores unknown ones too)


class StallWatch:
    """Cancels the calling task when no byte arrived for `seconds` (checked 4 times as
    often); the hot path only counts pieces (`seen += 1`)."""

    __slots__ = ("_handle", "_last", "_loop", "_seconds", "_since", "_task", "fired", "seen")

    def __init__(self, seconds: float | None) -> None:
        self.seen = 0
        self.fired = False
        self._handle: asyncio.TimerHandle | None = None
        if not seconds:
            return
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._seconds = seconds
        self._last = 0
        self._since = self._loop.time()
        self._handle = self._loop.call_later(seconds / 4, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if self.seen != self._last:
            self._last, self._since = self.seen, now
        elif now - self._since >= self._seconds and self._task is not None:
            self.fired = True
            self._task.cancel()
            return
        self._handle = self._loop.call_later(self._seconds / 4, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def cancelled_by_others() -> bool:
    """After our watchdog's cancel: did someone else (a user's cancel) ask too?"""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    return bool(uncancel is not None and uncancel() > 0)
