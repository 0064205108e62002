"""A notebook variable as context text for a task (`%delegate -c VAR`), in bounded time.

The text costs time bounded by the character limit, never by the size of the object: a
million-row DataFrame becomes its shape, dtypes, first rows and statistics of a bounded sample;
a container is written item by item until the limit is reached (no sorting, no full `repr`);
strings and bytes are sliced before they are shown. An object whose `repr`/`str` raises becomes
one line saying so. Every variable not sent whole says so in one line for the user (`note`).
pandas and numpy are never imported here unless the object is theirs.
"""

from __future__ import annotations

import collections
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ContextPart", "context_text"]

HEAD_ROWS = 5  # rows of a DataFrame or Series shown as they are
SAMPLE_ROWS = 1_000  # rows whose statistics describe a large DataFrame or Series
WHOLE_CELLS = 2_000  # a DataFrame with at most this many cells is sent whole (as CSV)
MAX_COLUMNS = 20  # columns shown in the head and the statistics
MAX_DTYPES = 50  # columns listed with their dtype
ARRAY_VALUES = 200  # a numpy array of at most this many values is sent whole
EDGE_VALUES = 5  # values shown at each end of each axis of a larger array
MAX_DEPTH = 6  # nesting shown in containers; deeper ones are named with their size
_CONTAINERS = (dict, list, tuple, set, frozenset, collections.deque)


@dataclass(frozen=True)
class ContextPart:
    """One `-c` variable: the text the task gets, and one line for the user when the text is
    not the whole value (`note`, None when it is)."""

    text: str
    note: str | None = None


def context_text(name: str, value: Any, limit: int) -> ContextPart:
    """`### name (type)` and a form of `value` of at most `limit` characters (plus a cut mark).

    Never raises for any value (a failing `repr`/`str` gives one line); takes time bounded by
    `limit` for str, bytes, containers, pandas and numpy objects.
    """
    kind = type(value).__name__
    if isinstance(value, str):
        body, full, note = value, len(value), None
    else:
        body, note = _body(value, limit)
        full = len(body)
    if full > limit:
        body = (body[:limit] + f"\n… [cut: showing {limit} of {full} characters of {name}; "
                "ask for less or raise HermesJupyter.context_limit]")
        note = note or f"was cut to {limit} of {full} characters (HermesJupyter.context_limit)."
    return ContextPart(f"### {name} ({kind})\n{body}", f"-c {name} {note}" if note else None)


def _body(value: Any, limit: int) -> tuple[str, str | None]:
    """(text, note) of a value other than str; the text may exceed `limit` by a bounded
    amount (the caller cuts it)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value[: limit // 4 + 1])
        return _safe(repr, data), None if len(value) <= len(data) else _cut_note(
            len(data), len(value), "bytes")
    module = type(value).__module__.split(".")[0]
    if module == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
        return _pandas(value, limit)
    numpy = sys.modules.get("numpy")  # loaded whenever `value` is an array: never imported
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _ndarray(value)
    if isinstance(value, _CONTAINERS):
        writer = _Writer(limit)
        text = writer.form(value, 0)
        total = _size(value) or 0
        if writer.top_items < total:
            return text, f"was cut to its first {writer.top_items:,} of {total:,} items " \
                         "(HermesJupyter.context_limit)."
        if writer.cut:
            return text, ("was shortened: long items cut and containers nested deeper than "
                          f"{MAX_DEPTH} levels named with their size "
                          "(HermesJupyter.context_limit).")
        return text, None
    text, failed = _shown(str, value)
    if failed is not None:
        return text, (f"could not be shown as text (str() raised {failed}); the task gets one "
                      "line saying so.")
    shape = _shape(value)  # a tensor, an Index, a polars frame: their str() shows a part
    if shape is not None and math.prod(shape) > ARRAY_VALUES:
        return text, (f"is a {type(value).__name__} of shape {shape}: the task gets its "
                      f"printed form, which may show only some of its {math.prod(shape):,} "
                      "values.")
    return text, None


def _shape(value: Any) -> tuple[int, ...] | None:
    """`value.shape` when it is a tuple of ints (array-likes), else None."""
    try:
        shape = tuple(getattr(value, "shape", None) or ())
    except Exception:
        return None
    return shape if shape and all(isinstance(n, int) for n in shape) else None


def _cut_note(shown: int, full: int, unit: str) -> str:
    return f"was cut to {shown} of {full} {unit} (HermesJupyter.context_limit)."


def _safe(show: Any, value: Any) -> str:
    """`show(value)`, or one line naming the error when it raises."""
    return _shown(show, value)[0]


def _shown(show: Any, value: Any) -> tuple[str, str | None]:
    """(`show(value)`, None), or (one line naming the error, the error's type name)."""
    try:
        text = show(value)
        if not isinstance(text, str):
            raise TypeError(f"{getattr(show, '__name__', 'str')}() returned "
                            f"{type(text).__name__}")
        return text, None
    except Exception as err:  # any user object: its repr/str may fail in any way
        reason = " ".join(_safe_str(err).split())[:200]
        return (f"<{type(value).__name__} object: {getattr(show, '__name__', 'str')}() raised "
                f"{type(err).__name__}{': ' + reason if reason else ''}>"), type(err).__name__


def _safe_str(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:
        return ""


def _size(value: Any) -> int | None:
    try:
        return len(value)
    except Exception:
        return None


# ---- containers ---------------------------------------------------------------------------
class _Writer:
    """A `repr`-like form that stops at a character budget: each item costs at least three
    characters, so at most `limit / 3` items are ever visited, however large the container."""

    def __init__(self, limit: int) -> None:
        # kept back for the "… N more" marks (at most one per level), so they are never cut
        self.room = limit - min(limit // 2, 30 * MAX_DEPTH)
        self.cut = False
        self.top_items = 0
        self.seen: set[int] = set()

    def form(self, value: Any, depth: int) -> str:
        if isinstance(value, str):
            return self._leaf_str(value)
        if not isinstance(value, _CONTAINERS):
            return self._leaf(value)
        if id(value) in self.seen:
            return "[...]" if isinstance(value, list) else "{...}"
        opening, closing = _brackets(value)
        size = _size(value) or 0
        if depth >= MAX_DEPTH or self.room <= 0:
            self.cut = True
            return self._spend(f"<{type(value).__name__} of {size:,} items>")
        self.seen.add(id(value))
        parts: list[str] = []
        self.room -= len(opening) + len(closing)
        for item in _items(value):
            if self.room <= 0:
                break
            parts.append(self._item(value, item, depth))
            self.room -= 3 if depth == 0 else 2  # the separator: ",\n " or ", "
            if depth == 0:
                self.top_items += 1
        self.seen.discard(id(value))
        if len(parts) < size:
            self.cut = True
            parts.append(f"… {size - len(parts):,} more")
        if isinstance(value, tuple) and len(parts) == 1 and size == 1:
            parts[0] += ","
        separator = ",\n " if depth == 0 and sum(map(len, parts)) > 100 else ", "
        return opening + separator.join(parts) + closing

    def _item(self, container: Any, item: Any, depth: int) -> str:
        if isinstance(container, dict):
            key, val = item
            self.room -= 2  # ": "
            return f"{self.form(key, depth + 1)}: {self.form(val, depth + 1)}"
        return self.form(item, depth + 1)

    def _leaf_str(self, value: str) -> str:
        room = max(self.room, 1)
        if len(value) <= room:
            return self._spend(repr(value))
        self.cut = True
        return self._spend(repr(value[:room]) + "…")

    def _leaf(self, value: Any) -> str:
        text = _safe(repr, value)
        if len(text) > max(self.room, 1):
            self.cut = True
            text = text[: max(self.room, 1)] + "…"
        return self._spend(text)

    def _spend(self, text: str) -> str:
        self.room -= max(len(text), 1)
        return text


def _brackets(value: Any) -> tuple[str, str]:
    if isinstance(value, dict):
        return "{", "}"
    if isinstance(value, list):
        return "[", "]"
    if isinstance(value, tuple):
        return "(", ")"
    if isinstance(value, collections.deque):
        return "deque([", "])"
    if isinstance(value, frozenset):
        return "frozenset({", "})"
    return "{", "}"


def _items(value: Any) -> Iterator[Any]:
    items: Iterable[Any] = value.items() if isinstance(value, dict) else value
    try:
        yield from items
    except RuntimeError:  # changed size during iteration (another thread): show what we have
        return


# ---- pandas and numpy ---------------------------------------------------------------------
def _pandas(value: Any, limit: int) -> tuple[str, str | None]:
    """Shape and dtypes; all rows when small, else head and statistics of a bounded sample."""
    frame = value.to_frame() if type(value).__name__ == "Series" else value
    rows, columns = frame.shape
    lines = [f"{rows:,} rows x {columns:,} columns"]
    dtypes = [f"{_safe(str, c)}: {t}" for c, t in
              zip(frame.columns[:MAX_DTYPES], frame.dtypes.iloc[:MAX_DTYPES], strict=False)]
    more = f", … {columns - MAX_DTYPES:,} more" if columns > MAX_DTYPES else ""
    lines.append("dtypes: " + ", ".join(dtypes) + more)
    if rows * columns <= WHOLE_CELLS:
        lines += ["", _safe(_csv, frame)]
        return "\n".join(lines), None if columns <= MAX_DTYPES else (
            f"has {columns:,} columns: the task gets the dtypes of the first {MAX_DTYPES}.")
    shown = frame.iloc[:, :MAX_COLUMNS]
    step = max(1, math.ceil(rows / SAMPLE_ROWS))
    sample = shown.iloc[::step]
    cols = f" (first {MAX_COLUMNS} columns)" if columns > MAX_COLUMNS else ""
    lines += ["", f"first {min(HEAD_ROWS, rows)} rows{cols}:",
              _safe(_csv, shown.head(HEAD_ROWS))]
    what = "all rows" if step == 1 else f"{len(sample):,} evenly spaced rows of {rows:,}"
    lines += ["", f"statistics of {what}{cols}:",
              _safe(lambda f: _csv(f.describe(include="all")), sample)]
    note = (f"is a {rows:,} x {columns:,} {type(value).__name__}: the task gets its shape, "
            f"dtypes, first rows and statistics of {what}.")
    return "\n".join(lines), note


def _csv(frame: Any) -> str:
    text: str = frame.to_csv(float_format="%.6g")
    return text.rstrip()


def _ndarray(value: Any) -> tuple[str, str | None]:
    """Shape, dtype and the values; past `ARRAY_VALUES` values, the first and last
    `EDGE_VALUES` of each axis (numpy's own summary), and a note saying so."""
    numpy = sys.modules["numpy"]
    summary = _safe(lambda a: numpy.array2string(a, threshold=ARRAY_VALUES,
                                                 edgeitems=EDGE_VALUES, max_line_width=120),
                    value)
    text = f"array of shape {value.shape}, dtype {value.dtype}\n{summary}"
    if value.size <= ARRAY_VALUES:
        return text, None
    return text, (f"is a {value.size:,}-value {type(value).__name__} of shape {value.shape}: the "
                  f"task gets its shape, dtype and the first and last {EDGE_VALUES} values "
                  "of each axis.")
