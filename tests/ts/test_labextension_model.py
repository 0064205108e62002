"""The extension's TypeScript unit tests (labextension/test/*.test.ts, node's test runner).

They cover the panel's pure state logic: snapshot / delta / restart → list, counts, and which
tasks newly finished (one notification each). Running them from pytest keeps them in the one
suite CI runs; `cd labextension && npm test` runs them alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def test_typescript_state_logic():
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("npm is missing: CI must run the extension's TypeScript tests")
        pytest.skip("npm is missing")
    if not (LABEXTENSION / "node_modules" / "typescript").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LABEXTENSION, check=True,
                       capture_output=True, timeout=600)
    result = subprocess.run([npm, "test"], cwd=LABEXTENSION, capture_output=True, text=True,
                            timeout=300)
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout, report
