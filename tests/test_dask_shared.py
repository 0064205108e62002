"""What the workers of one session share through the kernel: key cooldowns (a 429 seen on one
worker stops the others using that key), and approvals (decided in the kernel, waited for on
the worker). The shared LocalCluster of two worker processes (conftest `client`) runs them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.models import Event
from hermes_jupyter.testing import Fail, FakeLLM, Reply, ToolCall

from .conftest import FAST_RETRY, SECRET

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm(model_server: FakeLLM) -> Iterator[FakeLLM]:
    model_server.reset()
    yield model_server
    model_server.reset()


def _session(client: object, llm: FakeLLM, workspace: object, **options: object) -> hj.Session:
    return hj.Session(model="worker-model", base_url=llm.base_url, workspace=workspace,
                      retry=FAST_RETRY, cluster=client, **{"api_keys": [SECRET], **options})


def test_a_429_on_one_worker_stops_the_other_using_that_key(client, llm, tmp_path):
    limited, spare = SECRET + "-one", SECRET + "-two"
    gate = threading.Event()
    llm.on(lambda r: "job X" in r.first_user_text and (len(r.messages) > 2 or gate.wait(20)),
           Reply(tool_calls=[ToolCall("noop", {})]), Reply(tool_calls=[ToolCall("noop", {})]),
           Reply("x done"))
    llm.on("job Y", Reply("y done"))
    cooled: list[Event] = []
    with _session(client, llm, tmp_path, api_keys=[limited, spare]) as session:
        session.subscribe(lambda e: cooled.append(e) if e.kind == "key_cooldown" else None)
        x = session.delegate("job X")  # its worker's pool: the limited key first, then both
        (first,) = llm.wait_for_requests(1)
        assert first.api_key == limited
        llm.key_rules[limited] = Fail(429, retry_after=30)
        y = session.delegate("job Y")  # the other worker (the first one is busy with X)
        assert y.collect(10).summary == "y done"  # after a 429 on the limited key there
        gate.set()
        assert x.collect(10).summary == "x done"  # never sent the limited key again
        assert len(session._backend.engines) == 2
    keys = [r.api_key for r in llm.requests]
    assert keys.count(limited) == 2, keys  # X's first call (before the limit) and Y's 429
    assert keys.count(spare) == 3
    assert len(cooled) == 1 and all(limited not in repr(e.data) for e in cooled)
