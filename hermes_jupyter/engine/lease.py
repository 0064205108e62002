"""Who owns a journal row, and whether that owner is still alive.

A row's owner is a small JSON object with a `kind`. `"process"`: the kernel (or script) that
runs the task, named by host, boot, pid and the process's start time, so a pid reused after
the owner died does not count as the owner. `"dask"`: a Dask cluster runs it (a session with
`cluster=` and a journal, engine/dask_attach.py); it is gone when its scheduler refuses
connections, and otherwise left for a session on that cluster to re-attach to. Rows of kinds
this version does not know, and processes on other hosts, are left as they are, since nothing
here can tell they are gone.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["CHECKS", "alive", "this_process"]

Checker = Callable[[Mapping[str, Any]], "bool | None"]


@cache
def this_process() -> str:
    """The owner JSON of the running process (fixed for its lifetime)."""
    pid = os.getpid()
    return json.dumps({"kind": "process", "host": socket.gethostname(), "boot": _boot_id(),
                       "pid": pid, "start": _start_time(pid)}, sort_keys=True)


def alive(owner: str | None) -> bool | None:
    """True: the owner is alive; False: it is gone; None: cannot tell (leave its rows be).

    Rows without an owner were written before owners existed (schema version 0), by a kernel
    that is treated as gone, as that version did.
    """
    if owner is None:
        return False
    try:
        data = json.loads(owner)
        check = CHECKS.get(data.get("kind"))
    except (ValueError, AttributeError):
        return None
    return None if check is None else check(data)


def _process_alive(owner: Mapping[str, Any]) -> bool | None:
    if owner.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if boot is not None and owner.get("boot") not in (None, boot):
        return False  # the machine restarted since: every process of that boot is gone
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    state, start = _stat(pid)
    if state in ("Z", "X"):  # killed, not yet reaped (a kernel stays so until its server polls)
        return False
    if start is not None:
        return owner.get("start") in (None, start)
    try:
        os.kill(pid, 0)  # no /proc: the pid alone (a reused pid reads as alive)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _cluster_alive(owner: Mapping[str, Any]) -> bool | None:
    """False when the scheduler's address refuses a connection; else None (a session on
    that cluster finds out whether it still runs the task)."""
    address = str(owner.get("scheduler", ""))
    scheme, _, hostport = address.rpartition("://")
    host, _, port = hostport.rpartition(":")
    if scheme not in ("tcp", "tls") or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=0.5).close()
    except ConnectionRefusedError:
        return False
    except OSError:
        return None
    return None


CHECKS: dict[str, Checker] = {"process": _process_alive, "dask": _cluster_alive}


@cache
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: start time in clock ticks after boot (Linux only)."""
    return _stat(pid)[1]


def _stat(pid: int) -> tuple[str | None, int | None]:
    """Fields 3 (state: R, S, Z for a zombie...) and 22 (start time in clock ticks after boot)
    of /proc/<pid>/stat; (None, None) without /proc or such a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None, None
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return (fields[0] if fields else None), None
