"""Parsing magic lines whose tail is prose: options first, then a goal or message as typed.

Goals and steering messages are sentences ("what's the Q3 total?"), so they must not go
through shell-style splitting, where one apostrophe breaks the line. The options in front are
split like shell words and handed to the magic's own argparse parser, so `%delegate?` help,
types and error messages stay those of `@magic_arguments`. Also here: the `seconds` option
type (finite, 0 to `threading.TIMEOUT_MAX`), the input transformer that keeps a goal ending
in `?` a goal, and tab completion of task ids and names.

Task references: every magic that takes a task reads its ID one way, as one shell word
(`parse_line` and `split_options` split alike: `'my task'`, `"my task"` and `my\\ task` are one
name), and finds it one way (`find_task`: id, name, or a notebook variable holding the Task).
Completion offers names quoted when they need it. Every refusal is one `UsageError` line
prefixed with the magic's name (`one_line_errors`).
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from IPython.core.error import UsageError

from ..core.errors import HermesError, UnknownTaskError
from ..engine.task import Task
from . import kernel

__all__ = [
    "TASK_HELP", "TASK_MAGICS", "comma_list", "complete_task_refs", "find_task",
    "keep_question_marks", "one_line_errors", "parse_line", "parser_of", "seconds", "split_options",
]

F = TypeVar("F", bound=Callable[..., Any])
# How every task magic's ID argument reads, in its help.
TASK_HELP = "task id (t3), name ('my task' quoted), or a variable holding the Task"
# Every magic whose first argument is a task: completion covers them all.
TASK_MAGICS = ("check_task", "steer_task", "collect_task", "cancel_task", "approve_task",
               "deny_task")


def one_line_errors(name: str) -> Callable[[F], F]:
    """Turn every rejection into one `UsageError` line, `%name: ...`: IPython prints
    `UsageError: ...` on stderr with no traceback and the cell fails, so "Run All", nbclient
    and papermill stop at the cause. Nothing is changed by a rejected line."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def magic(self: Any, *args: Any, **kwargs: Any) -> Any:
            kernel.flush_notices()
            try:
                return fn(self, *args, **kwargs)
            except UsageError as err:
                raise UsageError(f"%{name}: {_flat(err)} (see %{name}?)") from None
            except HermesError as err:
                raise UsageError(f"%{name}: {_flat(err)}") from None
        return magic  # type: ignore[return-value]
    return wrap


def parse_line(magic: Any, line: str) -> argparse.Namespace:
    """The line split as shell words (quotes group, as in `split_options`) and parsed by the
    magic's `@magic_arguments` parser. An unbalanced quote, or a task name with spaces left
    unquoted, is a usage error that says what to do."""
    try:
        words = shlex.split(line)
    except ValueError as err:  # "No closing quotation"
        raise UsageError(f"{_flat(err)} in {line.strip()!r}: close the quote") from None
    args, extra = parser_of(magic).parse_known_args(words)
    if extra:
        plain = [w for w in extra if not w.startswith("-")]
        task = getattr(args, "task", None)
        hint = (f"; a task name with spaces needs quotes: {shlex.quote(' '.join([task, *plain]))}"
                if task and plain else "")
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def parser_of(magic: Any) -> argparse.ArgumentParser:
    """The argparse parser `@magic_arguments` built for `magic`."""
    parser: argparse.ArgumentParser = magic.parser
    return parser


def find_task(ref: str | None, namespace: Mapping[str, Any]) -> Task:
    """The task `ref` means: an id (t3), a name, or a notebook variable holding the Task; the
    most recent task when `ref` is None. Raises `HermesError` (one line naming the known
    tasks and `%list_tasks`)."""
    if ref is None:
        return kernel.latest_task()
    try:
        return kernel.find_task(ref)
    except UnknownTaskError as missing:
        held = namespace.get(ref.strip())
        if isinstance(held, Task):
            return kernel.find_task(held)
        statuses = kernel.all_statuses()
        spaced = [s.name for s in statuses if s.name and s.name.startswith(ref.strip() + " ")]
        if spaced:  # `%steer_task my task go`: the first word of a name with spaces
            raise HermesError(f"No task {ref!r}: a name with spaces needs quotes, as in "
                              f"{shlex.quote(spaced[-1])}.") from None
        known = [s.label for s in statuses][-8:]
        hint = f" Known tasks: {', '.join(known)}." if known else " No tasks exist yet."
        hint = f" {missing.note}" if missing.note else hint  # an agent's child's name
        raise HermesError(f"No task {ref!r}.{hint} Use %list_tasks to see them.") from None


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
    """Task ids and names for the first argument of the task magics, each as the magic reads
    it: a name with spaces or quotes comes quoted (`'my task'`), and inside an opened quote
    the completion closes it."""
    command, _, typed = event.text_until_cursor.lstrip().partition(" ")
    typed = typed.lstrip()
    if _word_count(typed + "x") > 1:
        return []  # past the first argument
    refs: list[str] = []
    for status in kernel.all_statuses():
        refs += [status.id, *([status.name] if status.name else [])]
    if command == "%cancel_task":
        refs.append("--all")
    # IPython replaces only `event.symbol`, the text after the last delimiter (space, quote)
    start = len(typed) - len(event.symbol)
    out = []
    for ref in dict.fromkeys(refs):
        form = typed[0] + ref + typed[0] if typed[:1] in ("'", '"') else shlex.quote(ref)
        if form.startswith(typed) and (typed[:1] != '"' or '"' not in ref):
            out.append(form[start:])
    return out


def _next_word(line: str, pos: int) -> tuple[str, int]:
    """One shell word from `pos`, split as `shlex.split` splits it (quotes group and are
    removed; a backslash escapes outside single quotes); returns (word, end)."""
    out: list[str] = []
    quote: str | None = None
    i = pos
    while i < len(line):
        ch = line[i]
        if ch == "\\" and quote != "'" and i + 1 < len(line):
            following = line[i + 1]
            if quote is None or following in '"\\':
                out.append(following)  # outside quotes every char; in "..." only " and \
            else:
                out.append(ch + following)
            i += 2
            continue
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


def _word_count(text: str) -> int:
    """Shell words in `text`, an opened quote closed at its end."""
    for tail in ("", "'", '"'):
        try:
            return len(shlex.split(text + tail))
        except ValueError:
            continue
    return 0


def _flat(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


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
