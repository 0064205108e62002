"""The magics in a real ipykernel, driven through jupyter_client, against the loopback FakeLLM."""

from __future__ import annotations

import json
import os
import queue
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel

from hermes_jupyter.testing import Fail, FakeLLM, Reply, ToolCall

from .conftest import SECRET

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HERMES_MODEL", "HERMES_SUBAGENT_MODEL",
       "HERMES_API_KEYS")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60,
                              cwd=str(tmp_path_factory.mktemp("kernel")), env=env)
    try:
        reply, outputs = execute(kc, "%load_ext hermes_jupyter\n"
                                     f"%config HermesJupyter.base_url = '{server.base_url}'\n"
                                     f"%config HermesJupyter.api_keys = ['{SECRET}']\n"
                                     "%config HermesJupyter.wait_notice_after = 0")
        assert reply["content"]["status"] == "ok", outputs
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture
def kc(kernel, server) -> Iterator[BlockingKernelClient]:
    server.reset()
    server.default = Reply(text="ok")
    yield kernel[1]
    execute(kernel[1], "%cancel_task --all")


def execute(kc: BlockingKernelClient, code: str, timeout: float = 30) -> tuple[dict[str, Any],
                                                                            list[dict[str, Any]]]:
    """Run a cell; (execute_reply, its iopub output messages)."""
    outputs: list[dict[str, Any]] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("stream", "execute_result", "display_data", "error"):
            outputs.append(msg)

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=keep)
    return reply, outputs


def text(outputs: list[dict[str, Any]], name: str | None = None) -> str:
    """stdout/stderr text (or, with name None, every text of every output) of a cell."""
    parts = []
    for msg in outputs:
        content = msg["content"]
        if msg["msg_type"] == "stream" and name in (None, content["name"]):
            parts.append(content["text"])
        elif name is None and "data" in content:
            parts.append(content["data"].get("text/plain", ""))
    return "".join(parts)


def next_output(kc: BlockingKernelClient, parent: str, timeout: float = 15) -> dict[str, Any]:
    """The next iopub message of the cell `parent` (waits; raises on timeout)."""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the kernel sent nothing for the cell") from None
        if msg["parent_header"].get("msg_id") == parent:
            return msg


def test_delegate_returns_while_the_task_streams_and_other_cells_run(kc, server):
    server.default = Reply(text="." * 2000, chunk_size=1, delay=0.02)  # ~40 s unless cancelled
    reply, outputs = execute(kc, "t = %delegate stream for a long while")
    assert reply["content"]["status"] == "ok" and outputs == []
    server.wait_for_chunks(5)  # the task streams after its cell has ended
    reply, outputs = execute(kc, "x = 6 * 7\nprint(x, t.state, t.done())")
    assert text(outputs, "stdout") == "42 running False\n"
    reply, outputs = execute(kc, "%check_task t")
    assert "t1: running · gpt-4o-mini · " in text(outputs)
    assert server.active_streams == 1


def test_interrupting_collect_stops_the_wait_not_the_task(kc, kernel, server):
    server.on("hold", Reply(tool_calls=[ToolCall("hold")]), Reply(text="released"))
    execute(kc, "import threading\ngate = threading.Event()\n"
                "def hold() -> str:\n    'Wait for the gate.'\n    gate.wait(30)\n"
                "    return 'open'\n"
                "t = %delegate -n held -t hold hold on")
    msg_id = kc.execute("%collect_task held")
    while True:  # wait until the magic says it is waiting: the interrupt lands in the wait
        msg = next_output(kc, msg_id)
        if msg["msg_type"] == "stream" and "Waiting for" in msg["content"]["text"]:
            break
    kernel[0].interrupt_kernel()  # what JupyterLab's stop button does: SIGINT via the manager
    reply = kc.get_shell_msg(timeout=15)
    assert reply["parent_header"]["msg_id"] == msg_id
    # The cell fails (Run All stops there) in one line, without a KeyboardInterrupt traceback.
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "UsageError"
    stderr = ""
    while True:
        msg = next_output(kc, msg_id)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        assert msg["msg_type"] != "error"  # IPython shows a UsageError as one stderr line
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stderr":
            stderr += msg["content"]["text"]
    assert stderr.startswith("UsageError: %collect_task: stopped waiting for t2 'held'; it is "
                             "still running") and stderr.count("\n") == 1
    _, outputs = execute(kc, "print(t.state)\ngate.set()\nr = %collect_task held\n"
                             "print(r.summary)")
    lines = text(outputs, "stdout").splitlines()
    assert lines[0] == "running" and lines[-1] == "released"  # the task went on, then ended


def test_a_background_task_never_prints_into_the_running_cell(kc, server):
    server.default = Reply(text="line one\nline two\n", chunk_size=2, delay=0.005)
    reply, outputs = execute(kc, "t = %delegate chatter\n_ = t.collect(20)")
    assert reply["content"]["status"] == "ok" and outputs == []
    _, outputs = execute(kc, "print(t.result.summary)")
    assert text(outputs) == "line one\nline two\n\n"


def test_bad_input_is_one_line_without_traceback_and_fails_the_cell(kc):
    for code, line in [("%check_task nope", "UsageError: %check_task: No task 'nope'."),
                       ("%delegate", "UsageError: %delegate: missing GOAL"),
                       ("%delegate --bogus go",
                        "UsageError: %delegate: unrecognized arguments: --bogus")]:
        reply, outputs = execute(kc, code)
        assert reply["content"]["status"] == "error"  # Run All stops here
        assert reply["content"]["ename"] == "UsageError"
        assert [m["msg_type"] for m in outputs] == ["stream"]  # no `error` output: no traceback
        err = text(outputs, "stderr")
        assert err.startswith(line) and err.count("\n") == 1


def test_the_key_never_appears_in_kernel_output(kc, server):
    server.on("fail", Fail(401, message=f"invalid key {SECRET}"))
    shown = []
    for code in ["t = %delegate fail now", "r = %collect_task t\nr", "%check_task", "%list_tasks",
                 "%hermes_config", "%config HermesJupyter", "%config HermesJupyter.api_keys",
                 "import hermes_jupyter as hj\nhj.get_session()", "t"]:
        _, outputs = execute(kc, code)
        shown.append(json.dumps([m["content"] for m in outputs]))
    assert "Every API key was rejected" in "".join(shown) or "401" in "".join(shown)
    assert not [s for s in shown if "SECRET" in s]


def test_loaded_from_ipython_config_with_file_settings_over_environment(server, tmp_path):
    ipython_dir = tmp_path / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["hermes_jupyter"]\n'
        'c.HermesJupyter.subagent_model = "file-sub"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update(PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
               IPYTHONDIR=str(ipython_dir), HERMES_MODEL="env-model",
               HERMES_SUBAGENT_MODEL="env-sub")
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60, cwd=str(tmp_path),
                              env=env)
    try:
        server.reset()
        _, outputs = execute(kc, "%list_tasks")  # no %load_ext: the profile loaded it
        lines = text(outputs, "stdout").splitlines()
        assert lines[0].startswith("hermes_jupyter: no API key or endpoint configured")
        _, outputs = execute(kc, f"%config HermesJupyter.base_url = '{server.base_url}'\n"
                                 f"%config HermesJupyter.api_keys = ['{SECRET}']\n"
                                 "t = %delegate which model\nr = %collect_task t\n"
                                 "print(r.model)\n%hermes_config")
        assert text(outputs, "stdout") == "file-sub\n"  # the file beats the environment
        shown = text(outputs)
        assert re.search(r"^model +env-model  \[env HERMES_MODEL\]$", shown, re.M)
        assert re.search(r"^subagent_model +file-sub  \[config\]$", shown, re.M)
        assert "offline demo" not in shown  # the notice was said once, in the first cell
        assert [r.model for r in server.requests] == ["file-sub"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
