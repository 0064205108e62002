"""Shared fixtures: a loopback OpenAI-compatible server and a session pointed at it."""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import hermes_jupyter as hj
from hermes_jupyter.engine.provider import RetryPolicy
from hermes_jupyter.notebook import kernel as current
from hermes_jupyter.testing import FakeLLM

SECRET = "sk-test-SECRET-0123456789abcdef"
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="session")
def client() -> Iterator[object]:
    """A Dask LocalCluster of two worker processes, shared by every Dask test, and its
    client."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=2,
                                       dashboard_address=None)
    dask_client = distributed.Client(cluster)
    yield dask_client
    dask_client.close()
    cluster.close()


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def session(llm: FakeLLM, tmp_path) -> Iterator[hj.Session]:
    s = hj.Session(
        model="parent-model",
        base_url=llm.base_url,
        api_keys=[SECRET],
        workspace=tmp_path,
        retry=FAST_RETRY,
    )
    yield s
    s.close()


ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HERMES_MODEL", "HERMES_SUBAGENT_MODEL",
       "HERMES_API_KEYS")


@pytest.fixture
def ip(monkeypatch, tmp_path) -> Iterator[InteractiveShell]:
    """A fresh shell with the extension loaded, no keys in the environment, cwd = tmp_path."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    current._reset()
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    # Results are checked as objects; their echo on stdout would only blur what was printed.
    shell.displayhook.write_output_prompt = lambda: None  # type: ignore[method-assign]
    shell.displayhook.write_format_data = lambda *a, **k: None  # type: ignore[method-assign]
    shell.run_line_magic("load_ext", "hermes_jupyter")
    yield shell
    current._reset()
    InteractiveShell.clear_instance()
    # Its exit hook would run a full gc.collect() per shell when pytest ends: seconds each.
    atexit.unregister(shell.atexit_operations)


@pytest.fixture
def live(ip, llm, capsys) -> InteractiveShell:
    """The shell's session pointed at the FakeLLM with a secret-looking key."""
    ip.run_line_magic("config", f'HermesJupyter.base_url = "{llm.base_url}"')
    ip.run_line_magic("config", f'HermesJupyter.api_keys = ["{SECRET}"]')
    ip.run_line_magic("config", "HermesJupyter.model = 'parent-model'")
    capsys.readouterr()
    return ip
