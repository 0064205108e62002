"""Parsing magic lines whose tail is prose: options first, then a goal or message as typed.

Goals and steering messages are sentences ("what's the Q3 total?"), so they must not go
through shell-style splitting, where one apostrophe breaks the line. The options in front are
split like shell words and handed to the magic's own argparse parser, so `%delegate?` help,
types and error messages stay those of `@magic_arguments`. Also here: the `seconds` option
type (finite, 0 to `threading.TIMEOUT_MAX`), the input transformer that keeps a goal ending
in `?` a goal, and tab completion of task ids and names.
"""

from __future__ import annotations

import argparse
import re
import threading
from typing import Any

from IPython.core.error import UsageError

from . import kernel

__all__ = ["comma_list", "complete_task_refs", "keep_question_marks", "seconds", "split_options"]


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


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds from 0 to `threading.TIMEOUT_MAX`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value <= threading.TIMEOUT_MAX:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"expected seconds from 0 to {threading.TIMEOUT_MAX:.0f}, got {text!r}")
    return value


_PROSE_MAGIC = re.compile(
    r"^(?P<indent>\s*)(?P<assign>[A-Za-z_]\w*\s*=\s*)?%(?P<name>delegate|steer_task|hermes)"
    r"\s+(?P<rest>.*\S)\s*$"
)


def keep_question_marks(lines: list[str]) -> list[str]:
    """Keep `%delegate what is the total?` a goal: IPython reads a line ending in `word?` as a
    request for help on `word`. `%delegate?` alone still shows the magic's help."""
    if next((line for line in lines if line.strip()), "").lstrip().startswith("%%"):
        return lines  # a cell magic's body is its goal, verbatim
    out = []
    for line in lines:
        match = _PROSE_MAGIC.match(line.rstrip("\n"))
        if match and match["rest"].endswith("?") and match["rest"] not in ("?", "??"):
            call = f"get_ipython().run_line_magic({match['name']!r}, {match['rest']!r})"
            line = f"{match['indent']}{match['assign'] or ''}{call}\n"
        out.append(line)
    return out


def complete_task_refs(shell: Any, event: Any) -> list[str]:
    """Task ids and names for the first argument of the task magics."""
    before = event.text_until_cursor.split()
    typing_first = len(before) == 1 or (len(before) == 2 and not event.text_until_cursor[-1:]
                                        .isspace())
    if not typing_first:
        return []
    refs: list[str] = []
    for status in kernel.all_statuses():
        refs.append(status.id)
        if status.name:
            refs.append(status.name)
    if before[0] == "%cancel_task":
        refs.append("--all")
    return list(dict.fromkeys(refs))


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
