"""`HermesJupyter`: every notebook setting as a trait, and how settings resolve.

Precedence, highest first: `%config HermesJupyter.x = ...` or `c.HermesJupyter.x` in
ipython_config.py, then the environment (OPENAI_API_KEY, OPENAI_BASE_URL, HERMES_MODEL,
HERMES_SUBAGENT_MODEL, HERMES_API_KEYS), then the defaults below. With no key and no endpoint
anywhere, tasks run on the offline demo model (`hermes_jupyter.demo`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from ..core.errors import ConfigurationError
from ..engine.arguments import check_base_url
from ..tools import TOOLSETS
from ..tools.approval import APPROVAL_MODES, check_pattern
from ..tools.mcp import parse_servers
from .masking import KeyList, MaskedKeys, MaskedServers

__all__ = ["DEFAULT_MODEL", "DEMO_MODEL", "HermesJupyter", "Settings", "resolve"]

DEFAULT_MODEL = "gpt-4o-mini"
DEMO_MODEL = "demo"
ENDPOINT_SETTINGS = ("base_url", "api_keys")
APPROVAL_SETTINGS = ("approval", "approval_allowlist", "approval_timeout", "approve_file_writes")


class HermesJupyter(Configurable):
    """Settings of hermes_jupyter in this kernel; changes apply to tasks started afterwards."""

    model = Unicode(
        None, allow_none=True,
        help=f"""Model of the parent session and, unless subagent_model is set, of every task.
        Unset: HERMES_MODEL, else {DEFAULT_MODEL!r}. "demo" forces the offline demo model.""",
    ).tag(config=True)
    subagent_model = Unicode(
        None, allow_none=True,
        help="Model for delegated tasks (cheaper is common). Unset: HERMES_SUBAGENT_MODEL, "
             "else the same as model. %delegate -m overrides it per task.",
    ).tag(config=True)
    base_url = Unicode(
        None, allow_none=True,
        help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 for Ollama. "
             "Unset: OPENAI_BASE_URL, else api.openai.com.",
    ).tag(config=True)
    api_keys = KeyList(
        Unicode(), default_value=None, allow_none=True,
        help="API keys shared by all tasks, rotated on rate limits. Unset: HERMES_API_KEYS "
             "(comma-separated), else OPENAI_API_KEY. Shown only as how many are set.",
    ).tag(config=True)
    max_concurrent = Int(
        8, help="Tasks running at once; later ones wait in a queue, first in first out."
    ).tag(config=True)
    max_iterations = Int(
        30, help="Model calls one task may make before it stops (%delegate --max-iterations)."
    ).tag(config=True)
    task_timeout = Float(
        None, allow_none=True,
        help="Seconds one task may run before it is stopped; unset: no limit "
             "(%delegate --timeout).",
    ).tag(config=True)
    tool_timeout = Float(
        None, allow_none=True,
        help="Seconds one tool call may take (user functions included) before the task stops "
             "waiting for it and tells the model; unset: no limit.",
    ).tag(config=True)
    stall_timeout = Float(
        120.0, allow_none=True,
        help="Seconds a model's stream may send nothing (keep-alive comments count) before "
             "it is abandoned and retried; None: wait for the 600 s request timeout.",
    ).tag(config=True)
    cooldown_cap = Float(
        300.0, help="Seconds one model call may wait on rate limits (Retry-After) in all; a "
                    "longer wait fails the task with exit reason rate_limit_cap.",
    ).tag(config=True)
    workspace = Unicode(
        "", help="Folder the files and python toolsets work in; empty: the kernel's working "
                 "directory when the session starts.",
    ).tag(config=True)
    toolsets = List(
        Unicode(), default_value=[],
        help=f"Toolsets every task gets unless --toolsets says otherwise: "
             f"{', '.join(TOOLSETS)}, or mcp:NAME for a server of mcp_servers.",
    ).tag(config=True)
    mcp_servers = Dict(
        default_value={},
        help="""MCP servers whose tools tasks can use with --toolsets mcp:NAME (or
        mcp:NAME/tool1+tool2), in the shape of MCP config files: {"name": {"command": ...,
        "args": [...], "env": {...}}} for stdio servers, {"name": {"url": ..., "headers":
        {...}}} for streamable HTTP; optional "timeout" (seconds per call). Env and header
        values are never shown. A change applies to the next session.""",
    ).tag(config=True)
    journal = Bool(
        False, help="Keep tasks in .hermes/tasks.sqlite under the workspace, so results "
                    "outlive the kernel (Session.history()).",
    ).tag(config=True)
    tool_env_allowlist = List(
        Unicode(), default_value=[],
        help="Environment variables tool processes get on purpose although their names look "
             "like credentials (ending in _KEY, _TOKEN, _PASSWORD, ...); API keys never pass.",
    ).tag(config=True)
    tool_memory_limit_mb = Int(
        None, allow_none=True,
        help="Address-space cap of each tool process in MB (RLIMIT_AS); unset: no cap.",

    ).tag(config=True)
    keep_finished = Int(
        None, allow_none=True,
        help="Ended tasks the session keeps in memory, newest first; older ones are let go "
             "(as Session.forget does; the journal keeps them all). Unset: keep every task.",
    ).tag(config=True)
    approval = Enum(
        list(APPROVAL_MODES), "ask",
        help="What a tool call that needs approval (shell commands, functions marked "
             "@hj.tool(requires_approval=True)) does: 'ask' waits for %approve_task / "
             "%deny_task, 'auto' runs it, 'deny' refuses it at once (unattended runs).",
    ).tag(config=True)
    approval_allowlist = List(
        Unicode(), default_value=[],
        help="Patterns of calls that run without asking: shell commands such as 'git status' "
             "or 'ls *' (a chained command never matches), or tool names.",
    ).tag(config=True)
    approval_timeout = Float(
        None, allow_none=True,
        help="Seconds a call waits for a decision before it is denied; unset: no limit.",
    ).tag(config=True)
    approve_file_writes = Bool(
        False, help="Put the files toolset's write_file under approval too.",
    ).tag(config=True)
    context_limit = Int(
        20_000, help="Characters of a -c VAR text handed to a task; longer texts are cut with "
                     "a visible notice.",
    ).tag(config=True)
    demo_pace = Float(
        1.0, help="Speed of the offline demo model: 1 streams visibly (about 1-3 s a task), "
                  "0 answers at once.",
    ).tag(config=True)
    cluster = Unicode(None, allow_none=True, help="A Dask scheduler address (tcp://host:8786) "
                      "whose workers run the tasks; unset: in the kernel.").tag(config=True)
    detach_timeout = Float(
        3600.0, allow_none=True,
        help="With cluster and journal set, tasks outlive the kernel: seconds a task may run "
             "with no kernel attached before it is cancelled; None: never.",
    ).tag(config=True)
    wait_notice_after = Float(
        5.0, help="Seconds %collect_task waits quietly before it says it is waiting and how "
                  "to stop waiting.",
    ).tag(config=True)

    @validate("max_concurrent", "max_iterations", "context_limit")
    def _positive_int(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value <= 0:
            raise TraitError(f"HermesJupyter.{proposal['trait'].name} must be positive, "
                             f"got {value}.")
        return value

    @validate("tool_memory_limit_mb")
    def _positive_memory(self, proposal: Any) -> int | None:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"HermesJupyter.tool_memory_limit_mb must be positive or None, "
                             f"got {value}.")
        return None if value is None else int(value)

    @validate("approval_allowlist")
    def _patterns(self, proposal: Any) -> list[str]:
        try:
            return [check_pattern(p) for p in proposal["value"]]
        except ConfigurationError as err:
            raise TraitError(str(err)) from None

    @validate("approval_timeout")
    def _positive_approval_timeout(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"HermesJupyter.approval_timeout must be positive or None, "
                             f"got {value}.")
        return None if value is None else float(value)

    @validate("task_timeout", "stall_timeout", "tool_timeout", "detach_timeout")
    def _positive_timeout(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is None:
            return None
        if value <= 0:
            raise TraitError(f"HermesJupyter.{proposal['trait'].name} must be positive or None, "
                             f"got {value}.")
        return float(value)

    @validate("keep_finished")
    def _count_or_none(self, proposal: Any) -> int | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"HermesJupyter.keep_finished must be >= 0 or None, got {value}.")
        return value  # type: ignore[no-any-return]

    @validate("cooldown_cap")
    def _positive_cap(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise TraitError(f"HermesJupyter.cooldown_cap must be positive, got {value}.")
        return value

    @validate("wait_notice_after", "demo_pace")
    def _not_negative(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if value < 0:
            raise TraitError(f"HermesJupyter.{proposal['trait'].name} must be >= 0, "
                             f"got {value}.")
        return value

    @validate("mcp_servers")
    def _check_servers(self, proposal: Any) -> MaskedServers:
        try:
            parse_servers(proposal["value"])
        except ConfigurationError as err:
            raise TraitError(f"HermesJupyter.mcp_servers: {err}") from None
        return MaskedServers(proposal["value"])

    @validate("toolsets")
    def _known_toolsets(self, proposal: Any) -> list[str]:
        unknown = [t for t in proposal["value"] if t not in TOOLSETS and not t.startswith("mcp:")]
        if unknown:
            raise TraitError(f"Unknown toolset {unknown[0]!r}: choose from "
                             f"{', '.join(TOOLSETS)}.")
        return list(proposal["value"])

    @validate("base_url")
    def _endpoint_url(self, proposal: Any) -> str | None:
        value = proposal["value"]
        if value is None or not value.strip():
            return value  # type: ignore[no-any-return]
        try:
            return check_base_url(value, "HermesJupyter.base_url")
        except ConfigurationError as err:  # one line; the URL may hold a password: not shown
            raise TraitError(str(err)) from None

    @validate("api_keys")
    def _mask_keys(self, proposal: Any) -> MaskedKeys | None:
        value = proposal["value"]
        return None if value is None else MaskedKeys(k.strip() for k in value if k.strip())


@dataclass(frozen=True)
class Settings:
    """The effective settings at one moment, with where each came from."""

    model: str
    subagent_model: str | None
    base_url: str | None
    api_keys: tuple[str, ...] = field(repr=False)
    max_concurrent: int
    max_iterations: int
    task_timeout: float | None
    tool_timeout: float | None
    stall_timeout: float | None
    cooldown_cap: float
    workspace: str
    toolsets: tuple[str, ...]
    mcp_servers: Mapping[str, Any] = field(repr=False)
    journal: bool
    keep_finished: int | None
    context_limit: int
    wait_notice_after: float
    demo_pace: float
    sources: Mapping[str, str]
    demo_reason: str | None = None  # why the demo runs; None when a real endpoint is used
    tool_env_allowlist: tuple[str, ...] = ()
    tool_memory_limit_mb: int | None = None
    approval: str = "ask"
    approval_allowlist: tuple[str, ...] = ()
    approval_timeout: float | None = None
    approve_file_writes: bool = False
    cluster: str | None = None  # a Dask scheduler address; None runs tasks in the kernel
    detach_timeout: float | None = 3600.0  # seconds an unattended cluster task may run

    @property
    def demo(self) -> bool:
        return self.demo_reason is not None

    @property
    def endpoint(self) -> tuple[object, ...]:
        """What a running session cannot change: a change here needs a new session."""
        return (self.demo, self.base_url, self.api_keys, self.tool_env_allowlist,
                self.tool_memory_limit_mb, self.mcp_servers, self.cluster,
                self.detach_timeout)

    @property
    def fixed(self) -> tuple[object, ...]:
        """Everything a running session cannot change (the endpoint, and whether it keeps a
        journal): a change here needs a new session."""
        return (*self.endpoint, self.journal)

    def session_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Session` (or, without model and keys, `demo_session`)."""
        common: dict[str, Any] = {
            "max_concurrent": self.max_concurrent,
            "max_iterations": self.max_iterations,
            "approval": self.approval,
            "approval_allowlist": self.approval_allowlist,
            "approval_timeout": self.approval_timeout,
            "approve_file_writes": self.approve_file_writes,
            "task_timeout": self.task_timeout,
            "tool_timeout": self.tool_timeout,
            "workspace": self.workspace or None,
            "toolsets": self.toolsets,
            "journal": self.journal,
            "tool_env_allowlist": self.tool_env_allowlist,
            "tool_memory_limit_mb": self.tool_memory_limit_mb,
            "keep_finished": self.keep_finished,
            "mcp_servers": dict(self.mcp_servers),
        }
        if self.demo:
            return {"pace": self.demo_pace, **common}
        return {"model": self.model, "subagent_model": self.subagent_model,
                "base_url": self.base_url, "api_keys": list(self.api_keys),
                "stall_timeout": self.stall_timeout, "cooldown_cap": self.cooldown_cap,
                "cluster": self.cluster, "detach_timeout": self.detach_timeout, **common}

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, shown value, source) for display; keys appear only as a count."""
        keys = f"{len(self.api_keys)} set" if self.api_keys else "none"
        endpoint = "offline demo model (loopback)" if self.demo else (
            safe_url(self.base_url) or "https://api.openai.com/v1 (openai default)")
        shown = [
            ("model", self.model), ("subagent_model", self.subagent_model or "(same as model)"),
            ("approval", self.approval),
            ("approval_allowlist", ", ".join(self.approval_allowlist) or "none"),
            ("approval_timeout", "none" if self.approval_timeout is None
             else f"{self.approval_timeout:g}s"),
            ("approve_file_writes", "yes" if self.approve_file_writes else "no"),
            ("base_url", endpoint), ("api_keys", keys),
            ("max_concurrent", str(self.max_concurrent)),
            ("max_iterations", str(self.max_iterations)),
            ("task_timeout", "none" if self.task_timeout is None else f"{self.task_timeout:g}s"),
            ("workspace", self.workspace or "(kernel working directory)"),
            ("toolsets", ", ".join(self.toolsets) or "none"),
            ("journal", ".hermes/tasks.sqlite" if self.journal else "off"),
            ("context_limit", f"{self.context_limit} characters"),
            ("wait_notice_after", f"{self.wait_notice_after:g}s"),
            *([("cluster", self.cluster), ("detach_timeout", "never" if self.detach_timeout
               is None else f"{self.detach_timeout:g}s")] if self.cluster else []),
            *([("tool_timeout", f"{self.tool_timeout:g}s")] if self.tool_timeout else []),
        ]
        if self.mcp_servers:  # names only: their env and headers hold secrets
            shown.insert(9, ("mcp_servers", ", ".join(self.mcp_servers)))
        if self.keep_finished is not None:  # shown when set (the notebooks' tables stay)
            shown.append(("keep_finished", f"{self.keep_finished} ended tasks in memory"))
        if self.demo:
            shown.append(("demo_pace", f"{self.demo_pace:g}"))
        if self.tool_env_allowlist:  # shown when set, like demo_pace
            shown.append(("tool_env_allowlist", ", ".join(self.tool_env_allowlist)))
        if self.tool_memory_limit_mb is not None:
            shown.append(("tool_memory_limit_mb", f"{self.tool_memory_limit_mb} MB"))
        return [(name, value, self.sources.get(name, "default")) for name, value in shown]


def resolve(config: HermesJupyter, environ: Mapping[str, str] | None = None) -> Settings:
    """Apply the precedence rules: configuration, then environment, then defaults."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}

    def pick(name: str, *env_names: str) -> Any:
        value = getattr(config, name)
        if value is not None:
            sources[name] = "config"
            return value
        for env_name in env_names:
            if env.get(env_name, "").strip():
                sources[name] = f"env {env_name}"
                return env[env_name].strip()
        return None

    model = pick("model", "HERMES_MODEL")
    subagent = pick("subagent_model", "HERMES_SUBAGENT_MODEL")
    base_url = pick("base_url", "OPENAI_BASE_URL")
    raw_keys = pick("api_keys", "HERMES_API_KEYS", "OPENAI_API_KEY")
    if isinstance(raw_keys, str):
        raw_keys = raw_keys.split(",")
    keys = tuple(dict.fromkeys(k.strip() for k in raw_keys or () if k.strip()))
    for name in ("max_concurrent", "max_iterations", "task_timeout", "tool_timeout",
                 "stall_timeout", "cooldown_cap", "workspace", "toolsets", "mcp_servers", "journal",
                 "keep_finished", "context_limit", "wait_notice_after", "demo_pace",
                 "tool_env_allowlist", "tool_memory_limit_mb", *APPROVAL_SETTINGS, "cluster",
                 "detach_timeout"):
        if getattr(config, name) != config.trait_defaults(name):
            sources[name] = "config"
    demo_reason = _demo_reason(model, base_url, keys)
    if demo_reason:
        sources["model"] = "demo: " + demo_reason
        if config.cluster:  # the demo's model server lives in this kernel: tasks run here
            sources["cluster"] = "ignored on the demo model"
    return Settings(
        model=DEMO_MODEL if demo_reason else (model or DEFAULT_MODEL),
        subagent_model=None if demo_reason else (subagent or None),
        base_url=None if demo_reason else (base_url or None),
        api_keys=() if demo_reason else keys,
        max_concurrent=config.max_concurrent,
        max_iterations=config.max_iterations,
        task_timeout=config.task_timeout,
        tool_timeout=config.tool_timeout,
        stall_timeout=config.stall_timeout,
        cooldown_cap=config.cooldown_cap,
        workspace=config.workspace,
        toolsets=tuple(config.toolsets),
        mcp_servers=MaskedServers(config.mcp_servers),
        journal=config.journal,
        keep_finished=config.keep_finished,
        context_limit=config.context_limit,
        wait_notice_after=config.wait_notice_after,
        demo_pace=config.demo_pace,
        sources=sources,
        demo_reason=demo_reason,
        tool_env_allowlist=tuple(config.tool_env_allowlist),
        tool_memory_limit_mb=config.tool_memory_limit_mb,
        approval=config.approval,
        approval_allowlist=tuple(config.approval_allowlist),
        approval_timeout=config.approval_timeout,
        approve_file_writes=config.approve_file_writes,
        cluster=None if demo_reason else (config.cluster or None),
        detach_timeout=config.detach_timeout,
    )


def safe_url(url: str | None) -> str | None:
    """The URL without any user:password part, for display."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _demo_reason(model: str | None, base_url: str | None, keys: tuple[str, ...]) -> str | None:
    if model == DEMO_MODEL:
        return "model is set to 'demo'"
    if not base_url and not keys:
        return "no API key or endpoint configured"
    return None
