"""Runs a stdio MCP server so that it dies with the process that started it.

    python -I guard.py PARENT_PID -- COMMAND [ARGS...]

The MCP SDK starts this script in a new process group; it starts COMMAND in the same group
(inheriting stdin, stdout and stderr, so the MCP stream passes straight through) and waits.
When the parent dies, even by SIGKILL, the whole group is killed: on Linux the kernel sends
us SIGTERM (PR_SET_PDEATHSIG), elsewhere a watcher thread notices the new parent pid. The
same happens on SIGTERM or SIGHUP (the SDK's own shutdown), and when the server exits: what
it started in the background dies with it.
Standard library only: it runs with `-I`, before anything of ours could be imported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from types import FrameType

_PR_SET_PDEATHSIG = 1
_child: subprocess.Popen[bytes] | None = None


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: guard.py PARENT_PID -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    parent, command = int(argv[0]), argv[2:]
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _kill_group)
    if not _die_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before we could watch it
        _kill_group(signal.SIGTERM, None)
    global _child
    try:
        _child = subprocess.Popen(command)
    except OSError as err:
        print(f"cannot start MCP server {command[0]!r}: {err}", file=sys.stderr)
        return 127
    code = _child.wait()
    sys.stdout.flush()
    _kill_group(signal.SIGTERM, None)  # the server's own children, then us
    return code if code >= 0 else 128 - code


def _die_with_parent() -> bool:
    """Ask Linux for SIGTERM when the parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    stop = threading.Event()
    while not stop.wait(0.5):  # polling is the portable way to learn of a parent's death
        if os.getppid() != parent:
            _kill_group(signal.SIGTERM, None)


def _kill_group(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(OSError):
        if os.getpgrp() == os.getpid():  # our own group: the server and all it started
            os.killpg(os.getpgrp(), signal.SIGKILL)
        elif _child is not None:
            _child.kill()
    os._exit(128 + signum)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
