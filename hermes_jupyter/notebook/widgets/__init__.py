"""Notebook widgets: the live task dashboard (`dashboard()`), an anywidget with no build step.

Imported on demand (`hj.dashboard()`, `%hermes_dashboard`), so `import hermes_jupyter` never
pays for ipywidgets.
"""

from __future__ import annotations

from .dashboard import Dashboard, dashboard

__all__ = ["Dashboard", "dashboard"]
