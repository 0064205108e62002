"""Checks for public parameters, run where a value is passed: each returns the value to use or
raises `InvalidArgument` (a `ValueError`) / `InvalidArgumentType` (also a `TypeError`) with one
line that names the parameter and says what to pass. Nothing is changed before they pass.

Every check takes the parameter's name first, as the caller spells it (`"delegate(timeout=)"`
reads worse than `"timeout"`; the method is in the traceback).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from .errors import InvalidArgument, InvalidArgumentType

__all__ = [
    "MAX_COUNT",
    "MAX_SECONDS",
    "a_bool",
    "a_callable",
    "a_path",
    "a_url",
    "amount",
    "callables",
    "count",
    "names",
    "optional",
    "seconds",
    "text",
]

T = TypeVar("T")
MAX_COUNT = 2**63 - 1  # what SQLite and C-level APIs hold
MAX_SECONDS = float(threading.TIMEOUT_MAX)  # longer waits overflow `Event.wait`


def count(name: str, value: object, *, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """A whole number in [minimum, maximum] (bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        _wrong_type(name, value, f"a whole number from {minimum} to {maximum}")
    number = int(value)
    if not minimum <= number <= maximum:
        _bad(name, value, f"pass a whole number from {minimum} to {maximum}")
    return number


def seconds(name: str, value: object, *, allow_zero: bool = False,
            none_means: str = "") -> float:
    """A finite number of seconds, > 0 (≥ 0 with `allow_zero`), at most `MAX_SECONDS`.
    `none_means` completes the hint when the parameter also takes None ("no limit")."""
    lowest = "0" if allow_zero else "more than 0"
    hint = f"a number of seconds, {lowest} and at most {MAX_SECONDS:.0f}"
    if none_means:
        hint += f", or None for {none_means}"
    if isinstance(value, bool) or not isinstance(value, Real):
        _wrong_type(name, value, hint)
    number = float(value)
    if (not math.isfinite(number) or number > MAX_SECONDS
            or number < 0 or (number == 0 and not allow_zero)):
        _bad(name, value, "pass " + hint)
    return number


def amount(name: str, value: object) -> float:
    """A finite amount of money (US dollars), more than 0."""
    hint = "an amount in US dollars, more than 0"
    if isinstance(value, bool) or not isinstance(value, Real):
        _wrong_type(name, value, hint)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        _bad(name, value, "pass " + hint)
    return number


def text(name: str, value: object, *, empty_ok: bool = False, what: str = "text") -> str:
    """A str; unless `empty_ok`, one with something besides whitespace."""
    if not isinstance(value, str):
        _wrong_type(name, value, what)
    if not empty_ok and not value.strip():
        raise InvalidArgument(f"The {name} is empty: pass {what}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidArgument(
            f"Bad {name}: it holds {value[err.start]!r} at {err.start}, a lone surrogate no "
            "model can be sent; pass valid text (decode bytes with errors='replace').") from None
    return value


def a_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        _wrong_type(name, value, "True or False")
    return value


def a_callable(name: str, value: object, what: str = "a function") -> Callable[..., Any]:
    if not callable(value):
        _wrong_type(name, value, what)
    return value


def a_path(name: str, value: object, *, folder: bool = False) -> Path:
    """A str or os.PathLike naming a path (an existing folder when `folder`)."""
    what = "an existing folder" if folder else "a file path"
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        _wrong_type(name, value, f"{what} as a str or pathlib.Path")
    raw = os.fspath(value)
    if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
        _bad(name, value, f"pass {what} as a str or pathlib.Path")
    path = Path(raw).expanduser()
    if folder and not path.is_dir():
        _bad(name, value, f"pass {what} (this one does not exist or is not a folder)")
    return path


def a_url(name: str, value: object) -> str:
    """An http(s) URL with a host."""
    hint = "an http(s) URL like 'http://localhost:11434/v1'"
    if not isinstance(value, str):  # it may hold a password: never repeat it
        raise InvalidArgumentType(f"Bad {name}: got {type(value).__name__}; pass {hint}.")
    url = value.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        _bad(name, "<the URL>", f"pass {hint}")  # it may hold a password: never repeat it
    return url


def names(name: str, value: object, what: str = "names") -> list[str]:
    """A list (any iterable but a str) of non-empty strings."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        _wrong_type(name, value, f"a list of {what}, like ['files']")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            _bad(name, item, f"pass a list of {what} (non-empty strings)")
        out.append(item)
    return out


def callables(name: str, value: object) -> list[Callable[..., Any]]:
    """A list (any iterable) of functions."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        _wrong_type(name, value, "a list of functions")
    out = list(value)
    for item in out:
        if not callable(item):
            _wrong_type(name, item, "a list of functions (this item is not one)")
    return out


def optional(check: Callable[..., T], name: str, value: object, **kw: Any) -> T | None:
    """None, or what `check` accepts."""
    return None if value is None else check(name, value, **kw)


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _wrong_type(name: str, value: object, hint: str) -> NoReturn:
    raise InvalidArgumentType(
        f"Bad {name}: got {type(value).__name__} {_show(value)}; pass {hint}.")


def _bad(name: str, value: object, hint: str) -> NoReturn:
    raise InvalidArgument(f"Bad {name} {_show(value)}: {hint}.")
