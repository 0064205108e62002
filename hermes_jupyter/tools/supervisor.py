"""The first process of every tool command: runs the command and takes all it started down.

Run as a script (`python -I supervisor.py <parent pid> <memory MB or 0> <argv...>`), never
imported by the engine; it imports nothing of ours. The runner (`process.py`) starts it as the
leader of a new session and process group, so a kernel interrupt never reaches the tool.

It then:
* asks Linux for SIGTERM when the thread that started it dies (`PR_SET_PDEATHSIG`; kill -9 of
  the kernel included) and becomes a child subreaper, so descendants that leave the group
  (`setsid`, double forks) are re-parented to it instead of to init;
* runs the command with the memory cap (`RLIMIT_AS`) and default signal dispositions;
* when the command ends, or on SIGTERM/SIGHUP, kills every process of its group and every
  process re-parented to it, until none is left, so nothing it started outlives it and no
  grandchild keeps the output pipe open;
* ends as the command did: the same exit code, or killed by the same signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_cleaning = False


def main(argv: list[str]) -> None:
    parent, limit_mb, command = int(argv[1]), int(argv[2]), argv[3:]
    signal.signal(signal.SIGTERM, _die)
    signal.signal(signal.SIGHUP, _die)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the group kill still works
        pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        _die()
    pid = os.fork()
    if pid == 0:
        _exec(command, limit_mb)
    status = _wait(pid)
    _kill_the_rest()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _exec(command: list[str], limit_mb: int) -> None:
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        if limit_mb > 0:
            limit = limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.execvp(command[0], command)
    except BaseException as err:  # the child must never return into main()
        os.write(2, f"could not start {command[0]!r}: {err}\n".encode())
        os._exit(127)


def _wait(pid: int) -> int:
    while True:
        try:
            found, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 0
        if found == pid:
            return status


def _die(*_: object) -> None:
    global _cleaning
    if _cleaning:  # a second signal (the death signal after a SIGTERM) while cleaning up:
        return     # killing ourselves now would orphan what left the group to init
    _cleaning = True
    _kill_the_rest()
    os.killpg(0, signal.SIGKILL)


def _kill_the_rest() -> None:
    """SIGKILL every other process of this group and every child (re-parented ones too),
    reaping them, until a scan finds none: a fork racing the first pass is caught next."""
    me = os.getpid()
    for _ in range(200):
        _reap()
        found = [pid for pid, ppid, pgrp in _processes() if pid != me and me in (ppid, pgrp)]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _processes() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgrp) of every live, non-zombie process in /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields and fields[0] != b"Z":
            out.append((int(name), int(fields[1]), int(fields[2])))
    return out


if __name__ == "__main__":
    main(sys.argv)
