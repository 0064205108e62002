"""The checks of `Session`'s public parameters, kept out of session.py so it reads as the engine.

Each function checks every parameter of one method and returns the values to use; the first
bad one raises `InvalidArgument` / `InvalidArgumentType` naming it (`core/validate.py`).
`tests/public_api.py` lists every parameter with good and bad values; a parameter added here
is added there too, and the fuzz in `tests/test_arguments.py` checks it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core import validate as v
from ..core.errors import InvalidArgument, InvalidArgumentType
from .provider import RetryPolicy
from .structured import OutputSpec, output_spec

__all__ = ["DelegateArgs", "SessionArgs", "TaskLimits", "check_base_url", "delegate_args",
           "session_args", "task_limits"]

MAX_CONCURRENT = 10_000  # threads and sockets: far beyond any endpoint's rate limit
MAX_ITERATIONS = 1_000_000


@dataclass(frozen=True)
class SessionArgs:
    model: str | None
    subagent_model: str | None
    base_url: str | None
    api_keys: Iterable[str] | str | None
    max_concurrent: int
    max_iterations: int
    task_timeout: float | None
    workspace: Path | None
    toolsets: tuple[str, ...]
    system_prompt: str
    retry: RetryPolicy | None
    journal: Path | bool
    first_id: int
    keep_finished: int | None


def session_args(
    model: object, subagent_model: object, base_url: object, api_keys: object,
    max_concurrent: object, max_iterations: object, task_timeout: object, workspace: object,
    toolsets: object, system_prompt: object, retry: object, journal: object, first_id: object,
    keep_finished: object,
) -> SessionArgs:
    """The parameters of `Session.__init__`, checked in signature order."""
    model_hint = "a model name like 'gpt-4o-mini', or None"
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidArgumentType(f"Bad retry: got {type(retry).__name__}; pass a "
                                  "RetryPolicy(...) or None for the default.")
    return SessionArgs(
        model=v.optional(v.text, "model", model, what=model_hint),
        subagent_model=v.optional(v.text, "subagent_model", subagent_model, what=model_hint),
        base_url=_base_url(base_url),
        api_keys=_api_keys(api_keys),
        max_concurrent=v.count("max_concurrent", max_concurrent, maximum=MAX_CONCURRENT),
        max_iterations=v.count("max_iterations", max_iterations, maximum=MAX_ITERATIONS),
        task_timeout=v.optional(v.seconds, "task_timeout", task_timeout, none_means="no limit"),
        workspace=v.optional(v.a_path, "workspace", workspace, folder=True),
        toolsets=tuple(v.names("toolsets", toolsets, "toolset names")) if toolsets is not None
        else (),
        system_prompt=v.text("system_prompt", system_prompt, empty_ok=True),
        retry=retry,
        journal=_journal(journal),
        first_id=v.count("first_id", first_id),
        keep_finished=v.optional(v.count, "keep_finished", keep_finished, minimum=0),
    )


@dataclass(frozen=True)
class DelegateArgs:
    goal: str
    context: str
    name: str | None
    model: str | None
    tools: list[Callable[..., Any]] | None
    toolsets: list[str] | None
    max_iterations: int | None
    timeout: float | None


def delegate_args(goal: object, context: object, name: object, model: object, tools: object,
                  toolsets: object, max_iterations: object, timeout: object) -> DelegateArgs:
    """The parameters of `Session.delegate`, checked in signature order."""
    goal = v.text("goal", goal, what="what the subagent should do")
    context = "" if context is None else v.text("context", context, empty_ok=True)
    if name is not None:
        name = v.text("name", name, what="a task name like 'survey'")
        if name.strip() != name:
            raise InvalidArgument(f"Bad task name {name!r}: use a non-empty name without spaces "
                                    "at either end.")
        if re.fullmatch(r"t\d+", name):  # an id always wins: the name would find another task
            raise InvalidArgument(f"Bad task name {name!r}: it is shaped like a task id (t1, "
                                  "t2, ...), which always means that task; use another name.")
    return DelegateArgs(
        goal=goal.strip(),
        context=context,
        name=name,
        model=v.optional(v.text, "model", model, what="a model name, or None for the default"),
        tools=v.optional(v.callables, "tools", tools),
        toolsets=v.optional(v.names, "toolsets", toolsets, what="toolset names"),
        max_iterations=v.optional(v.count, "max_iterations", max_iterations,
                                  maximum=MAX_ITERATIONS),
        timeout=v.optional(v.seconds, "timeout", timeout, none_means="the session's "
                           "task_timeout"),
    )


def _base_url(value: object) -> str | None:
    """`base_url`, else OPENAI_BASE_URL, checked by `check_base_url`."""
    if value is not None:
        return check_base_url(value)
    from_env = os.environ.get("OPENAI_BASE_URL") or None
    return None if from_env is None else check_base_url(from_env, "OPENAI_BASE_URL")


def check_base_url(value: object, name: str = "base_url") -> str:
    """An endpoint URL: http(s), with a host, without a user name or password (a key goes in
    api_keys; credentials in a URL are refused by the transport and would show in logs).
    Raises `InvalidArgument` naming `name`; never repeats the URL."""
    url = v.a_url(name, value)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(f"Bad {name}: it holds a user name or password (user:pass@); "
                              "remove them and pass the key in api_keys (or OPENAI_API_KEY).")
    return url


def _api_keys(value: object) -> Iterable[str] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise InvalidArgumentType(f"Bad api_keys: got {type(value).__name__}; pass a list of "
                                  "keys, a comma-separated str, or None to read OPENAI_API_KEY.")
    keys = list(value)
    if not all(isinstance(k, str) for k in keys):
        raise InvalidArgumentType("Bad api_keys: an item is not a str; pass a list of keys "
                                  "(str), a comma-separated str, or None.")
    return keys


def _journal(value: object) -> Path | bool:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, (str, os.PathLike)):
        return v.a_path("journal", value)
    raise InvalidArgumentType(f"Bad journal: got {type(value).__name__}; pass True (the "
                              "workspace's .hermes/tasks.sqlite), a file path, or False.")


@dataclass(frozen=True)
class TaskLimits:
    owner: str | None
    max_total_tokens: int | None
    max_cost_usd: float | None
    tool_timeout: float | None
    output_type: OutputSpec | None
    group_id: str | None


def task_limits(owner: object, max_total_tokens: object, max_cost_usd: object,
                tool_timeout: object, output_type: object, group_id: object) -> TaskLimits:
    """The rest of `Session.delegate`'s own parameters, checked in signature order."""
    return TaskLimits(
        owner=v.optional(v.text, "owner", owner, what="an owner id, or None"),
        max_total_tokens=v.optional(v.count, "max_total_tokens", max_total_tokens),
        max_cost_usd=v.optional(v.amount, "max_cost_usd", max_cost_usd),
        tool_timeout=v.optional(v.seconds, "tool_timeout", tool_timeout,
                                none_means="the session's tool_timeout"),
        output_type=output_spec(output_type) if output_type is not None else None,
        group_id=v.optional(v.text, "group_id", group_id, what="a group id, or None"),
    )
