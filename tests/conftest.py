"""Shared fixtures: a loopback OpenAI-compatible server and a session pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.provider import RetryPolicy
from hermes_jupyter.testing import FakeLLM

SECRET = "sk-test-SECRET-0123456789abcdef"
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05)


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
