"""Kept for `from hermes_jupyter.parent_tools import session_tools`; the module lives in the
engine (`hermes_jupyter.engine.parent_tools`)."""

from __future__ import annotations

from .engine.parent_tools import session_tools

__all__ = ["session_tools"]
