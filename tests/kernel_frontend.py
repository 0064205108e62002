"""A `BlockingKernelClient` playing JupyterLab: runs cells, reads IOPub, sends on subshells.

Shared by the comm and dashboard kernel tests, which add their own comm's vocabulary.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class KernelFrontend:
    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.log: list[Message] = []
        self.comm_id = ""
        self._ids = itertools.count(1)

    def next_msg(self, deadline: float) -> Message | None:
        """The next IOPub message before `deadline` (kept in `log`), or None."""
        try:
            msg: Message = self.kc.get_iopub_msg(timeout=max(0.001, deadline - time.monotonic()))
        except queue.Empty:
            return None
        self.log.append(msg)
        return msg

    def wait(self, predicate: Callable[[Message], bool], timeout: float = 60) -> Message:
        """The first IOPub message (seen before or arriving now) that satisfies predicate."""
        for msg in self.log:
            if predicate(msg):
                return msg
        deadline = time.monotonic() + timeout
        while (msg := self.next_msg(deadline)) is not None:
            if predicate(msg):
                return msg
        raise AssertionError(f"no such IOPub message within {timeout}s")

    def execute(self, code: str) -> list[Message]:
        """Run a cell to its end (its reply must be ok); the IOPub messages it caused."""
        msg_id = self.kc.execute(code)
        self.wait(lambda m: is_idle(m, msg_id))
        reply = self.kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        return [m for m in self.log if parent_id(m) == msg_id]

    def stdout(self, code: str) -> str:
        """Run a cell to its end; what it printed."""
        return "".join(m["content"]["text"] for m in self.execute(code)
                       if m["msg_type"] == "stream")

    def send_shell(self, msg_type: str, content: Message, subshell_id: str | None = None) -> None:
        """Send on the shell channel, on a subshell when given (as JupyterLab ≥ 4.4 does)."""
        msg = self.kc.session.msg(msg_type, content)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.kc.shell_channel.send(msg)

    def next_request_id(self) -> str:
        return f"k{next(self._ids)}"

    def create_subshell(self) -> str:
        self.kc.control_channel.send(self.kc.session.msg("create_subshell_request", {}))
        reply = self.kc.get_control_msg(timeout=30)
        subshell_id: str = reply["content"]["subshell_id"]
        return subshell_id


def parent_id(msg: Message) -> str | None:
    return msg.get("parent_header", {}).get("msg_id")


def is_idle(msg: Message, msg_id: str) -> bool:
    return (msg["msg_type"] == "status" and parent_id(msg) == msg_id
            and msg["content"]["execution_state"] == "idle")


ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def running_kernel(cwd: str, **env: str) -> Iterator[Any]:
    """A real python3 kernel that imports this checkout; yields its started client.

    `env` is laid over the environment, less any OPENAI_/HERMES_ variable of the machine.
    """
    from jupyter_client.manager import KernelManager

    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HERMES_"))}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**base, "PYTHONPATH": path, **env}, cwd=cwd)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
