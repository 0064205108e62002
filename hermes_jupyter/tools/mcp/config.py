"""MCP server settings in the shape of MCP config files, toolset names, and tool names.

    {"files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."],
               "env": {"TOKEN": "..."}},
     "search": {"url": "https://example.test/mcp", "headers": {"Authorization": "Bearer ..."}}}

`${NAME}` (also `${env:NAME}`, `${NAME:-default}`) in a command, an argument, an env or header
value or the URL is filled from the environment when the settings are given, so tokens need
not be written into a notebook; what came from the environment is treated as secret.

Nothing here imports the `mcp` SDK: settings are checked where they are given, the SDK loads
only when a server starts.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ...core.errors import ConfigurationError
from ...core.secrets import Secrets

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "ServerSpec",
    "ToolsetRef",
    "mcp_tool_name",
    "parse_servers",
    "parse_toolset",
]

DEFAULT_CALL_TIMEOUT = 120.0  # seconds one tool call may take before the server counts as hung
DEFAULT_START_TIMEOUT = 30.0  # seconds to start a server and list its tools
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-compatible providers accept
_STDIO_KEYS = {"type", "command", "args", "env", "cwd", "timeout"}
_HTTP_KEYS = {"type", "url", "headers", "timeout"}
_SECRET_KEY = re.compile(r"key|token|secret|passw|pwd|auth|cred|cookie|session|bearer",
                         re.IGNORECASE)
_PUBLIC_HEADERS = {"accept", "content-type", "user-agent", "accept-language"}
_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_LONG_ENOUGH = 8  # env values this long are masked whatever their name says (but paths)
_PATH_STARTS = ("/", "./", "../", "~")


@dataclass(frozen=True)
class ServerSpec:
    """One MCP server: `stdio` (a command the engine starts) or `http` (streamable HTTP).

    `env` and `headers` hold secrets: they are never shown (see `describe`) and their values
    are registered with the session's redaction.
    """

    name: str
    transport: str  # "stdio" | "http"
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_CALL_TIMEOUT
    from_environment: tuple[str, ...] = field(default=(), repr=False)  # `${NAME}` values

    def describe(self, secrets: Secrets) -> str:
        """Where the server is, for people: no env or header values, no URL credentials."""
        if self.transport == "stdio":
            shown = secrets.redact(" ".join([self.command, *self.args]))
            hidden = f" (env: {', '.join(sorted(self.env))})" if self.env else ""
            return f"stdio: {shown}{hidden}"
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        hidden = f" (headers: {', '.join(sorted(self.headers))})" if self.headers else ""
        return f"http: {parts.scheme}://{netloc}{parts.path}{hidden}"

    def register_secrets(self, secrets: Secrets) -> None:
        """Put every value that may be secret into `secrets`, so no surface ever shows it:
        every header but a few standard ones, env values whose name says secret, any other
        env value of 8+ characters that is not a path, and whatever `${NAME}` filled in."""
        for value in self.from_environment:
            secrets.add(value)
        for key, value in self.env.items():
            if _SECRET_KEY.search(key) or (len(value) >= _LONG_ENOUGH
                                           and not value.startswith(_PATH_STARTS)):
                secrets.add(value)
        for key, value in self.headers.items():
            if key.lower() in _PUBLIC_HEADERS:
                continue
            secrets.add(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():
                secrets.add(credential.strip())  # "Bearer abc": abc alone is the secret
        if self.url:
            secrets.add_url(self.url)
            for key, value in parse_qsl(urlsplit(self.url).query):
                if _SECRET_KEY.search(key):
                    secrets.add(value)


@dataclass(frozen=True)
class ToolsetRef:
    """`mcp:server` (every tool) or `mcp:server/tool1+tool2` (those tools only)."""

    server: str
    only: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"mcp:{self.server}" + (f"/{'+'.join(self.only)}" if self.only else "")


def parse_servers(value: Any) -> dict[str, ServerSpec]:
    """Check `{"name": {...}}` and return the specs; a `ConfigurationError` names the server
    and the field that is wrong."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"mcp_servers must be a dict of server name → settings, not {type(value).__name__}."
        )
    return {name: _parse_server(name, entry) for name, entry in value.items()}


def parse_toolset(text: str, servers: Mapping[str, ServerSpec]) -> ToolsetRef:
    """The server and tool subset a toolset name like `mcp:github/search+read` asks for."""
    body = text[len("mcp:"):] if text.startswith("mcp:") else text
    server, slash, subset = body.partition("/")
    if server not in servers:
        known = ", ".join(servers) or "none are configured (set mcp_servers)"
        raise ConfigurationError(
            f"Unknown MCP server {server!r} in toolset {text!r}: configured servers: {known}."
        )
    only = tuple(t.strip() for t in subset.split("+") if t.strip()) if subset else ()
    if slash and not only:
        raise ConfigurationError(
            f"Toolset {text!r} names no tools after '/': write mcp:{server}/tool1+tool2."
        )
    return ToolsetRef(server, only)


def mcp_tool_name(server: str, tool: str) -> str:
    """`mcp_<server>__<tool>`, unique per (server, tool) and within `^[a-zA-Z0-9_-]{1,64}$`.

    A name that had to be changed (other characters, or longer than 64) ends with a short
    hash of the original pair, so two tools never end up with the same name.
    """
    plain = f"mcp_{server}__{tool}"
    if _TOOL_NAME.match(plain):
        return plain
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", plain)
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{cleaned[:64 - 9]}_{digest}"


# ---- checking one server's settings ------------------------------------------------------
def _parse_server(name: Any, entry: Any) -> ServerSpec:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"Bad MCP server name {name!r}: use 1-64 letters, digits, '_', '-' or '.'."
        )
    where = f"MCP server {name!r}"
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: settings must be a dict with 'command' or 'url'.")
    kind = entry.get("type", "http" if "url" in entry else "stdio")
    if kind in ("streamable-http", "streamableHttp", "streamable_http"):
        kind = "http"
    if kind == "sse" or (kind not in ("stdio", "http")):
        raise ConfigurationError(
            f"{where}: type {kind!r} is not supported: use 'stdio' (command) or 'http' "
            "(streamable HTTP url)."
        )
    allowed = _STDIO_KEYS if kind == "stdio" else _HTTP_KEYS
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown field {unknown[0]!r} for a {kind} server: use "
            f"{', '.join(sorted(allowed))}."
        )
    timeout = _timeout(where, entry.get("timeout", DEFAULT_CALL_TIMEOUT))
    found: list[str] = []
    entry = _fill_variables(where, entry, found)
    if kind == "stdio":
        command = entry.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ConfigurationError(f"{where}: 'command' must be a non-empty string "
                                     "(the program that starts the server).")
        cwd = entry.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ConfigurationError(f"{where}: 'cwd' must be a string path.")
        return ServerSpec(name, "stdio", command=command,
                          args=_strings(where, "args", entry.get("args", [])),
                          env=_string_map(where, "env", entry.get("env", {})),
                          cwd=cwd, timeout=timeout, from_environment=tuple(found))
    url = entry.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") \
            or not urlsplit(url).hostname:
        raise ConfigurationError(f"{where}: 'url' must be an http:// or https:// URL.")
    return ServerSpec(name, "http", url=url,
                      headers=_string_map(where, "headers", entry.get("headers", {})),
                      timeout=timeout, from_environment=tuple(found))


def _fill_variables(where: str, entry: Mapping[str, Any], found: list[str]) -> dict[str, Any]:
    """`entry` with `${NAME}` in its strings filled from the environment; values that came
    from the environment are appended to `found`. Wrong types are left for the checks."""

    def fill(key: str, text: Any) -> Any:
        if not isinstance(text, str):
            return text

        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None:
                if default is None:
                    raise ConfigurationError(
                        f"{where}: {key} uses ${{{name}}}, which is not set in the "
                        "environment: set it, or write ${" + name + ":-default}.")
                return default
            found.append(value)
            return value

        return _VARIABLE.sub(one, text)

    out = dict(entry)
    for key in ("command", "cwd", "url"):
        if key in out:
            out[key] = fill(f"'{key}'", out[key])
    if isinstance(out.get("args"), (list, tuple)):
        out["args"] = [fill("'args'", a) for a in out["args"]]
    for key in ("env", "headers"):
        if isinstance(out.get(key), Mapping):
            out[key] = {k: fill(f"{key} {k!r}", v) for k, v in out[key].items()}
    return out


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where}: '{key}' must be a list of strings.")
    return tuple(value)


def _string_map(where: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigurationError(f"{where}: '{key}' must be a dict of strings to strings.")
    return dict(value)


def _timeout(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{where}: 'timeout' must be a positive number of seconds.")
    return float(value)
