"""A kernel interrupt (JupyterLab's stop button) never reaches a background task's tool
process: the tool goes on, and the task ends with the tool's real output."""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hermes_jupyter.testing import Reply, ToolCall

from .kernel_frontend import ROOT, KernelFrontend

pytestmark = pytest.mark.kernel

TOOL = """
import os
go = os.open({go!r}, os.O_RDWR)  # a FIFO opened read-write never blocks and never sees EOF
with open({started!r}, "w") as f:
    f.write(str(os.getpid()))
print("before", flush=True)
print("after", os.read(go, 100).decode())
"""


@pytest.fixture
def kernel(tmp_path) -> Iterator[tuple[Any, KernelFrontend]]:
    """A real python3 kernel (manager and frontend) importing this checkout, cwd tmp_path."""
    from jupyter_client.manager import KernelManager

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HERMES_"))}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**env, "PYTHONPATH": str(ROOT)}, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, KernelFrontend(kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def write_go(path: Path) -> bool:
    """Release the tool; False when no process holds the FIFO any more (the tool died)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ENXIO:
            return False
        raise
    os.write(fd, b"go")
    os.close(fd)
    return True


@pytest.mark.timeout(180)
def test_interrupting_the_kernel_leaves_a_background_python_tool_running(kernel, llm, tmp_path):
    km, front = kernel
    started, go = tmp_path / "started.fifo", tmp_path / "go.fifo"
    os.mkfifo(started)
    os.mkfifo(go)
    code = TOOL.format(go=str(go), started=str(started))
    llm.on("interrupt", Reply(tool_calls=[ToolCall("run_python", {"code": code})]),
           Reply("finished"))
    front.execute(f"import hermes_jupyter as hj\n"
                  f"s = hj.Session(model='m', base_url={llm.base_url!r}, api_keys=['k'], "
                  f"workspace={str(tmp_path)!r})\n"
                  "t = s.delegate('interrupt me', toolsets=['python'])")
    with open(started) as f:  # the tool process runs now
        tool_pid = int(f.read())
    msg_id = front.kc.execute("print('waiting', flush=True)\nr = t.collect(60)",
                              stop_on_error=False)  # the next cell must not be aborted
    front.wait(lambda m: m["msg_type"] == "stream" and "waiting" in m["content"]["text"])
    km.interrupt_kernel()  # what the stop button (and %collect_task's advice) does
    reply = _reply(front, msg_id)
    assert reply["content"]["status"] == "error"  # the wait was interrupted, as asked
    released = write_go(go)
    out = front.stdout("r = t.collect(30)\nprint(r.state.value)\n"
                       "print(r.transcript[3]['content'])\ns.close()")
    assert released, f"the tool process {tool_pid} died of the interrupt: {out}"
    assert out.splitlines()[0] == "succeeded"
    assert "before\nafter go" in out and "KeyboardInterrupt" not in out


def _reply(front: KernelFrontend, msg_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            reply: dict[str, Any] = front.kc.get_shell_msg(timeout=1)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply
    raise AssertionError("no reply to the interrupted cell")
