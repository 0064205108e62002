"""MCP servers as toolsets, against real servers written with the SDK's own server API
(`tests/mcp_servers/tools_server.py`): one over stdio, one over streamable HTTP (uvicorn on a
free loopback port in a subprocess), driven through a Session on FakeLLM."""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import hermes_jupyter as hj
from hermes_jupyter.core.models import Event
from hermes_jupyter.notebook import kernel as current
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall
from hermes_jupyter.tools.mcp import mcp_tool_name, parse_servers, sanitize_schema

from .conftest import FAST_RETRY, SECRET
from .test_magics import cell

SERVER = Path(__file__).parent / "mcp_servers" / "tools_server.py"
ENV_SECRET = "env-SECRET-value-7f3a9c2e"
HEADER_SECRET = "hdr-SECRET-token-51b0d4e8"
COLLECT = 30.0  # an upper bound for a stuck test, not a timing goal


def stdio_server(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SERVER)],
            "env": {"API_TOKEN": ENV_SECRET, "PID_FILE": str(tmp_path / "server.pid"),
                    "HELPER_PID_FILE": str(tmp_path / "helper.pid"),
                    "MARKER_FILE": str(tmp_path / "marker")}, **extra}


def server_pids(tmp_path: Path) -> list[int]:
    """The stdio server's pid and its helper's (a process the server started)."""
    return [int((tmp_path / name).read_text()) for name in ("server.pid", "helper.pid")]


@pytest.fixture
def http_url() -> Iterator[str]:
    """The HTTP test server in its own process; ready once uvicorn says it listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SERVER), "http", str(port)],
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "API_TOKEN": ENV_SECRET})
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks until the line arrives (or the server dies)
        if "Uvicorn running on" in line:
            break
    else:
        pytest.fail(f"the HTTP MCP server did not start (exit code {proc.wait()})")
    yield f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    proc.wait()


def make_session(llm: FakeLLM, tmp_path: Path, servers: dict[str, Any]) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                      retry=FAST_RETRY, mcp_servers=servers)


def tool_results(llm: FakeLLM, request: int) -> list[str]:
    return [m["content"] for m in llm.requests[request].messages if m["role"] == "tool"]


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    """True once process `pid` has ended (a pidfd turns readable): no polling, no sleeps."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


# ---- a tool call end to end ----------------------------------------------------------------
def test_stdio_tool_result_reaches_the_next_model_request(llm, tmp_path):
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__add", {"a": 2, "b": 40})]), Reply("42"))
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        result = session.delegate("add", toolsets=["mcp:tools"]).collect(COLLECT)
    assert result.state == "succeeded", result.error
    assert tool_results(llm, 1) == ["42"]
    offered = {t["function"]["name"]: t["function"] for t in llm.requests[0].tools}
    assert set(offered) == {f"mcp_tools__{n}" for n in
                            ("add", "echo_env", "header_digest", "fail", "pid",
                                      "wait_forever", "crash")}
    add = offered["mcp_tools__add"]  # the server's own schema, passed as given
    assert add["description"] == "Add two integers."
    assert add["parameters"]["properties"]["a"]["type"] == "integer"
    assert add["parameters"]["required"] == ["a", "b"]


def test_http_server_and_the_subset_syntax(llm, tmp_path, http_url):
    llm.script(Reply(tool_calls=[ToolCall("mcp_web__add", {"a": 1, "b": 2})]),
               Reply(tool_calls=[ToolCall("mcp_web__header_digest", {"name": "X-Api-Key"})]),
               Reply("3"))
    servers = {"web": {"url": http_url, "headers": {"X-Api-Key": HEADER_SECRET}}}
    with make_session(llm, tmp_path, servers) as session:
        result = session.delegate("add", toolsets=["mcp:web/add+header_digest"]).collect(COLLECT)
    assert result.state == "succeeded", result.error
    sent = hashlib.sha256(HEADER_SECRET.encode()).hexdigest()
    assert tool_results(llm, 2) == ["3", sent]  # the configured header reached the server
    assert {t["function"]["name"] for t in llm.requests[0].tools} == {
        "mcp_web__add", "mcp_web__header_digest"}


def test_one_server_is_started_once_and_shared_by_tasks_started_together(llm, tmp_path):
    llm.responder = lambda r: Reply("done") if r.tool_results else Reply(
        tool_calls=[ToolCall("mcp_tools__pid")])
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        tasks = [session.delegate(f"task {i}", toolsets=["mcp:tools"]) for i in range(4)]
        assert [t.collect(COLLECT).state for t in tasks] == ["succeeded"] * 4
    pids = {m["content"] for r in llm.requests for m in r.messages if m["role"] == "tool"}
    assert len(pids) == 1 and pids == {(tmp_path / "server.pid").read_text()}


# ---- errors, cancel, crash, hang ---------------------------------------------------------
def test_a_tool_error_reaches_the_model_as_one_clear_line(llm, tmp_path):
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__fail", {"message": "disk is full"})]),
               Reply("noted"))
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        result = session.delegate("fail", toolsets=["mcp:tools"]).collect(COLLECT)
    assert result.state == "succeeded"
    [text] = tool_results(llm, 1)
    assert text.startswith("Error:") and "disk is full" in text and "\n" not in text
    assert result.tool_trace[0].ok is False


def test_an_unknown_tool_in_a_subset_fails_the_task_with_the_tools_it_has(llm, tmp_path):
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        result = session.delegate("x", toolsets=["mcp:tools/add+nope"]).collect(COLLECT)
    assert (result.state, result.exit_reason) == ("failed", "tool_error")
    assert "no tool 'nope'" in result.error and "add, echo_env" in result.error
    assert not llm.requests  # no model call was made


def test_a_server_that_cannot_start_fails_the_task_and_says_why(llm, tmp_path):
    servers = {"broken": {"command": sys.executable, "args": ["-c", "import sys; "
               "sys.stderr.write('missing config file\\n'); sys.exit(2)"]}}
    with make_session(llm, tmp_path, servers) as session:
        result = session.delegate("x", toolsets=["mcp:broken"]).collect(COLLECT)
    assert (result.state, result.exit_reason) == ("failed", "tool_error")
    assert "MCP server 'broken' did not start" in result.error
    assert "missing config file" in result.error


def test_cancel_abandons_a_slow_call_at_once_and_the_server_stays_usable(llm, tmp_path):
    fifo = tmp_path / "marker"
    os.mkfifo(fifo)
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__wait_forever", {"marker": "in"})]),
               Reply(tool_calls=[ToolCall("mcp_tools__add", {"a": 1, "b": 1})]), Reply("2"))
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        task = session.delegate("wait", toolsets=["mcp:tools"])
        with open(fifo) as marker:  # opens once the server is inside the tool
            assert marker.readline().strip() == "in"
            assert session.cancel(task)
            result = task.collect(COLLECT)
            assert result.state == "cancelled"
            ready, _, _ = select.select([marker], [], [], COLLECT)
            assert ready and marker.readline().strip() == "cancelled"  # the server was told
        after = session.delegate("add", toolsets=["mcp:tools"]).collect(COLLECT)
    assert after.state == "succeeded", after.error
    assert tool_results(llm, 2) == ["2"]


def test_a_crashed_server_gives_a_clear_error_and_restarts_on_next_use(llm, tmp_path):
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__pid")]),
               Reply(tool_calls=[ToolCall("mcp_tools__crash")]),
               Reply(tool_calls=[ToolCall("mcp_tools__pid")]), Reply("done"))
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        result = session.delegate("crash", toolsets=["mcp:tools"]).collect(COLLECT)
    assert result.state == "succeeded", result.error
    first, crashed, second = (tool_results(llm, i)[-1] for i in (1, 2, 3))
    assert crashed.startswith("Error: ") and "MCP server 'tools' failed during crash" in crashed
    assert "the server exited" in crashed and "starts again on the next call" in crashed
    assert first.isdigit() and second.isdigit() and first != second
    assert wait_gone(int(first))


def test_a_hung_call_times_out_and_the_server_is_restarted(llm, tmp_path):
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__pid")]),
               Reply(tool_calls=[ToolCall("mcp_tools__wait_forever", {"marker": "x"})]),
               Reply(tool_calls=[ToolCall("mcp_tools__pid")]), Reply("done"))
    servers = {"tools": stdio_server(tmp_path, timeout=0.5)}
    with make_session(llm, tmp_path, servers) as session:
        result = session.delegate("hang", toolsets=["mcp:tools"]).collect(COLLECT)
    first, hung, second = (tool_results(llm, i)[-1] for i in (1, 2, 3))
    assert "did not answer wait_forever within its 0.5 s timeout" in hung
    assert first != second and second.isdigit()
    assert result.state == "succeeded"
    assert wait_gone(int(first))


# ---- names and schemas -------------------------------------------------------------------
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def test_tool_names_are_valid_for_providers_and_never_clash():
    assert mcp_tool_name("github", "search_code") == "mcp_github__search_code"
    odd = [("my.server", "a.b"), ("my.server", "a_b"), ("my_server", "a_b"),
           ("s", "x" * 80), ("s", "x" * 81), ("ünï", "tool/one"), ("ünï", "tool one")]
    names = [mcp_tool_name(s, t) for s, t in odd]
    assert all(NAME.match(n) for n in names), names
    assert len(set(names)) == len(names)
    assert mcp_tool_name("s", "x" * 80) == mcp_tool_name("s", "x" * 80)  # stable


def test_schemas_are_passed_as_given_with_only_what_strict_providers_refuse_removed():
    given = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
             "properties": {"q": {"type": "string", "minLength": 1}}, "required": ["q"]}
    assert sanitize_schema(given) == {k: v for k, v in given.items() if k != "$schema"}
    assert sanitize_schema(None) == {"type": "object", "properties": {}}
    assert sanitize_schema({"type": "object"}) == {"type": "object", "properties": {}}


# ---- settings ----------------------------------------------------------------------------
@pytest.mark.parametrize(("servers", "message"), [
    ({"x": {"args": ["a"]}}, "MCP server 'x': 'command' must be a non-empty string"),
    ({"x": {"command": "srv", "args": "a b"}}, "MCP server 'x': 'args' must be a list"),
    ({"x": {"command": "srv", "env": {"K": 1}}}, "MCP server 'x': 'env' must be a dict"),
    ({"x": {"url": "ftp://h/mcp"}}, "MCP server 'x': 'url' must be an http"),
    ({"x": {"url": "http://h/mcp", "headers": []}}, "MCP server 'x': 'headers' must be"),
    ({"x": {"url": "http://h/mcp", "comand": "a"}}, "MCP server 'x': unknown field 'comand'"),
    ({"x": {"type": "sse", "url": "http://h/sse"}}, "MCP server 'x': type 'sse' is not"),
    ({"x": {"command": "srv", "timeout": 0}}, "MCP server 'x': 'timeout' must be a positive"),
    ({"a b": {"command": "srv"}}, "Bad MCP server name 'a b'"),
    (["x"], "mcp_servers must be a dict"),
])
def test_bad_server_settings_are_one_line_naming_server_and_field(llm, tmp_path, servers,
                                                                   message):
    with pytest.raises(hj.ConfigurationError, match=re.escape(message)) as err:
        make_session(llm, tmp_path, servers)
    assert "\n" not in str(err.value)


def test_config_file_shapes_are_accepted():
    specs = parse_servers({
        "fs": {"command": "npx", "args": ["-y", "server-filesystem", "."]},
        "gh": {"type": "stdio", "command": "gh-mcp", "env": {"GITHUB_TOKEN": "t0ken-x"}},
        "web": {"type": "streamable-http", "url": "https://h.test/mcp",
                "headers": {"Authorization": "Bearer abc123456"}},
        "web2": {"url": "http://127.0.0.1:9/mcp", "timeout": 5},
    })
    assert [s.transport for s in specs.values()] == ["stdio", "stdio", "http", "http"]
    assert specs["web2"].timeout == 5.0


def test_an_unknown_server_in_toolsets_is_refused_at_once(llm, tmp_path):
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        with pytest.raises(hj.ConfigurationError, match=r"Unknown MCP server 'nope'.*: tools"):
            session.delegate("x", toolsets=["mcp:nope"])
        with pytest.raises(hj.ConfigurationError, match="names no tools after '/'"):
            session.delegate("x", toolsets=["mcp:tools/"])
        assert not session.tasks()


# ---- no orphan processes ------------------------------------------------------------------
def test_close_stops_the_stdio_server(llm, tmp_path):
    with make_session(llm, tmp_path, {"tools": stdio_server(tmp_path)}) as session:
        [info] = session.mcp_status(connect=True)
        assert info.state == "running" and "add" in (info.tools or ())
        pids = server_pids(tmp_path)
        assert not any(wait_gone(pid, timeout=0) for pid in pids)
    assert all(wait_gone(pid) for pid in pids), "a process of the MCP server outlived close()"


def test_the_server_dies_with_a_kernel_killed_by_sigkill(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import hermes_jupyter as hj
        from hermes_jupyter.testing import FakeLLM
        llm = FakeLLM().start()
        session = hj.Session(model="m", base_url=llm.base_url, api_keys=["k-1234"],
                             mcp_servers={json.dumps({"tools": stdio_server(tmp_path)})})
        [info] = session.mcp_status(connect=True)
        print(info.state, flush=True)
        sys.stdin.read()  # until killed
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(hj.__file__).parent.parent)}
    kernel = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert kernel.stdout is not None
        assert kernel.stdout.readline().strip() == "running"
        pids = server_pids(tmp_path)
        assert not any(wait_gone(pid, timeout=0) for pid in pids)
        kernel.send_signal(signal.SIGKILL)
        kernel.wait()
        assert all(wait_gone(pid) for pid in pids), "the MCP server outlived its kernel"
    finally:
        kernel.kill()
        kernel.wait()


# ---- secrets --------------------------------------------------------------------------------
def test_env_and_header_secrets_appear_on_no_surface(llm, tmp_path, http_url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # the kernel's own key stays in the kernel
    events: list[Event] = []
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__echo_env", {"name": "API_TOKEN"})]),
               Reply(tool_calls=[ToolCall("mcp_web__echo_env", {"name": "API_TOKEN"})]),
               Reply(tool_calls=[ToolCall("mcp_tools__echo_env", {"name": "OPENAI_API_KEY"})]),
               Reply("done"))
    servers = {"tools": stdio_server(tmp_path),
               "web": {"url": http_url, "headers": {"Authorization": f"Bearer {HEADER_SECRET}",
                                                    "X-Api-Key": ENV_SECRET}}}
    with make_session(llm, tmp_path, servers) as session:
        session.subscribe(events.append)
        task = session.delegate("leak", toolsets=["mcp:tools", "mcp:web"])
        result = task.collect(COLLECT)
        status = session.mcp_status()
        surfaces = [repr(result), json.dumps(result.transcript), "\n".join(result.output),
                    repr(task.check()), repr(session.list_tasks()), repr(status),
                    repr(parse_servers(servers))]
    surfaces += [repr(e) for e in events]
    surfaces += [json.dumps(r.messages) for r in llm.requests]
    assert tool_results(llm, 1) == ["***"] and tool_results(llm, 2)[-1] == "***"
    assert tool_results(llm, 3)[-1] == "(no output)"  # not in the server's environment
    for text in surfaces:
        assert ENV_SECRET not in text and HEADER_SECRET not in text
    assert "env: API_TOKEN, HELPER_PID_FILE, MARKER_FILE, PID_FILE" in status[0].where
    assert "headers: Authorization, X-Api-Key" in status[1].where


# ---- the notebook face ------------------------------------------------------------------------
def test_hermes_config_lists_servers_and_tools_and_no_secret(
        live, capsys, tmp_path, http_url):
    live.user_ns["servers"] = {
        "tools": stdio_server(tmp_path),
        "web": {"url": http_url, "headers": {"Authorization": f"Bearer {HEADER_SECRET}"}}}
    cell(live, "%config HermesJupyter.mcp_servers = servers", capsys)
    before, _, _ = cell(live, "%hermes_config", capsys)
    assert re.search(r"^mcp_servers +tools, web  \[config\]$", repr(before), re.M)
    assert "mcp:tools  stdio: " in repr(before)
    assert "(env: API_TOKEN, HELPER_PID_FILE, MARKER_FILE, PID_FILE)" in repr(before)
    assert "not started · tools: listed once it starts" in repr(before)
    after, _, _ = cell(live, "%hermes_config --connect", capsys)
    text = repr(after)
    assert "· running · tools: add, echo_env, header_digest, fail, pid, wait_forever, crash" in text
    assert f"mcp:web  http: {http_url} (headers: Authorization) · running" in text
    _, shown, _ = cell(live, "%config HermesJupyter", capsys)
    assert "<MCP servers: tools, web>" in shown
    for surface in (text, after._repr_html_(), repr(before), shown):
        assert ENV_SECRET not in surface and HEADER_SECRET not in surface


def test_bad_mcp_settings_in_config_are_refused_in_one_line(live, capsys, caplog):
    live.run_cell("%config HermesJupyter.mcp_servers = {'x': {'url': 'nope'}}")
    assert "HermesJupyter.mcp_servers: MCP server 'x': 'url' must be an http" in caplog.text
    assert dict(current.get_config().mcp_servers) == {}  # nothing changed
    cell(live, "%config HermesJupyter.toolsets = ['files', 'mcp:x']", capsys)  # mcp: accepted


def test_which_settings_values_count_as_secrets():
    from hermes_jupyter.core.secrets import Secrets

    secrets = Secrets()
    for spec in parse_servers({
        "a": {"command": "srv", "env": {"GITHUB_TOKEN": "abcd12", "MODE": "production-eu",
                                        "ROOT": "/home/me/project", "LEVEL": "info"}},
        "b": {"url": "https://user:pa55word@h.test/mcp?api_key=k3y-value&page=2",
              "headers": {"Authorization": "Bearer tok-123456", "Accept": "application/json"}},
    }).values():
        spec.register_secrets(secrets)
    text = ("abcd12 production-eu /home/me/project info pa55word k3y-value tok-123456 "
            "application/json")
    assert secrets.redact(text) == "*** *** /home/me/project info *** *** *** application/json"


def test_delegate_magic_takes_an_mcp_subset(live, llm, capsys, tmp_path):
    live.user_ns["servers"] = {"tools": stdio_server(tmp_path)}
    cell(live, "%config HermesJupyter.mcp_servers = servers", capsys)
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__add", {"a": 2, "b": 40})]), Reply("42"))
    cell(live, "t = %delegate --toolsets files,mcp:tools/add+pid add two numbers", capsys)
    result, _, _ = cell(live, "t.collect(30)", capsys)
    assert result.state == "succeeded", result.error
    assert tool_results(llm, 1) == ["42"]
    assert {"mcp_tools__add", "mcp_tools__pid", "read_file"} <= set(llm.requests[0].tool_names)
    assert not any(n.startswith("mcp_tools__") and n not in ("mcp_tools__add", "mcp_tools__pid")
                   for n in llm.requests[0].tool_names)


def test_variables_are_filled_from_the_environment_and_kept_secret(llm, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_MODE", "blue7")
    server = stdio_server(tmp_path)
    server["env"] = {**server["env"], "MODE": "${MY_MODE}", "LEVEL": "${env:MY_LEVEL:-quiet}"}
    llm.script(Reply(tool_calls=[ToolCall("mcp_tools__echo_env", {"name": "MODE"}),
                                 ToolCall("mcp_tools__echo_env", {"name": "LEVEL"})]),
               Reply("done"))
    with make_session(llm, tmp_path, {"tools": server}) as session:
        assert session.delegate("env", toolsets=["mcp:tools"]).collect(COLLECT).ok
    assert tool_results(llm, 1) == ["***", "quiet"]  # filled in; from the environment: secret
    monkeypatch.delenv("MY_MODE")
    with pytest.raises(hj.ConfigurationError, match=re.escape(
            "MCP server 'tools': env 'MODE' uses ${MY_MODE}, which is not set")):
        make_session(llm, tmp_path, {"tools": server})
