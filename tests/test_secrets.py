"""Secrets: the registry and the stream redactor, the scrubbed tool environment, and the
limits of that scrub (what tool code running as the same user can still read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.secrets import Secrets, scrub_environ
from hermes_jupyter.testing import Reply, ToolCall

KEY = "sk-envt-Hq4Jw8Ns2Vc6Bx0Pz3Lk"
FRAGMENTS = (KEY, "Hq4Jw8Ns2", "Vc6Bx0Pz3Lk")
ROOT = Path(__file__).resolve().parents[1]


# ---- the registry and the stream redactor -------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 16, 29, 64])
def test_a_secret_split_across_streamed_pieces_never_shows(size):
    secrets = Secrets([KEY, "hunter2-pass word"])
    text = (f"start {KEY} mid hunter2-pass word, then sk-proj-A1b2C3d4E5f6G7h8 and "
            f"Bearer abcdefgh12345678 {KEY}{KEY} end")
    stream = secrets.stream()
    shown = [stream.feed(text[i:i + size]) for i in range(0, len(text), size)]
    shown.append(stream.flush())
    assert "".join(shown) == secrets.redact(text)
    assert "".join(shown) == "start *** mid ***, then *** and *** ****** end"


def test_plain_words_stream_through_at_once():
    stream = Secrets([KEY]).stream()
    assert stream.feed("no secret here, just words ") == "no secret here, just words "
    assert stream.feed("and a key-findings.md file") == "and a key-findings.md "
    assert stream.flush() == "file"


def test_credentials_in_a_url_and_registered_values_are_masked(llm, tmp_path):
    url = llm.base_url.replace("//", "//proxyuser:Pa55-ProxyWord@")
    with pytest.raises(hj.InvalidArgument) as refused:  # Session refuses such a base_url
        hj.Session(model="m", base_url=url, api_keys=["k-plain-1"], workspace=tmp_path)
    assert "Pa55-ProxyWord" not in str(refused.value) and "proxyuser" not in str(refused.value)
    secrets = Secrets.of_endpoint(["k-plain-1"], url, {})  # an endpoint's registry
    secrets.add("mcp-header-value-42")
    shown = secrets.redact(f"{url} k-plain-1 mcp-header-value-42")
    assert "Pa55-ProxyWord" not in shown and "proxyuser" not in shown
    assert "k-plain-1" not in shown and "mcp-header-value-42" not in shown


def test_a_registered_value_is_masked_in_every_tool_result(session, llm):
    session.secrets.add("mcp-header-value-42")

    def header() -> str:
        """What the server was sent."""
        return "Authorization: mcp-header-value-42"

    llm.on("header", Reply(tool_calls=[ToolCall("header")]), Reply("done"))
    result = session.delegate("header", tools=[header]).collect(10)
    sent = json.dumps(llm.requests[-1].messages)
    assert "Authorization: ***" in sent and "mcp-header-value-42" not in sent
    assert "mcp-header-value-42" not in repr(result.tool_trace) + repr(result.transcript)


# ---- the scrubbed environment ---------------------------------------------------------------
ENVIRON = {
    "OPENAI_API_KEY": KEY, "HERMES_API_KEYS": f"{KEY},other", "MY_API_KEY": "x1",
    "GITHUB_TOKEN": "x2", "AWS_SECRET": "x3", "DB_PASSWORD": "x4", "password": "x5",
    "SSH_KEYS": "x6", "HOME": "/root", "PATH": "/usr/bin", "INNOCENT": KEY,
    "KEYBOARD": "us", "TOKENIZERS_PARALLELISM": "false",
}


def test_scrub_drops_secret_names_and_registered_values_whatever_the_name():
    kept = scrub_environ(ENVIRON, Secrets([KEY]))
    assert kept == {"HOME": "/root", "PATH": "/usr/bin", "KEYBOARD": "us",
                    "TOKENIZERS_PARALLELISM": "false"}


def test_the_allowlist_passes_a_name_on_purpose_but_never_a_pool_key():
    kept = scrub_environ(ENVIRON, Secrets([KEY]), allow=["github_token", "OPENAI_API_KEY"])
    assert kept["GITHUB_TOKEN"] == "x2"
    assert "OPENAI_API_KEY" not in kept and "INNOCENT" not in kept


def env_of_tool(llm, session, tmp_path) -> dict[str, str]:
    """The environment a python tool saw, written by the tool to a file (never redacted)."""
    code = ("import json, os; json.dump(dict(os.environ), open('env.json', 'w')); "
            "print(dict(os.environ))")
    llm.on("env", Reply(tool_calls=[ToolCall("run_python", {"code": code})]), Reply("done"))
    task = session.delegate("env", toolsets=["python"])
    task.collect(20)
    tool_output = json.dumps(llm.requests[-1].messages) + repr(task.check())
    assert not any(f in tool_output for f in FRAGMENTS)
    return json.loads((tmp_path / "env.json").read_text())


def test_python_tool_code_sees_no_key(llm, tmp_path, monkeypatch):
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    session = hj.Session(model="m", base_url=llm.base_url, api_keys=["sk-pool-Only9Only9Only9"],
                         workspace=tmp_path, tool_env_allowlist=["GITHUB_TOKEN"])
    seen = env_of_tool(llm, session, tmp_path)
    session.close()
    assert seen["GITHUB_TOKEN"] == "x2" and seen["HOME"] == "/root"
    for name in ("OPENAI_API_KEY", "HERMES_API_KEYS", "MY_API_KEY", "AWS_SECRET", "DB_PASSWORD",
                 "password", "SSH_KEYS", "INNOCENT"):
        assert name not in seen
    assert not any(f in json.dumps(seen) for f in (*FRAGMENTS, "Only9Only9"))


def test_a_pool_key_under_an_innocent_name_is_not_passed(llm, tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_SETTING", "sk-pool-Only9Only9Only9")
    session = hj.Session(model="m", base_url=llm.base_url, api_keys=["sk-pool-Only9Only9Only9"],
                         workspace=tmp_path, tool_env_allowlist=["SOME_SETTING"])
    assert "SOME_SETTING" not in env_of_tool(llm, session, tmp_path)
    session.close()


@pytest.mark.parametrize(("name", "value"), [
    ("tool_env_allowlist", "GITHUB_TOKEN"), ("tool_env_allowlist", [1]),
    ("tool_memory_limit_mb", 0), ("tool_memory_limit_mb", -5), ("tool_memory_limit_mb", "1G"),
    ("tool_memory_limit_mb", float("nan")), ("tool_memory_limit_mb", True),
])
def test_bad_tool_settings_are_refused_with_one_line(llm, tmp_path, name, value):
    with pytest.raises(hj.HermesError, match=name):
        hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                   **{name: value})


# ---- the limits of the scrub, documented in docs/architecture.md (Secrets) -------------------
KERNEL = """
import json, os, sys
import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall
code = (f"environ = open('/proc/{os.getpid()}/environ', 'rb').read().decode(); "
        "dotenv = open('.env').read(); "
        "open('found.txt', 'w').write(environ + dotenv); print(environ, dotenv)")
with FakeLLM() as llm:
    llm.on("peek", Reply(tool_calls=[ToolCall("run_python", {"code": code})]), Reply("done"))
    with hj.Session(model="m", base_url=llm.base_url, workspace=sys.argv[1]) as session:
        task = session.delegate("peek", toolsets=["python"])
        result = task.collect(20)
    print(json.dumps(llm.requests[-1].messages) + repr(result) + repr(result.transcript))
"""


def test_tool_code_as_the_same_user_can_still_read_the_kernels_environ_and_a_dotenv(tmp_path):
    """The scrub stops accidental leaks, not a hostile tool: /proc/<kernel pid>/environ and a
    .env in the workspace stay readable by the same user. What the tool *reports* is still
    masked; what it could do with the key (send it elsewhere) is not stopped: isolate such
    tools (docs/architecture.md, Secrets). The kernel is a real process started with the key."""
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    shown = subprocess.run([sys.executable, "-c", KERNEL, str(tmp_path)], env=env, text=True,
                           capture_output=True, timeout=60, check=True).stdout
    found = (tmp_path / "found.txt").read_text()
    assert f"OPENAI_API_KEY={KEY}\x00" in found  # the kernel's environ, read by tool code
    assert f"OPENAI_API_KEY={KEY}\n" in found  # the .env file
    assert "done" in shown and "OPENAI_API_KEY=***" in shown
    assert not any(f in shown for f in FRAGMENTS)


def test_the_tool_settings_reach_the_kernels_session_and_show_when_set(monkeypatch, tmp_path):
    from hermes_jupyter.notebook.settings import HermesJupyter, resolve

    config = HermesJupyter(tool_env_allowlist=["GITHUB_TOKEN"], tool_memory_limit_mb=512,
                           base_url="http://localhost:1/v1")
    settings = resolve(config, environ={})
    kwargs = settings.session_kwargs()
    assert kwargs["tool_env_allowlist"] == ("GITHUB_TOKEN",)
    assert kwargs["tool_memory_limit_mb"] == 512
    rows = {name: (value, source) for name, value, source in settings.rows()}
    assert rows["tool_env_allowlist"] == ("GITHUB_TOKEN", "config")
    assert rows["tool_memory_limit_mb"] == ("512 MB", "config")
    assert "tool_memory_limit_mb" not in {r[0] for r in resolve(HermesJupyter(), {}).rows()}
    with pytest.raises(Exception, match="tool_memory_limit_mb"):
        HermesJupyter(tool_memory_limit_mb=0)
    monkeypatch.chdir(tmp_path)
    session = hj.Session(**{**kwargs, "workspace": str(tmp_path)})
    session.close()


def test_a_parent_agents_tool_results_are_redacted_and_its_tools_get_no_key(
    session, llm, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    session.secrets.add("mcp-header-value-42")

    def header() -> str:
        """What the server was sent."""
        return "Authorization: mcp-header-value-42"

    code = "import os, json; print(json.dumps(sorted(os.environ)))"
    llm.on("plan", Reply(tool_calls=[ToolCall("header"),
                                     ToolCall("run_python", {"code": code})]), Reply("done"))
    agent = hj.Agent(session, tools=[header], toolsets=["python"])
    reply = agent.ask("plan it")
    sent = json.dumps(llm.requests[-1].messages)
    assert "Authorization: ***" in sent and "mcp-header-value-42" not in sent
    assert "OPENAI_API_KEY" not in sent and "HOME" in sent
    assert "mcp-header-value-42" not in repr(reply) + json.dumps(agent.history, default=str)
