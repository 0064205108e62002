"""An IPython kernel that looks like kernels before ipykernel 7: no "kernel subshells".

The browser tests start it (kernelspec `python3-nosubshells`, see tests/jupyter_browser.py) to
check what the JupyterLab panel says where comms cannot bypass a busy cell.
"""

from __future__ import annotations

from typing import Any

from ipykernel.ipkernel import IPythonKernel


class NoSubshellKernel(IPythonKernel):
    """ipykernel without the "kernel subshells" feature in its kernel_info reply."""

    @property
    def kernel_info(self) -> dict[str, Any]:
        info: dict[str, Any] = dict(super().kernel_info)
        info["supported_features"] = [
            f for f in info.get("supported_features", []) if f != "kernel subshells"
        ]
        return info
