"""The offline demo model: a loopback `FakeLLM` whose responder acts like a small agent."""

from __future__ import annotations

from .model import DemoAgent, DemoSession, demo_session

__all__ = ["DemoAgent", "DemoSession", "demo_session"]
