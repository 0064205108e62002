"""examples/: each runs as a real script, on the demo model and on an endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hermes_jupyter.testing import FakeLLM, Reply

ROOT = Path(__file__).resolve().parent.parent
PARALLEL = ROOT / "examples" / "parallel.py"
ENDPOINT_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HERMES_MODEL", "HERMES_SUBAGENT_MODEL",
                "HERMES_API_KEYS")


def run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENDPOINT_ENV}
    clean["PYTHONPATH"] = os.pathsep.join([str(ROOT), clean.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(PARALLEL)], env={**clean, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("env", "model"), [
    ({"OPENAI_API_KEY": "sk-example-key-000"}, "gpt-4o-mini"),  # the README's command
    ({"OPENAI_API_KEY": "sk-example-key-000", "HERMES_MODEL": "llama3.2"}, "llama3.2"),
])
def test_parallel_runs_on_an_endpoint_without_or_with_hermes_model(env, model, tmp_path):
    with FakeLLM() as llm:
        llm.default = Reply("an answer")
        done = run({**env, "OPENAI_BASE_URL": llm.base_url}, tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "No model set" not in done.stderr
        assert llm.requests and {r.model for r in llm.requests} == {model}
    assert "cap" in done.stdout and "an answer" in done.stdout


def test_parallel_runs_on_the_demo_model_with_no_endpoint(tmp_path):
    done = run({}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[demo model]" in done.stdout
