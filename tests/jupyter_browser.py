"""Shared browser fixtures: a real JupyterLab server, a headless Chromium, notebook helpers.

Use from a test module (the fixtures come in as a plugin, the helpers by import):

    pytest.register_assert_rewrite("tests.jupyter_browser")
    pytest_plugins = ["tests.jupyter_browser"]

    from .jupyter_browser import open_notebook, run_cell, screenshot, wait_for_text  # noqa: E402

    @pytest.mark.browser
    def test_something(page, lab_llm):
        open_notebook(page, "demo.ipynb")
        run_cell(page, "1 + 1")

The server runs with `--LabApp.expose_app_in_browser`, so tests can ask the app itself
(`window.jupyterapp`) when the DOM is not enough. Its kernels talk to `lab_llm`, a loopback
FakeLLM (HERMES_MODEL / OPENAI_BASE_URL / OPENAI_API_KEY are set for the server and its kernels).
Screenshots go to test-artifacts/ (gitignored), with the server log. With CI=true a browser
that cannot start fails the test; locally the tests skip when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hermes_jupyter.testing import FakeLLM

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

__all__ = [
    "ARTIFACTS",
    "LabServer",
    "chromium",
    "jupyter_lab",
    "lab_llm",
    "open_notebook",
    "page",
    "run_cell",
    "screenshot",
    "wait_for_text",
]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_TIMEOUT = 90.0
UI_TIMEOUT_MS = 30_000
NO_SUBSHELL_KERNEL = "python3-nosubshells"
"""Kernelspec of an IPython kernel without "kernel subshells" (tests/no_subshell_kernel.py)."""
_servers: weakref.WeakKeyDictionary[Any, LabServer] = weakref.WeakKeyDictionary()


@dataclass
class LabServer:
    """A running `jupyter lab`: where it listens and how to authenticate."""

    url: str  # http://127.0.0.1:PORT (no trailing slash)
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API; returns the decoded JSON (None for an empty body)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def lab_url(self, path: str = "") -> str:
        return f"{self.url}/lab{('/tree/' + path) if path else ''}?token={self.token}"


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lab_llm() -> Iterator[FakeLLM]:
    """The model every kernel of the test server talks to; script it per test."""
    with FakeLLM() as llm:
        yield llm


@pytest.fixture(scope="session")
def jupyter_lab(lab_llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """`jupyter lab` on 127.0.0.1, a free port and a token, in a temporary root dir."""
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "root"
    root.mkdir()
    env = _server_env(base, lab_llm)
    port = _free_port()
    token = secrets.token_hex(16)
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "jupyter-lab.log").open("wb")
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
        "--ServerApp.allow_root=True",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        f"--LabApp.user_settings_dir={base / 'settings'}",
    ]
    process = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, process)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser).

    Module-scoped on purpose: Playwright's sync API keeps an asyncio loop marked running on
    the main thread until it stops, which would break `asyncio.run` in later test modules.
    """
    in_ci = os.environ.get("CI", "").lower() == "true"
    if not Path(CHROMIUM).exists() and not in_ci:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
    except Exception as err:  # pragma: no cover - depends on the machine
        _cannot_start(f"Playwright could not start: {err}", in_ci)
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as err:  # pragma: no cover - depends on the machine
        playwright.stop()
        _cannot_start(f"Chromium could not start: {err}", in_ci)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture
def page(
    chromium: Browser, jupyter_lab: LabServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser context showing JupyterLab; its last screen is saved on teardown."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    _servers[pg] = jupyter_lab
    pg.goto(jupyter_lab.lab_url())
    pg.wait_for_function("() => window.jupyterapp !== undefined")
    pg.evaluate("() => window.jupyterapp.restored")
    try:
        yield pg
    finally:
        name = _safe_name(request.node.name)
        with contextlib.suppress(Exception):  # a closed page must not hide the test's error
            screenshot(pg, f"{name}-last")
        (ARTIFACTS / f"{name}-console.log").write_text("\n".join(console))
        context.close()


# ---- helpers -------------------------------------------------------------------------------

def open_notebook(page: Page, name: str, kernel: str = "python3") -> Locator:
    """Create `name` (an empty notebook of `kernel`) if needed, open it, wait for an idle kernel.

    Returns the notebook panel. Opening another notebook makes it the active one.
    `kernel` may be NO_SUBSHELL_KERNEL: an IPython kernel without subshells.
    """
    server = _servers[page]
    if not (server.root_dir / name).exists():
        server.api("PUT", f"/api/contents/{name}", {"type": "notebook", "content": {
            "cells": [], "metadata": {"kernelspec": {
                "name": kernel, "display_name": kernel, "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}})
    page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path})", name)
    page.wait_for_function(
        """path => {
            const w = window.jupyterapp.shell.currentWidget;
            const k = w && w.context && w.context.path === path && w.sessionContext
                && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
        }""",
        arg=name,
        timeout=60_000,
    )
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-Cell").first.wait_for()
    return panel


def run_cell(page: Page, code: str, timeout: float = 60_000) -> Locator:
    """Type `code` into a new cell of the active notebook, Shift+Enter, wait for its `[n]:`."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    last = cells.last
    editor = last.locator(".cm-content")
    editor.click()
    if editor.inner_text().strip():
        page.keyboard.press("Escape")
        page.keyboard.press("b")  # a new cell below, selected
        cells.last.locator(".cm-content").click()
    index = cells.count() - 1
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    cell = cells.nth(index)
    prompt = cell.locator(".jp-InputArea-prompt")
    from playwright.sync_api import expect

    expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=timeout)
    return cell


def wait_for_text(page: Page, selector: str, text: str | re.Pattern[str],
                  timeout: float = UI_TIMEOUT_MS) -> Locator:
    """The first visible element matching selector whose text contains `text`."""
    from playwright.sync_api import expect

    locator = page.locator(selector).filter(has_text=text).first
    expect(locator).to_be_visible(timeout=timeout)
    return locator


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the whole page to test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{_safe_name(name)}.png"
    page.screenshot(path=str(path))
    return path


# ---- private -------------------------------------------------------------------------------

def _server_env(base: Path, llm: FakeLLM) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "OPENAI_",
                                                                     "HERMES_"))}
    for name in ("config", "data", "runtime"):
        (base / name).mkdir()
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        HERMES_MODEL="fake-model",
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="sk-test-browser",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    # No "official Jupyter news?" toast: it would cover the notifications under test.
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    path = base / "share"
    # A kernel as they were before ipykernel 7 (no subshells): `open_notebook(kernel=...)`.
    spec = path / "kernels" / NO_SUBSHELL_KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.kernel_class=tests.no_subshell_kernel.NoSubshellKernel"],
        "display_name": "Python 3 (no subshells)", "language": "python"}))
    env["JUPYTER_PATH"] = str(path)
    built = ROOT / "hermes_jupyter" / "labextension"
    if (built / "package.json").exists():
        # The freshest build wins over the copy `pip install` made (first path found wins).
        (path / "labextensions").mkdir(parents=True)
        (path / "labextensions" / "hermes-jupyter").symlink_to(built, target_is_directory=True)
    return env


def _wait_until_ready(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            server.api("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        try:  # the poll interval, which also notices a server that died
            code = server.process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"jupyter lab exited with {code}: see {ARTIFACTS / 'jupyter-lab.log'}")
    raise RuntimeError(f"jupyter lab not ready after {SERVER_START_TIMEOUT:.0f}s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cannot_start(message: str, in_ci: bool) -> None:
    if in_ci or shutil.which("chromium") or Path(CHROMIUM).exists():
        pytest.fail(message)
    pytest.skip(message)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]
