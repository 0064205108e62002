"""Running one tool command as a process the engine fully controls (python now, shell next).

Every command starts under `supervisor.py` as the leader of a new session and process group:
a kernel interrupt (SIGINT to the kernel's group) never reaches it; cancel, timeout and
session close take down everything it started (grandchildren, forks, `setsid` escapes); it
dies when the kernel dies, kill -9 included (Linux parent-death signal). Where Linux allows
it, it runs isolated (`sandbox.py`): no other process, environment or key is visible to it,
and this process's own startup environment holds no secret value. Output is read while
it streams and capped (the first and last `output_limit // 2` bytes are kept), the environment
is scrubbed of secrets (`core.secrets.scrub_environ`), and an optional address-space cap
(`memory_limit_mb`) applies to the command.

The death signal is tied to the *thread* that started the process: `run_process` runs on the
session's engine loop thread, which lives as long as the session, and whose end (close) should
kill tool processes anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core import validate as check
from ..core.secrets import Secrets, scrub_environ
from .sandbox import isolation, sandbox_argument, scrub_own_environ

__all__ = ["ProcessGroups", "ProcessPolicy", "ProcessResult", "run_process"]

SUPERVISOR = Path(__file__).with_name("supervisor.py")
KILL_GRACE = 2.0  # seconds the supervisor gets to clean up after SIGTERM before SIGKILL
EOF_GRACE = 1.0  # seconds to wait for the pipe to close once the supervisor has exited
_READ = 64 * 1024


class ProcessGroups:
    """The live tool processes of one session (their supervisors' pids); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()

    def add(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._pids.discard(pid)

    def __len__(self) -> int:
        return len(self._pids)

    def __reduce__(self) -> tuple[type[ProcessGroups], tuple[()]]:
        # A copy sent to another process (a Dask worker's task) starts empty: pids are local.
        return (ProcessGroups, ())

    def close(self) -> None:
        """What the session's close does: `kill_all`."""
        self.kill_all()

    def kill_all(self) -> int:
        """Ask every live supervisor to take its processes down (SIGTERM); how many."""
        with self._lock:
            pids = list(self._pids)
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        return len(pids)


@dataclass(frozen=True)
class ProcessPolicy:
    """How a session's tool processes run: env allowlist, memory cap (MiB), output cap (bytes)."""

    secrets: Secrets = field(default_factory=Secrets)
    env_allowlist: tuple[str, ...] = ()
    memory_limit_mb: int | None = None
    output_limit: int = 20_000
    groups: ProcessGroups = field(default_factory=ProcessGroups)

    @classmethod
    def checked(cls, keys: Iterable[str], base_url: str | None, env_allowlist: Iterable[str],
                memory_limit_mb: int | None) -> ProcessPolicy:
        """A session's policy, with its secrets registry (`Secrets.of_endpoint`), from its
        settings; a bad value raises `InvalidArgument` (or `InvalidArgumentType`) naming it."""
        allow = tuple(check.names("tool_env_allowlist", env_allowlist, "environment variables"))
        limit = check.optional(check.count, "tool_memory_limit_mb", memory_limit_mb,
                               maximum=2**40)
        secrets = Secrets.of_endpoint(keys, base_url, os.environ)
        return cls(secrets, allow, limit, groups=ProcessGroups())

    def environ(self) -> dict[str, str]:
        """This process's environment without secrets (see `scrub_environ`)."""
        return scrub_environ(os.environ, self.secrets, self.env_allowlist)


@dataclass(frozen=True)
class ProcessResult:
    """How a command ended. `output` is stdout and stderr interleaved, decoded, capped;
    `cut` counts the bytes dropped from its middle; `signal` names the killing signal."""

    output: str
    returncode: int | None
    cut: int = 0
    timed_out: bool = False

    @property
    def signal(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


async def run_process(
    argv: Sequence[str], *, cwd: str | os.PathLike[str], policy: ProcessPolicy, timeout: float
) -> ProcessResult:
    """Run `argv` to its end or `timeout` (seconds); cancelling the caller kills it all."""
    isolated = (await asyncio.get_running_loop().run_in_executor(None, isolation)).available
    scrub_own_environ(lambda name, value: not scrub_environ({name: value}, policy.secrets))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()),
        str(policy.memory_limit_mb or 0), sandbox_argument(cwd) if isolated else "-", *argv,
        cwd=cwd, env=policy.environ(), start_new_session=True,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    policy.groups.add(proc.pid)
    sink = _CappedOutput(policy.output_limit)
    assert proc.stdout is not None
    reader = asyncio.ensure_future(sink.read(proc.stdout))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout)
        except asyncio.TimeoutError:
            timed_out = True
            _stop(proc)
            await proc.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), EOF_GRACE)
    except BaseException:  # cancelled: the task was cancelled, so its processes must die
        _stop(proc)
        raise
    finally:
        reader.cancel()
        policy.groups.discard(proc.pid)
    return ProcessResult(sink.text(), proc.returncode, sink.cut, timed_out)


class _CappedOutput:
    """Keeps the first and last `limit // 2` bytes of a stream and counts what it drops."""

    def __init__(self, limit: int) -> None:
        self._half = max(limit // 2, 1)
        self._head = bytearray()
        self._tail = bytearray()
        self.cut = 0

    async def read(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_READ):
            room = self._half - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            self._tail += chunk
            extra = len(self._tail) - self._half
            if extra > 0:
                del self._tail[:extra]
                self.cut += extra

    def text(self) -> str:
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if self.cut:
            return f"{head}\n… [{self.cut} bytes of output cut] …\n{tail}"
        return head + tail


def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the supervisor (it kills all its processes), then SIGKILL its group if it has
    not gone within KILL_GRACE seconds."""
    if proc.returncode is not None:
        return
    _signal(proc.pid, signal.SIGTERM)

    def fallback() -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    with contextlib.suppress(RuntimeError):  # no running loop: SIGTERM must do
        asyncio.get_running_loop().call_later(KILL_GRACE, fallback)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


MAX_TOOL_TIMEOUT = 600.0  # seconds a model may ask a tool process to run, at most


class ProcessToolset:
    """A toolset whose calls run a supervised process in `cwd` (the workspace) under `policy`
    (environment allowlist, memory and output caps, the session's process registry)."""

    def __init__(
        self,
        cwd: str | os.PathLike[str],
        default_timeout: float = 60.0,
        policy: ProcessPolicy | None = None,
    ) -> None:
        self.cwd = Path(cwd)
        self.default_timeout = default_timeout
        self.policy = policy or ProcessPolicy()

    def limit(self, timeout: float | None) -> float:
        """The seconds a call may run: the model's `timeout`, within (0.1, 600]."""
        if timeout is None:
            return self.default_timeout
        return max(0.1, min(float(timeout), MAX_TOOL_TIMEOUT))
