"""Tool processes: their own process group, killed whole on cancel, timeout, close and the
death of the process that runs the session (kill -9 included); capped output; signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import ProcessPolicy, PythonRunner

ROOT = Path(__file__).resolve().parents[1]

# A tool that starts a grandchild, forks, and starts one that leaves its session (setsid),
# reports every pid through a FIFO, then blocks.
SPAWNER = """
import os, subprocess, time
sleeper = subprocess.Popen(["sleep", "300"])
forked = os.fork()
if forked == 0:
    time.sleep(300)
    os._exit(0)
escaped = subprocess.Popen(["setsid", "sleep", "300"])
with open({fifo!r}, "w") as f:
    f.write(f"{{os.getpid()}} {{sleeper.pid}} {{forked}} {{escaped.pid}}")
time.sleep(300)
"""


def spawner(tmp_path: Path) -> tuple[str, Path]:
    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    return SPAWNER.format(fifo=str(fifo)), fifo


def read_pids(fifo: Path) -> list[int]:
    with open(fifo) as f:  # blocks until the tool wrote: every process runs now
        return [int(p) for p in f.read().split()]


def still_running(pids: list[int], within: float = 10.0) -> list[int]:
    """The pids that have not exited within `within` seconds (a pidfd is readable once its
    process exited)."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue
    try:
        waiting = set(fds)
        while waiting:
            ready, _, _ = select.select(list(waiting), [], [], within)
            if not ready:
                break
            waiting -= set(ready)
        return sorted(fds[fd] for fd in waiting)
    finally:
        for fd in fds:
            os.close(fd)


def assert_all_gone(pids: list[int]) -> None:
    """Every pid exits within seconds; on failure the leftovers (ours) are killed by pid."""
    left = still_running(pids)
    info = [Path(f"/proc/{pid}/stat").read_text() for pid in left]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], f"processes {left} of {pids} outlived their tool: {info}"


def python_call(code: str, **args: object) -> Reply:
    return Reply(tool_calls=[ToolCall("run_python", json.dumps({"code": code, **args}))])


# ---- cancel, timeout, close: the whole tree goes ---------------------------------------------
# A bash command that starts a grandchild, a subshell and one that leaves its session, reports
# every pid, blocks.
SHELL_SPAWN = ("sleep 300 & a=$!; (sleep 300) & b=$!; setsid sleep 300 & c=$!; "
               "echo $$ $a $b $c > {fifo}; sleep 300")


def spawning_call(toolset: str, tmp_path: Path, **args: object) -> tuple[Reply, Path]:
    """The tool call of `toolset` ("python" or "shell") that spawns a process tree, and the
    FIFO its pids come through."""
    if toolset == "python":
        code, fifo = spawner(tmp_path)
        return python_call(code, **args), fifo
    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    command = SHELL_SPAWN.format(fifo=fifo)
    return Reply(tool_calls=[ToolCall("run_shell", {"command": command, **args})]), fifo


@pytest.mark.parametrize("toolset", ["python", "shell"])
@pytest.mark.parametrize("how", ["cancel", "tool timeout", "task timeout", "close"])
def test_every_process_a_tool_started_dies_with_it(llm, tmp_path, how, toolset):
    call, fifo = spawning_call(toolset, tmp_path, **({"timeout": 1} if how == "tool timeout"
                                                     else {}))
    llm.on("spawn", call, Reply("done"))
    session = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                         approval="auto")
    task = session.delegate("spawn", toolsets=[toolset],
                            timeout=2 if how == "task timeout" else None)
    pids = read_pids(fifo)
    if how == "cancel":
        session.cancel(task)
    elif how == "close":
        session.close()
    result = task.collect(20)
    assert_all_gone(pids)
    if how == "tool timeout":
        assert result.summary == "done"
        assert "timeout" in result.transcript[-2]["content"]
    elif how in ("cancel", "close"):
        assert result.state is hj.TaskState.CANCELLED
    else:
        assert result.exit_reason == "timeout"
    session.close()


def test_a_grandchild_holding_stdout_does_not_hold_the_tool(tmp_path):
    code = ("import subprocess; p = subprocess.Popen(['sleep', '300']); "
            "open('pid.txt', 'w').write(str(p.pid)); print('finished')")
    try:
        out = asyncio.run(PythonRunner(tmp_path).run_python(code, timeout=8))
    finally:
        assert_all_gone([int((tmp_path / "pid.txt").read_text())])
    assert out == "finished\n"


# ---- how a process ended reaches the model ----------------------------------------------------
@pytest.mark.parametrize(("code", "signame"), [
    ("import os, signal; print('partial', flush=True); os.kill(os.getpid(), signal.SIGKILL)",
     "SIGKILL"),
    ("import os; print('partial', flush=True); os.abort()", "SIGABRT"),
])
def test_a_process_killed_by_a_signal_is_reported_as_killed(session, llm, code, signame):
    llm.on("die", python_call(code), Reply("done"))
    result = session.delegate("die", toolsets=["python"]).collect(20)
    trace = result.tool_trace[0]
    assert not trace.ok
    told = llm.requests[-1].messages[-1]["content"]
    assert f"killed by {signame}" in told and "partial" in told


def test_a_huge_print_is_cut_while_it_streams_and_the_kernel_does_not_grow(tmp_path):
    probe = textwrap.dedent(f"""
        import asyncio, resource
        from hermes_jupyter.tools import PythonRunner
        code = "import sys; sys.stdout.write('x' * 100_000_000); print('END')"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = asyncio.run(PythonRunner({str(tmp_path)!r}).run_python(code))
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown // 1024, len(out), out.endswith("END\\n"), "bytes of output cut" in out)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shown = subprocess.run([sys.executable, "-c", probe], env=env, text=True,
                           capture_output=True, timeout=120, check=True).stdout.split()
    grown_mb, length = int(shown[0]), int(shown[1])
    assert grown_mb < 30, f"the kernel grew by {grown_mb} MB"
    assert length < 21_000 and shown[2:] == ["True", "True"]


def test_the_memory_cap_stops_a_tool_that_allocates_too_much(llm, tmp_path):
    code = "b = bytearray(2 * 1024**3); print('allocated')"
    llm.on("big", python_call(code), Reply("done"))
    session = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                         tool_memory_limit_mb=256)
    session.delegate("big", toolsets=["python"]).collect(20)
    session.close()
    told = llm.requests[-1].messages[-1]["content"]
    assert "MemoryError" in told and "allocated" not in told


def test_the_policy_default_is_no_cap(tmp_path):
    out = asyncio.run(PythonRunner(tmp_path, policy=ProcessPolicy()).run_python(
        "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"))
    assert out.strip() == str(-1)


# ---- the process running the session dies: its tools die too -------------------------------
KERNEL = """
import sys
import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall
code = open(sys.argv[1]).read()
with FakeLLM() as llm:
    llm.on("spawn", Reply(tool_calls=[ToolCall("run_python", {{"code": code}})]))
    session = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=sys.argv[2])
    task = session.delegate("spawn", toolsets=["python"])
    print("{ready}", flush=True)
    task.collect()
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_tool_processes_die_when_the_kernel_process_dies(tmp_path, sig):
    code, fifo = spawner(tmp_path)
    (tmp_path / "tool.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kernel = subprocess.Popen(
        [sys.executable, "-c", KERNEL.format(ready="ready"), str(tmp_path / "tool.py"),
         str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
    pids = read_pids(fifo)
    try:
        kernel.send_signal(sig)  # kill -9: no Python code of the kernel runs any more
        kernel.wait(20)
        assert_all_gone(pids)
    finally:
        kernel.kill()
        kernel.wait()
