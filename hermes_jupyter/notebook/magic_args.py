"""Parsing magic lines whose tail is prose: options first, then a goal or message as typed.

Goals and steering messages are sentences ("what's the Q3 total?"), so they must not go
through shell-style splitting, where one apostrophe breaks the line. The options in front are
split like shell words and handed to the magic's own argparse parser, so `%delegate?` help,
types and error messages stay those of `@magic_arguments`.
"""

from __future__ import annotations

import argparse
import pprint
from typing import Any

from IPython.core.error import UsageError

__all__ = ["comma_list", "context_text", "split_options"]


def split_options(
    parser: argparse.ArgumentParser, line: str, leading: int = 0
) -> tuple[list[str], str]:
    """(option words for `parser`, the rest of `line` verbatim).

    `leading` positional words (a task id) are taken before the rest begins; `--` ends the
    options explicitly. A rest wrapped whole in quotes loses them.
    """
    takes_value = {
        option: action.nargs != 0
        for action in parser._actions
        for option in action.option_strings
    }
    words: list[str] = []
    positionals = 0
    pos = _skip_space(line, 0)
    while pos < len(line):
        if line[pos] != "-" and positionals >= leading:
            break  # the prose begins: never shell-split it
        word, end = _next_word(line, pos)
        if line[pos:end] == "--":
            pos = end
            break
        if word.startswith("-") and len(word) > 1 and not _is_number(word):
            words.append(word)
            pos = _skip_space(line, end)
            name = word.split("=", 1)[0]
            if "=" not in word and takes_value.get(name, False):
                if pos >= len(line):
                    break  # argparse reports the missing value
                value, end = _next_word(line, pos)
                words.append(value)
                pos = _skip_space(line, end)
            continue
        if positionals < leading:
            words.append(word)
            positionals += 1
            pos = _skip_space(line, end)
            continue
        break
    return words, _unquote(line[pos:].strip())


def comma_list(values: list[str] | None) -> list[str]:
    """`-c a,b -c c` → ["a", "b", "c"]."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def context_text(name: str, value: Any, limit: int) -> tuple[str, int | None]:
    """A notebook variable as context text, and its full length when it was cut."""
    if isinstance(value, str):
        text = value
    elif callable(getattr(value, "to_csv", None)) and not isinstance(value, type):
        text = value.to_csv()  # pandas: every row, unlike its display form
    elif isinstance(value, (dict, list, tuple, set, frozenset)):
        text = pprint.pformat(value, width=100, compact=True)
    else:
        text = str(value)
    full = len(text)
    if full > limit:
        text = text[:limit] + (f"\n… [cut: showing {limit} of {full} characters of {name}; "
                               "ask for less or raise HermesJupyter.context_limit]")
    return f"### {name} ({type(value).__name__})\n{text}", full if full > limit else None


def _next_word(line: str, pos: int) -> tuple[str, int]:
    """One shell-style word from `pos`: quotes group and are removed; returns (word, end)."""
    out: list[str] = []
    quote: str | None = None
    i = pos
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
            else:
                out.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch.isspace():
            break
        else:
            out.append(ch)
        i += 1
    if quote:
        raise UsageError(f"unbalanced {quote} in the options: close the quote")
    return "".join(out), i


def _skip_space(line: str, pos: int) -> int:
    while pos < len(line) and line[pos].isspace():
        pos += 1
    return pos


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text[0] not in text[1:-1]:
        return text[1:-1].strip()
    return text
