"""Every public callable of the engine, its parameters, and values each must refuse.

The registry later issues extend: a new public parameter gets a `Param` here (with what it
must refuse), and `tests/test_arguments.py` checks that each bad value raises `HermesError`
(a `TypeError`/`ValueError` subclass of it) with one line naming the parameter, that nothing
changed, and that the session still runs a task afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hermes_jupyter as hj


class _Thing:
    """An object no parameter takes."""

    def __repr__(self) -> str:
        return "<thing>"


NONE, ZERO, NEG, HALF, NAN, INF = None, 0, -1, 0.5, float("nan"), float("inf")
HUGE, BYTES, THING, TRUE = 10**100, b"x", _Thing(), True
SURROGATE = "caf\udce9"
# Refused by every whole-number parameter that must be at least 1.
NOT_A_COUNT = (NONE, ZERO, NEG, HALF, NAN, INF, HUGE, BYTES, THING, TRUE, "8")
# Refused by every optional seconds parameter (0 is refused unless noted).
NOT_SECONDS = (NEG, NAN, INF, -INF, HUGE, BYTES, THING, TRUE, "5")
NOT_TEXT = (NONE, ZERO, HALF, NAN, BYTES, THING, "", "   ", SURROGATE)
NOT_A_REF = (NONE, ZERO, HALF, NAN, BYTES, THING, "", "   ", SURROGATE)
NOT_A_FUNCTION = (NONE, ZERO, "print", BYTES, THING)


@dataclass
class Context:
    """What a call needs: a live session on a fake model and one finished task of it."""

    session: hj.Session
    done: hj.Task
    base: dict[str, Any]  # Session(...) arguments that work


@dataclass(frozen=True)
class Param:
    name: str
    invalid: tuple[object, ...]
    mention: str = ""  # what the message must name, when not the parameter's own name

    @property
    def named(self) -> str:
        return self.mention or self.name


@dataclass(frozen=True)
class Api:
    label: str
    call: Callable[[Context, dict[str, Any]], object]  # calls it with the given keywords
    params: tuple[Param, ...] = field(default_factory=tuple)


def _new_session(ctx: Context, kw: dict[str, Any]) -> object:
    hj.Session(**{**ctx.base, **kw}).close()
    return None


def _forget(ctx: Context, kw: dict[str, Any]) -> object:
    if "tasks" in kw:
        return ctx.session.forget(kw["tasks"])
    return ctx.session.forget(**kw)


SESSION_PARAMS = (
    Param("model", (ZERO, HALF, NAN, BYTES, THING, "", "  ", SURROGATE)),
    Param("subagent_model", (ZERO, HALF, NAN, BYTES, THING, "", "  ", SURROGATE)),
    Param("base_url", (ZERO, BYTES, THING, "", "ftp://host/v1", "no url", "http://")),
    Param("api_keys", (ZERO, HALF, NAN, BYTES, THING, [1], [b"k"], [None])),
    Param("max_concurrent", NOT_A_COUNT),
    Param("max_iterations", NOT_A_COUNT),
    Param("task_timeout", (ZERO, *NOT_SECONDS)),
    Param("workspace", (ZERO, BYTES, THING, TRUE, "", "/no/such/folder", "nul\x00")),
    Param("toolsets", ("files", BYTES, ZERO, THING, [0], [""], ["terminal"]), mention="toolset"),
    Param("system_prompt", (NONE, ZERO, BYTES, THING, SURROGATE)),
    Param("retry", (ZERO, THING, "fast", {})),
    Param("journal", (ZERO, 1, HALF, BYTES, THING, "")),
    Param("first_id", (NONE, ZERO, NEG, HALF, NAN, INF, HUGE, BYTES, THING, TRUE)),
    Param("keep_finished", (NEG, HALF, NAN, INF, HUGE, BYTES, THING, TRUE)),
    Param("prices", (ZERO, "cheap", THING, {"m": (1,)}, {"m": (-1, 1)}, {"m": (NAN, 1)},
                     {"m": ("1", 2)}, {1: (1, 2)})),
    Param("session_budget_usd", (ZERO, NEG, NAN, INF, BYTES, THING, TRUE, "5")),
    Param("stall_timeout", (ZERO, *NOT_SECONDS)),
    Param("cooldown_cap", (NONE, ZERO, *NOT_SECONDS)),
    Param("tool_env_allowlist", ("GITHUB_TOKEN", NONE, BYTES, ZERO, THING, [0], [""], [BYTES])),
    Param("tool_memory_limit_mb", (ZERO, NEG, HALF, NAN, INF, HUGE, BYTES, THING, TRUE, "1G")),
    Param("approval", (NONE, ZERO, "sometimes", BYTES, THING)),
    Param("approval_allowlist", ("git status", ZERO, THING, [0], [""], [BYTES])),
    Param("approval_timeout", (ZERO, *NOT_SECONDS)),
    Param("approve_file_writes", (NONE, ZERO, 1, "yes", THING)),
    Param("tool_timeout", (ZERO, *NOT_SECONDS)),
    Param("mcp_servers", (ZERO, "srv", THING, {"": {"command": "x"}}, {"s": 1},
                          {"s": {"command": 1}}, {"s": {"url": "ftp://x"}}, {"s": {}}),
          mention="mcp_servers|MCP server"),
    Param("cluster", (ZERO, HALF, TRUE, BYTES, THING, "", "   ", SURROGATE)),
    Param("detach_timeout", (ZERO, *NOT_SECONDS)),
)
NOT_MONEY = (ZERO, NEG, NAN, INF, BYTES, THING, TRUE, "1")
# Refused by output_type: not a model class, dataclass, TypedDict or JSON schema of an object.
NOT_AN_OUTPUT_TYPE = (42, HALF, BYTES, THING, TRUE, "Review", int, list, _Thing,
                      {"type": "string"}, {"type": "object", "properties": 3}, {},
                      {"type": "object", "x": THING})


def _map(ctx: Context, kw: dict[str, Any]) -> object:
    options = kw.pop("delegate_options", {})
    return ctx.session.map(**{"goal": "x {item}", "items": [1], **kw, **options})

API: tuple[Api, ...] = (
    Api("Session", _new_session, SESSION_PARAMS),
    Api("Session.delegate", lambda c, kw: c.session.delegate(**{"goal": "fuzz", **kw}), (
        Param("goal", NOT_TEXT),
        Param("context", (ZERO, BYTES, THING, SURROGATE)),
        Param("name", (ZERO, BYTES, THING, "", " padded", "t7", SURROGATE)),
        Param("model", (ZERO, NAN, BYTES, THING, "", SURROGATE)),
        Param("tools", (ZERO, "print", THING, [0], [None]), mention="tools"),
        Param("toolsets", ("files", ZERO, THING, [0], ["terminal"]), mention="toolset"),
        Param("max_iterations", (ZERO, NEG, HALF, NAN, INF, HUGE, BYTES, THING, TRUE, "3")),
        Param("timeout", (ZERO, *NOT_SECONDS)),
        Param("owner", (ZERO, BYTES, THING, "", SURROGATE)),
        Param("max_total_tokens", NOT_A_COUNT[1:]),
        Param("max_cost_usd", NOT_MONEY),
        Param("tool_timeout", (ZERO, *NOT_SECONDS)),
        Param("approval", (ZERO, "sometimes", BYTES, THING)),
        Param("approval_allowlist", ("git status", ZERO, THING, [0], [""])),
        Param("approval_timeout", (ZERO, *NOT_SECONDS)),
        Param("output_type", NOT_AN_OUTPUT_TYPE),
        Param("group_id", (ZERO, BYTES, THING, "", SURROGATE)),
    )),
    Api("Session.approve", lambda c, kw: c.session.approve(**{"ref": c.done, **kw}), (
        Param("ref", NOT_A_REF), Param("call_id", (ZERO, BYTES, THING, "")),
        Param("remember", (ZERO, BYTES, THING, "")),
    )),
    Api("Session.deny", lambda c, kw: c.session.deny(**{"ref": c.done, **kw}), (
        Param("ref", NOT_A_REF), Param("call_id", (ZERO, BYTES, THING, "")),
        Param("reason", (ZERO, BYTES, THING)),
    )),
    Api("Session.set_approval", lambda c, kw: c.session.set_approval(
        **{"approval": "ask", "allowlist": (), "timeout": None, "approve_file_writes": False,
           **kw}), (
        Param("approval", (NONE, ZERO, "sometimes", THING)),
        Param("allowlist", ("git status", ZERO, THING, [0])),
        Param("timeout", (ZERO, *NOT_SECONDS)),
        Param("approve_file_writes", (NONE, ZERO, 1, "yes", THING)),
    )),
    Api("Task.approve", lambda c, kw: c.done.approve(**kw), (
        Param("call_id", (ZERO, BYTES, THING, "")), Param("remember", (ZERO, BYTES, THING, "")),
    )),
    Api("Task.deny", lambda c, kw: c.done.deny(**kw), (
        Param("call_id", (ZERO, BYTES, THING, "")), Param("reason", (ZERO, BYTES, THING)),
    )),
    Api("Session.map", _map, (
        Param("goal", NOT_TEXT),
        Param("items", ("abc", ZERO, THING, [], BYTES, NONE)),
        Param("name", (ZERO, BYTES, THING, "", SURROGATE)),
        Param("context", (NONE, ZERO, BYTES, THING, SURROGATE)),
        Param("max_concurrent", NOT_A_COUNT[1:]),
        Param("output_type", NOT_AN_OUTPUT_TYPE),
        Param("delegate_options", ({"colour": "red"}, {"goals": "x"}), mention=r"map\(\) takes no"),
    )),
    Api("Session.task_of", lambda c, kw: c.session.task_of(**{"owner": None, "ref": "t1",
                                                              **kw}),
        (Param("owner", (ZERO, BYTES, THING, "", SURROGATE)), Param("ref", NOT_A_REF),
         Param("everyone", (NONE, ZERO, 1, "yes", THING)))),
    Api("Session.descendants", lambda c, kw: c.session.descendants(**kw),
        (Param("ref", NOT_A_REF),)),
    Api("Session.cost", lambda c, kw: c.session.cost(**kw)),
    Api("Session.mcp_status", lambda c, kw: c.session.mcp_status(**kw), (
        Param("connect", (NONE, ZERO, 1, "yes", THING)),
        Param("timeout", (ZERO, *NOT_SECONDS)),
    )),
    Api("Session.free_slots", lambda c, kw: c.session.free_slots(**kw)),
    Api("Session.check", lambda c, kw: c.session.check(**kw), (Param("ref", NOT_A_REF),)),
    Api("Session.task", lambda c, kw: c.session.task(**kw), (Param("ref", NOT_A_REF),)),
    Api("Session.cancel", lambda c, kw: c.session.cancel(**kw), (Param("ref", NOT_A_REF),)),
    Api("Session.steer", lambda c, kw: c.session.steer(**{"ref": c.done, "message": "m", **kw}),
        (Param("ref", NOT_A_REF), Param("message", NOT_TEXT))),
    Api("Session.collect", lambda c, kw: c.session.collect(**{"ref": c.done, **kw}),
        (Param("ref", NOT_A_REF), Param("timeout", NOT_SECONDS))),
    Api("Session.subscribe", lambda c, kw: c.session.subscribe(**kw),
        (Param("callback", NOT_A_FUNCTION),)),
    Api("Session.history", lambda c, kw: c.session.history(**kw),
        (Param("limit", (ZERO, NEG, HALF, NAN, INF, HUGE, BYTES, THING, TRUE, "3")),)),
    Api("Session.resume", lambda c, kw: c.session.resume(**{"task_id": "t1", **kw}), (
        Param("task_id", NOT_A_REF),
        Param("tools", (ZERO, "print", THING, [0], [None]), mention="tools"),
        Param("toolsets", ("files", ZERO, THING, [0]), mention="toolset"),
    )),
    Api("Session.close", lambda c, kw: c.session.close(**kw),
        (Param("timeout", (NONE, *NOT_SECONDS)),)),
    Api("Session.attachment", lambda c, kw: c.session.attachment(**{"key": "k",
                                                                     "make": dict, **kw}),
        (Param("key", (NONE, ZERO, BYTES, THING, "")), Param("make", NOT_A_FUNCTION))),
    Api("Session.forget", _forget, (
        Param("tasks", (NONE, ZERO, HALF, BYTES, THING, "", SURROGATE), mention="tasks|ref"),
        Param("finished", (NONE, ZERO, 1, "yes", THING, False)),
    )),
    Api("Task.steer", lambda c, kw: c.done.steer(**kw), (Param("message", NOT_TEXT),)),
    Api("Task.collect", lambda c, kw: c.done.collect(**kw), (Param("timeout", NOT_SECONDS),)),
    Api("Task.add_done_callback", lambda c, kw: c.done.add_done_callback(**kw),
        (Param("fn", NOT_A_FUNCTION),)),
    # Methods that take no parameters, listed so a parameter added later is noticed here.
    Api("Session.cancel_all", lambda c, kw: c.session.cancel_all(**kw)),
    Api("Session.detach", lambda c, kw: c.session.detach(**kw)),
    Api("Session.list_tasks", lambda c, kw: c.session.list_tasks(**kw)),
    Api("Session.tasks", lambda c, kw: c.session.tasks(**kw)),
    Api("Session.counts", lambda c, kw: c.session.counts(**kw)),
    Api("Task.check", lambda c, kw: c.done.check(**kw)),
    Api("Task.cancel", lambda c, kw: c.done.cancel(**kw)),
    Api("Task.done", lambda c, kw: c.done.done(**kw)),
)


def cases() -> list[tuple[Api, Param, object]]:
    """(callable, parameter, bad value) for every bad value of every parameter."""
    return [(api, p, bad) for api in API for p in api.params for bad in p.invalid]


def case_id(case: tuple[Api, Param, object]) -> str:
    api, param, bad = case
    shown = repr(bad) if len(repr(bad)) < 20 else repr(bad)[:17] + "..."
    return f"{api.label}({param.name}={shown})"
