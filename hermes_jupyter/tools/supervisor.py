"""The first process of every tool command: runs the command and takes all it started down.

Run as a script (`python -I supervisor.py <parent pid> <memory MB or 0> <sandbox> <argv...>`),
never imported by the engine; it imports nothing of ours. The runner (`process.py`) starts it
as the leader of a new session and process group, so a kernel interrupt never reaches the tool.
`<sandbox>` is `-` (run the command as is) or a JSON list of folders to hide: then the command
runs isolated (see `_isolate`): in its own user, mount and PID namespaces with a /proc of its
own, so no other process (the kernel, the Jupyter server) and no environment but its own is
visible to it, and the listed folders (Jupyter's runtime folder, with the kernel's connection
file and the server's token) are covered by empty ones. If that cannot be set up, the command
does not run (exit 126, one line on stderr): the engine probes first and never asks for it then.

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
import json
import os
import resource
import select
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
NOT_ISOLATED = 126  # the exit code when the sandbox could not be set up
_cleaning = False


def main(argv: list[str]) -> None:
    parent, limit_mb, sandbox, command = int(argv[1]), int(argv[2]), argv[3], argv[4:]
    hide = None if sandbox == "-" else [str(p) for p in json.loads(sandbox)]
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
    report, told = os.pipe()  # an isolated command's wait status, from its namespace's init
    pid = os.fork()
    if pid == 0:
        os.close(report)
        if hide is None:
            _exec(command, limit_mb)
        else:
            _isolate(command, limit_mb, hide, told)
    os.close(told)
    status = _wait(pid)
    with os.fdopen(report, "rb") as reported:
        data = reported.read(4)
    if len(data) == 4:
        status = int.from_bytes(data, "little")
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
        _default_signals()
        if limit_mb > 0:
            limit = limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.execvp(command[0], command)
    except BaseException as err:  # the child must never return into main()
        os.write(2, f"could not start {command[0]!r}: {err}\n".encode())
        os._exit(127)


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)


def _isolate(command: list[str], limit_mb: int, hide: list[str], told: int) -> None:
    """In the forked child: new user, mount and PID namespaces (the same uid and gid inside),
    then a child that is PID 1 there mounts a fresh /proc, covers `hide`, locks the mounts
    (a nested user and mount namespace: mounts inherited from a more privileged one cannot be
    unmounted, so the host's /proc under ours stays covered even for root), and runs the
    command as its own child, reaping orphans until it ends; its wait status goes to `told`.
    When PID 1 exits, Linux kills everything left in the namespace."""
    try:
        _default_signals()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        uid, gid = os.geteuid(), os.getegid()
        _unshare(libc, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)
        _map_ids(uid, gid)
        init = os.fork()
        if init:
            os.close(told)
            status = _wait(init)
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for folder in hide:
            if os.path.isdir(folder):
                _mount(libc, "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       b"mode=0700,size=16m")
        _unshare(libc, CLONE_NEWUSER | CLONE_NEWNS)
        _map_ids(uid, gid)
    except BaseException as err:
        os.write(2, f"could not isolate the tool process: {err}\n".encode())
        os._exit(NOT_ISOLATED)
    command_pid = os.fork()
    if command_pid == 0:
        os.close(told)
        _exec(command, limit_mb)
    while True:  # PID 1: reap every orphan until the command itself ends
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == command_pid:
            os.write(told, status.to_bytes(4, "little"))
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _unshare(libc: ctypes.CDLL, flags: int) -> None:
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare: {os.strerror(ctypes.get_errno())}")


def _mount(libc: ctypes.CDLL, source: str | None, target: str, kind: str | None, flags: int,
           data: bytes | None = None) -> None:
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    if libc.mount(_encode(source), _encode(target), _encode(kind), flags, data) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {kind or ''} on {target}: {os.strerror(error)}")


def _encode(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _map_ids(uid: int, gid: int) -> None:
    """Map our own uid and gid to themselves in the user namespace just entered."""
    with contextlib.suppress(FileNotFoundError):
        _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _wait(pid: int) -> int:
    while True:
        try:
            found, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 0
        if found == pid:
            return status


def _die(*_: object) -> None:
    """SIGTERM, SIGHUP or the parent's death: take everything down, then ourselves. Linux
    sends the death signal again each time we are re-parented (once per thread of a dying
    parent), so a repeat while cleaning is ignored rather than cutting the cleaning short."""
    global _cleaning
    if _cleaning:
        return
    _cleaning = True
    _kill_the_rest()
    os.killpg(0, signal.SIGKILL)


def _kill_the_rest() -> None:
    """SIGKILL every other process of this group and every child (re-parented ones too) and
    wait for them to exit (their orphans are re-parented to us only then), until a scan
    finds none: a fork racing one pass is caught by the next."""
    me = os.getpid()
    for _ in range(100):
        _reap()
        found = [pid for pid, ppid, pgrp in _processes() if pid != me and me in (ppid, pgrp)]
        if not found:
            return
        handles = []
        for pid in found:
            try:
                handle = os.pidfd_open(pid)  # signals through it never hit a reused pid
            except OSError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                continue
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(handle, signal.SIGKILL)
            handles.append(handle)
        _wait_exits(handles, 10.0)


def _wait_exits(handles: list[int], timeout: float) -> None:
    """Wait until every pidfd reports its process exited (or `timeout` seconds), close them."""
    waiting = set(handles)
    while waiting:
        ready, _, _ = select.select(list(waiting), [], [], timeout)
        if not ready:
            break
        waiting -= set(ready)
    for handle in handles:
        os.close(handle)


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
