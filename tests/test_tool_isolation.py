"""No tool process can read an API key: not from the kernel's environment (by its pid, by
parent-pid chains, by scanning /proc, through JPY_PARENT_PID), not from Jupyter's runtime
folder, not after unmounting its /proc; masking is not what stops it (a reversed copy of the
key would get through masking). The kernel is a real process started with the key exported and
also given as `api_keys`; a stand-in Jupyter server holds it in its environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hermes_jupyter.tools import sandbox

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-live-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
FORMS = (KEY, KEY[::-1], KEY[8:], KEY[8:][::-1])  # what a hostile tool might send on

# Every way the reviewer and we found to reach a process holding the key; it writes all it
# read, unmasked, to found.bin, and prints it reversed (which output masking cannot catch).
PYTHON_ATTACK = r"""
import glob, os, subprocess
found = []
def grab(path):
    try:
        with open(path, "rb") as f:
            found.append(f.read())
    except OSError:
        pass
grab("/proc/%(kernel)d/environ")
for word in open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\0"):
    if word.isdigit():  # the supervisor's argv names the kernel's pid
        grab(f"/proc/{int(word)}/environ")
pid = os.getpid()
for _ in range(20):  # the parent-pid chain up to init
    grab(f"/proc/{pid}/environ")
    try:
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        break
    if pid <= 0:
        break
for path in glob.glob("/proc/*/environ"):
    grab(path)
grab(f"/proc/{os.environ.get('JPY_PARENT_PID', 0)}/environ")
grab("/proc/%(server)d/environ")
for path in glob.glob("%(runtime)s/*"):
    grab(path)
subprocess.run(["umount", "/proc"], capture_output=True)  # uncover the host's /proc (root)
for path in glob.glob("/proc/*/environ"):
    grab(path)
found.append(repr(dict(os.environ)).encode())
blob = b"\0".join(found)
open("found.bin", "wb").write(blob)
print(len(found), blob.decode(errors="replace")[::-1])
"""

SHELL_ATTACK = ("{ cat /proc/%(kernel)d/environ /proc/$JPY_PARENT_PID/environ "
                "/proc/%(server)d/environ /proc/*/environ %(runtime)s/*; umount /proc; "
                "cat /proc/*/environ; env; } > found.bin 2>/dev/null; rev found.bin")

KERNEL = """
import json, os, sys
import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall
tool, arguments, workspace, key = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
arguments = {k: v.replace("%(kernel)d", str(os.getpid())) for k, v in arguments.items()}
with FakeLLM() as llm:
    llm.on("peek", Reply(tool_calls=[ToolCall(tool, arguments)]), Reply("done"))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[key], workspace=workspace,
                    approval="auto") as session:
        result = session.delegate("peek", toolsets=["python", "shell"]).collect(60)
    print(json.dumps({"requests": [r.body for r in llm.requests], "ok": result.tool_trace[0].ok,
                      "environ": open(f"/proc/{os.getpid()}/environ", "rb").read().decode(),
                      "os_environ": os.environ.get("OPENAI_API_KEY"),
                      "child": os.popen("printenv OPENAI_API_KEY").read().strip()}))
"""


@pytest.fixture
def server() -> Iterator[int]:
    """A stand-in for the Jupyter server: a process with the key in its environment."""
    proc = subprocess.Popen(["sleep", "300"], env={"OPENAI_API_KEY": KEY, "PATH": "/bin"})
    yield proc.pid
    proc.kill()
    proc.wait()


def run_kernel(tmp_path: Path, server: int, tool: str, template: str) -> dict[str, object]:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "jpserver-1.json").write_text(json.dumps({"token": KEY}))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    filled = template.replace("%(server)d", str(server)).replace("%(runtime)s", str(runtime))
    argument = {"code": filled} if tool == "run_python" else {"command": filled}
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT),
           "JPY_PARENT_PID": str(server), "JUPYTER_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([sys.executable, "-c", KERNEL, tool, json.dumps(argument),
                           str(workspace), KEY], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    found = workspace / "found.bin"
    report["found"] = found.read_bytes().decode(errors="replace") if found.exists() else ""
    return report


@pytest.mark.parametrize(("tool", "attack"), [("run_python", PYTHON_ATTACK),
                                               ("run_shell", SHELL_ATTACK)])
def test_no_tool_process_can_read_the_key_in_any_form(tmp_path, server, tool, attack):
    report = run_kernel(tmp_path, server, tool, attack)
    found, sent = str(report["found"]), json.dumps(report["requests"])
    assert "PATH=" in found  # the tool ran and read environments (its own at least)
    assert [form for form in FORMS if form in found] == []
    assert [form for form in FORMS if form in sent] == []
    assert "JPY_PARENT_PID" not in found


def test_the_kernels_startup_environment_holds_no_key_but_the_kernel_still_has_it(
        tmp_path, server):
    """What /proc/<kernel>/environ shows (any same-user reader) is scrubbed once a tool ran;
    the kernel's os.environ and the processes it starts itself keep the real value."""
    report = run_kernel(tmp_path, server, "run_shell", "true")
    assert "OPENAI_API_KEY=" + "*" * len(KEY) in str(report["environ"])
    assert KEY not in str(report["environ"])
    assert report["os_environ"] == KEY and report["child"] == KEY


def test_isolation_is_available_here_and_used():
    """This machine supports it (Linux namespaces): the tests above test the isolated path."""
    assert sandbox.isolation() == sandbox.Isolation(True)


def test_the_supervisor_isolates_a_user_without_privileges(tmp_path):
    """Run as root, the same sandbox for an unprivileged user (nobody, through setpriv), whose
    own other process holds the key: the supervisor alone (standard library only), with the
    system Python."""
    setpriv, python = shutil.which("setpriv"), shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or setpriv is None or python is None:
        pytest.skip("needs root and setpriv to become another user")
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    holder = subprocess.Popen([*nobody, "sleep", "300"],
                              env={"OPENAI_API_KEY": KEY, "PATH": "/usr/bin:/bin"})
    home = Path(tempfile.mkdtemp(prefix="hj-nobody-"))  # pytest's own folders are root's
    try:
        out = _as_nobody(home, nobody, python, holder.pid)
    finally:
        holder.kill()
        holder.wait()
        shutil.rmtree(home)
    assert out.splitlines()[0] == "65534", out
    assert [form for form in FORMS if form in out] == []


def _as_nobody(home: Path, nobody: list[str], python: str, server: int) -> str:
    shutil.copy(sandbox.SUPERVISOR, home / "supervisor.py")
    os.chmod(home, 0o777)
    script = ("import os, subprocess, sys; "
              "r = subprocess.run([sys.executable, '-I', '-S', 'supervisor.py', "
              "str(os.getpid()), '0', '[]', 'sh', '-c', sys.argv[1]], capture_output=True, "
              "text=True, start_new_session=True); print(r.stdout + r.stderr)")
    attack = (f"id -u; cat /proc/{server}/environ /proc/*/environ; umount /proc; "
              "unshare -Urm umount /proc; cat /proc/*/environ")
    return subprocess.run([*nobody, python, "-c", script, attack], cwd=home,
                          capture_output=True, text=True, timeout=60, check=True,
                          env={"PATH": "/usr/bin:/bin"}).stdout


UNISOLATED = """
import sys
import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall
with FakeLLM() as llm:
    llm.default = Reply("done")
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=sys.argv[1],
                    approval="auto") as session:
        for tool, args in (("run_python", {"code": "print('py ran')"}),
                           ("run_shell", {"command": "echo sh ran"})):
            llm.on(tool, Reply(tool_calls=[ToolCall(tool, args)]), Reply("done"))
            print(session.delegate(tool, toolsets=["python", "shell"]).collect(60)
                  .tool_trace[0].result_preview)
"""


def test_without_isolation_tools_still_run_and_one_line_says_so(tmp_path):
    """A user namespace where no further one may be made (`max_user_namespaces` 0 inside it,
    the host untouched): the probe fails, one warning line says so and why, tools run."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1)")
    script = ('echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -c "$1" "$2"')
    done = subprocess.run([unshare, "-Urm", "sh", "-c", script, sys.executable, UNISOLATED,
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "py ran" in done.stdout and "sh ran" in done.stdout, done.stdout
    warnings = [line for line in done.stderr.splitlines() if "cannot be isolated" in line]
    assert len(warnings) == 1, done.stderr
    assert "No space left on device" in warnings[0] and "docs/architecture.md" in warnings[0]
