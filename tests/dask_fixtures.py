"""What the Dask test modules share: one FakeLLM per module (reset around each test) and a
session on the shared LocalCluster (conftest `client`). Import the fixtures by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import FakeLLM

from .conftest import FAST_RETRY, SECRET


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm(model_server: FakeLLM) -> Iterator[FakeLLM]:
    model_server.reset()
    yield model_server
    model_server.reset()


def cluster_session(client: object, llm: FakeLLM, workspace: object,
                    **options: object) -> hj.Session:
    """A session whose tasks run on `client`'s cluster, on the test key (override with
    `api_keys=`)."""
    return hj.Session(model="worker-model", base_url=llm.base_url, workspace=workspace,
                      retry=FAST_RETRY, cluster=client, **{"api_keys": [SECRET], **options})
