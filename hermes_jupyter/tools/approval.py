"""Which tool calls need a person's approval, and what the policy says about one (pure).

A tool needs approval when it is marked (`@hj.tool(requires_approval=True)`, the `shell`
toolset's `run_shell`, the `files` writes under `approve_file_writes`). For such a call the
policy decides: commands that destroy the machine or the workspace are always refused, and
commands that cannot be judged (the command's name or a destructive command's target comes from
an expansion) always wait for a person (`refusal.py`); otherwise under `approval="auto"` the
call runs; a call matching an allowlist or remembered pattern runs;
under `"deny"` it is refused at once (unattended runs never block); under `"ask"` it waits.

Patterns match the parsed command (`shlex`), word by word with shell wildcards (`git status`,
`pytest *`: a last `*` word matches any number of words); for other tools the pattern is the
tool's name. A command with `;`, `&&`, `||`, `|`, `&`, a redirection, backticks, `$(...)` or a
newline never matches a pattern: it always asks.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from ..core import validate as v
from ..core.errors import ConfigurationError, InvalidArgument, InvalidArgumentType
from .refusal import analyse, refusal

__all__ = [
    "APPROVAL_MODES", "ApprovalPolicy", "Verdict", "approval_reason", "assess", "check_pattern",
    "command_words", "matches", "refusal", "tool",
]

APPROVAL_MODES = ("ask", "auto", "deny")
SHELL_TOOL = "run_shell"
_F = TypeVar("_F", bound=Callable[..., Any])
_MARK = "__hj_requires_approval__"
_OPERATORS = re.compile(r"[;&|<>()\n`]|\$\(")


@overload
def tool(fn: _F, *, requires_approval: bool = ..., approval_reason: str | None = ...) -> _F: ...
@overload
def tool(fn: None = None, *, requires_approval: bool = ...,
         approval_reason: str | None = ...) -> Callable[[_F], _F]: ...
def tool(fn: _F | None = None, *, requires_approval: bool = False,
         approval_reason: str | None = None) -> Any:
    """Mark a function as a tool; `requires_approval=True` makes every call of it wait for a
    person's decision (under the task's approval policy). Use bare (`@hj.tool`) or with
    arguments; returns the function itself."""
    def mark(f: _F) -> _F:
        if not callable(f):
            raise ConfigurationError(f"@hj.tool marks functions, not {f!r}.")
        if requires_approval:
            try:
                setattr(f, _MARK, approval_reason or f"{getattr(f, '__name__', 'this tool')} "
                                                      "is marked requires_approval")
            except (AttributeError, TypeError):
                raise ConfigurationError(f"@hj.tool cannot mark {f!r}: wrap it in a def.") \
                    from None
        return f
    return mark(fn) if fn is not None else mark


def approval_reason(fn: Callable[..., Any]) -> str | None:
    """Why calls of `fn` need approval, or None when they do not."""
    reason = getattr(fn, _MARK, None)
    return reason if isinstance(reason, str) else None


@dataclass(frozen=True)
class ApprovalPolicy:
    """`mode` ("ask" | "auto" | "deny"), `allowlist` patterns, `timeout` (seconds a call may
    wait before it is denied; None: no limit)."""

    mode: str = "ask"
    allowlist: tuple[str, ...] = ()
    timeout: float | None = None

    @classmethod
    def checked(cls, mode: str = "ask", allowlist: Iterable[str] | None = (),
                timeout: float | None = None) -> ApprovalPolicy:
        """A policy from settings; a bad value raises `InvalidArgument` (a
        `ConfigurationError`) or `InvalidArgumentType`, naming it."""
        mode = v.text("approval", mode, what="'ask', 'auto' or 'deny'")
        if mode not in APPROVAL_MODES:
            raise InvalidArgument(f"Bad approval {mode!r}: choose from "
                                  f"{', '.join(APPROVAL_MODES)}.")
        if isinstance(allowlist, str):
            raise InvalidArgumentType(f"Bad approval_allowlist {allowlist!r}: pass a list of "
                                      "patterns such as ['ls *', 'git status'].")
        listed = v.names("approval_allowlist", [] if allowlist is None else allowlist,
                         what="patterns")
        patterns = tuple(check_pattern(p) for p in listed)
        timeout = v.optional(v.seconds, "approval_timeout", timeout, none_means="no limit")
        return cls(mode, patterns, timeout)

    def replace(self, mode: str | None = None, allowlist: Iterable[str] | None = None,
                timeout: float | None = None) -> ApprovalPolicy:
        """This policy with the given parts changed (per-task overrides), checked."""
        return ApprovalPolicy.checked(
            self.mode if mode is None else mode,
            self.allowlist if allowlist is None else allowlist,
            self.timeout if timeout is None else timeout)


@dataclass(frozen=True)
class Verdict:
    """What the policy says of one call: "run", "ask", "deny" (policy) or "refuse" (never),
    with why."""

    action: Literal["run", "ask", "deny", "refuse"]
    reason: str
    words: tuple[str, ...] | None = None  # what patterns match; None: nothing ever does


def assess(tool_name: str, arguments: dict[str, Any], need: str, policy: ApprovalPolicy,
           remembered: Sequence[str]) -> Verdict:
    """The verdict on one call of a tool that needs approval (`need`: why it does)."""
    command = arguments.get("command") if tool_name == SHELL_TOOL else None
    opaque = None
    if isinstance(command, str):
        found = analyse(command)
        if found.refused:
            return Verdict("refuse", found.refused)
        opaque = found.opaque
        words = None if opaque else command_words(command)
    else:
        words = (tool_name,)
    if policy.mode == "auto" and opaque is None:
        return Verdict("run", "approval='auto'", words)
    for pattern in (*policy.allowlist, *remembered):
        if words is not None and matches(pattern, words):
            return Verdict("run", f"matches the pattern {pattern!r}", words)
    if opaque is not None:
        need += f" ({opaque}: a person must read it, whatever the policy)"
    elif words is None:
        need += " (a chained or redirected command always asks)"
    if policy.mode == "deny":
        return Verdict("deny", need, words)
    return Verdict("ask", need, words)


def command_words(command: str) -> tuple[str, ...] | None:
    """The words of a simple command, or None for one that chains, pipes, redirects,
    substitutes or does not parse (no pattern ever matches those)."""
    if _OPERATORS.search(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return tuple(words) or None


def matches(pattern: str, words: Sequence[str]) -> bool:
    """Whether the pattern's words match `words` one by one (shell wildcards; a last `*` word
    matches any number of words, none included)."""
    parts = shlex.split(pattern)
    if parts and parts[-1] == "*":
        parts = parts[:-1]
        if len(words) < len(parts):
            return False
        words = words[:len(parts)]
    return len(parts) == len(words) and all(
        fnmatch.fnmatchcase(w, p) for p, w in zip(parts, words, strict=True))


def check_pattern(pattern: object) -> str:
    """`pattern` if it is usable (a simple command with wildcards), else `ConfigurationError`."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigurationError(f"Bad approval pattern {pattern!r}: give a command such as "
                                 "'git status' or 'ls *', or a tool name.")
    if command_words(pattern) is None:
        raise ConfigurationError(f"Bad approval pattern {pattern!r}: a pattern is one simple "
                                 "command (no ; && || | > ` $( ); chained commands always ask.")
    return pattern.strip()
