"""nbval runs these notebooks on the offline demo model, whatever keys this machine has.

Imported by pytest before it starts the notebooks' kernels, which inherit this environment.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HERMES_MODEL", "HERMES_SUBAGENT_MODEL",
              "HERMES_API_KEYS"):
    os.environ.pop(_name, None)
# The checkout is importable in the kernels even when it is not pip-installed, and no
# personal IPython profile (extensions, startup files) changes what the notebooks print.
_root = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_root, os.environ.get("PYTHONPATH")) if p)
os.environ["IPYTHONDIR"] = tempfile.mkdtemp(prefix="hermes-nbval-ipython-")
atexit.register(shutil.rmtree, os.environ["IPYTHONDIR"], ignore_errors=True)
