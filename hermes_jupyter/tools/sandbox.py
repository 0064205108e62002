"""Keeping keys out of tool processes' reach (the engine's side; `supervisor.py` does the rest).

A tool process runs code the model wrote. Masking what it prints catches a key only verbatim,
so the key must not be readable at all. Three layers (docs/architecture.md, "Secrets"):

* `isolation()`: whether tool processes can run in their own user, mount and PID namespaces
  with a /proc of their own (probed once per process by running the real supervisor). Then no
  other process is visible: not the kernel, not the Jupyter server, not their environments
  or memory. Jupyter's runtime folder (`hidden_folders`) is covered too, so the kernel's
  connection file and the server's token cannot be used to run code in the kernel.
* `scrub_own_environ(...)`: this process's initial environment block (what
  `/proc/<pid>/environ` shows) has every secret value overwritten in place, after the C
  `environ` is moved off it, so the process and its children still see the real values.
* the tool's own environment is `scrub_environ(...)` (no keys, no pointers such as
  `JPY_PARENT_PID`).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Isolation", "hidden_folders", "isolation", "sandbox_argument", "scrub_own_environ"]

SUPERVISOR = Path(__file__).with_name("supervisor.py")
ISOLATION_FAILED = "could not isolate the tool process: "  # how supervisor.py says so
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_probed: Isolation | None = None


@dataclass(frozen=True)
class Isolation:
    """Whether tool processes run isolated (`available`), and if not, `reason` (one line)."""

    available: bool
    reason: str = ""

    def warning(self) -> str:
        return ("hermes_jupyter: python and shell tool processes cannot be isolated here "
                f"({self.reason}): tool code can read other processes' environments, API keys "
                "included; see docs/architecture.md, Secrets.")


def isolation() -> Isolation:
    """Probe once per process (a real isolated `true` under the supervisor); thread-safe.
    The first probe that finds no isolation logs `Isolation.warning()` once."""
    global _probed
    with _lock:
        if _probed is None:
            _probed = _probe()
            if not _probed.available:
                _log.warning(_probed.warning())
        return _probed


def _probe() -> Isolation:
    if not sys.platform.startswith("linux"):
        return Isolation(False, "namespaces need Linux")
    true = shutil.which("true") or "/bin/true"
    argv = [sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()), "0",
            sandbox_argument(), true]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, start_new_session=True,
                              stdin=subprocess.DEVNULL, check=False,
                              env={"PATH": os.environ.get("PATH", os.defpath)})
    except (OSError, subprocess.SubprocessError) as err:
        return Isolation(False, f"the probe did not run: {err}")
    if done.returncode == 0:
        return Isolation(True)
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    why = lines[-1].removeprefix(ISOLATION_FAILED) if lines else f"exit {done.returncode}"
    return Isolation(False, why)


def hidden_folders(cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """Folders an isolated tool sees empty: Jupyter's runtime folder (connection files with
    the kernel's signing key, the server's token) and the folder of this kernel's connection
    file; never one that holds `cwd` (the workspace)."""
    found: list[str] = []
    runtime = os.environ.get("JUPYTER_RUNTIME_DIR")
    if not runtime:
        with contextlib.suppress(Exception):
            from jupyter_core.paths import jupyter_runtime_dir
            runtime = jupyter_runtime_dir()
    if runtime:
        found.append(runtime)
    argv = sys.argv
    for flag, value in itertools.pairwise(argv):
        if flag in ("-f", "--f") and value.endswith(".json"):
            found.append(os.path.dirname(os.path.abspath(value)))
    home = os.path.realpath(os.fspath(cwd)) if cwd is not None else None
    out = []
    for folder in found:
        real = os.path.realpath(folder)
        if real in out or (home and (home + "/").startswith(real.rstrip("/") + "/")):
            continue
        out.append(real)
    return out


def sandbox_argument(cwd: str | os.PathLike[str] | None = None) -> str:
    """The supervisor's `<sandbox>` argument for an isolated run in `cwd`."""
    return json.dumps(hidden_folders(cwd))


def scrub_own_environ(drop: Callable[[str, str], bool]) -> int:
    """Overwrite, in this process's initial environment block, the value of every variable
    for which `drop(name, value)` is true (with `*`); returns how many. The C `environ` entry
    is first moved to a copy (`os.putenv`), so `getenv`, `os.environ` and child processes
    keep the real value; only readers of `/proc/<pid>/environ` lose it. Best effort: 0 when
    the block cannot be read or written (not Linux). Thread-safe."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        start, end = int(fields[50 - 3]), int(fields[51 - 3])  # env_start, env_end
        with _lock, open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            block = mem.read(end - start)
            return _overwrite(mem, start, block, drop)
    except (OSError, ValueError, IndexError):
        return 0


def _overwrite(mem: BinaryIO, start: int, block: bytes, drop: Callable[[str, str], bool]) -> int:
    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_void_p
    libc.getenv.argtypes = [ctypes.c_char_p]
    count, offset = 0, 0
    for entry in block.split(b"\0"):
        name, equals, value = entry.partition(b"=")
        at = offset
        offset += len(entry) + 1
        if not equals or not value.strip(b"*"):
            continue
        text_name, text_value = os.fsdecode(name), os.fsdecode(value)
        if not drop(text_name, text_value):
            continue
        pointer = libc.getenv(name)
        if pointer is not None and start <= pointer < start + len(block):
            current = ctypes.string_at(pointer)
            os.putenv(name, current)  # setenv: a copy on the heap; the block is no longer used
        where = start + at + len(name) + 1
        mem.seek(where)
        mem.write(b"*" * len(value))
        count += 1
    return count
