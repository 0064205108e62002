"""The small exception hierarchy: every message is one line that says what to do."""

from __future__ import annotations

from .models import ExitReason

__all__ = [
    "CollectTimeout",
    "ConfigurationError",
    "HermesError",
    "InvalidArgument",
    "InvalidArgumentType",
    "TaskFinishedError",
    "ToolsetError",
    "UnknownTaskError",
]


class HermesError(Exception):
    """Base class of every error hermes_jupyter raises on purpose."""


class UnknownTaskError(HermesError, KeyError):
    """No task has the id or name the caller gave."""

    def __init__(self, ref: str, known: list[str] | None = None, note: str = "",
                 see: str = "list_tasks()") -> None:
        hint = f" Known tasks: {', '.join(known[-8:])}." if known else " No tasks exist yet."
        hint = f" {note}" if note else hint
        super().__init__(f"No task {ref!r}.{hint} Use {see} to see them.")
        self.ref = ref
        self.note = note  # where a task of that name is, when it is another owner's

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TaskFinishedError(HermesError):
    """The task already ended (or is ending), so it cannot take this request."""


class ConfigurationError(HermesError, ValueError):
    """A setting is missing or wrong; the message names it and how to set it."""


class ToolsetError(HermesError):
    """A toolset could not be loaded for a task (an MCP server did not start)."""

    exit_reason = ExitReason.TOOL_ERROR


class CollectTimeout(HermesError, TimeoutError):
    """`collect` waited its timeout out; the task keeps running."""


class InvalidArgument(ConfigurationError):
    """A parameter got a value it cannot take; the message names it and what to pass."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """A parameter got a value of the wrong type (also a `TypeError`)."""
