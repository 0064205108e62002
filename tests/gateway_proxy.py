"""LiteLLM's proxy on loopback, in a virtualenv of its own, forwarding to a `FakeLLM`.

LiteLLM pins many dependencies, so it never enters the project's environment: the first run
creates `.cache/litellm-venv-<version>` (gitignored, one per pinned version, guarded by a file
lock so parallel runs build it once) and later runs reuse it. The proxy runs with the local
price map (`LITELLM_LOCAL_MODEL_COST_MAP=True`), every outbound proxy variable pointed at a
closed loopback port (a stray call fails instead of leaving the machine), a master key, and
retries and cooldowns off, so what the upstream sends reaches the client as it was sent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LITELLM_VERSION = "1.106.12"
MASTER_KEY = "sk-gateway-master-0123456789"
UPSTREAM_KEY = "sk-gateway-upstream-9876543210"
MODEL = "gw-model"
INSTALL_TIMEOUT = 900.0  # seconds for a cold `pip install` (about 40 s on a warm machine)
START_TIMEOUT = 120.0  # seconds for the proxy to answer its liveness probe
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Gateway:
    """A running proxy: point `hj.Session(base_url=..., api_keys=[master_key])` at it."""

    base_url: str
    master_key: str
    model: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def litellm_python(cache: Path = ROOT / ".cache") -> Path:
    """The interpreter of the cached LiteLLM virtualenv, created on first use."""
    venv = cache / f"litellm-venv-{LITELLM_VERSION}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "litellm-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be building it now
        if stamp.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a half-built one from an interrupted run
        _run([_base_python(), "-m", "venv", str(venv)], timeout=120)
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              f"litellm[proxy]=={LITELLM_VERSION}"], timeout=INSTALL_TIMEOUT)
        stamp.write_text(LITELLM_VERSION + "\n")
    return python


@contextlib.contextmanager
def running_gateway(upstream_base_url: str, workdir: Path) -> Iterator[Gateway]:
    """Start the proxy on a free loopback port; it is always stopped when the block ends."""
    python = litellm_python()
    port = _free_port()
    config = workdir / "litellm.yaml"
    config.write_text(json.dumps(_config(upstream_base_url)))  # JSON is YAML
    log = workdir / "litellm.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "HTTP_PROXY": "http://127.0.0.1:9",  # the discard port: nothing leaves the machine
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "litellm.proxy.proxy_cli", "--config", str(config),
             "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            cwd=workdir, start_new_session=True,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}/v1", MASTER_KEY, MODEL, log)
    try:
        _wait_until_live(proc, port, gateway)
        yield gateway
    finally:
        _stop(proc)


def _config(upstream_base_url: str) -> dict[str, object]:
    return {
        "model_list": [{
            "model_name": MODEL,
            "litellm_params": {
                "model": "openai/fake-model",
                "api_base": upstream_base_url,
                "api_key": UPSTREAM_KEY,
                "max_retries": 0,
            },
        }],
        "litellm_settings": {"num_retries": 0, "request_timeout": 60, "telemetry": False},
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        "general_settings": {"master_key": MASTER_KEY},
    }


def _wait_until_live(proc: subprocess.Popen[bytes], port: int, gateway: Gateway) -> None:
    """Poll `/health/liveliness` every 0.1 s until it answers 200, the process dies or
    START_TIMEOUT passes (bounded: a readiness probe, not a sleep standing in for one)."""
    url = f"http://127.0.0.1:{port}/health/liveliness"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"LiteLLM proxy exited with {proc.returncode}:\n"
                               + gateway.log_tail())
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"LiteLLM proxy did not answer {url} within {START_TIMEOUT:g} s:\n"
                       + gateway.log_tail())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the proxy's process group (started as its own session), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    with contextlib.suppress(ProcessLookupError):  # stragglers of its group, or a stuck leader
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _base_python() -> str:
    """An interpreter outside any virtualenv, so the new one does not stack on ours."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(base) if base.exists() else sys.executable


def _run(command: list[str], timeout: float) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command[:4])} … failed ({done.returncode}):\n{tail}")
