"""The worker side of tasks that outlive their kernel: `Keeper`, one per `WorkerEngine`.

A kernel attached to an engine calls it at least every 100 ms while it has a task there (the
drain). When no kernel has called for `UNATTENDED_AFTER` seconds (the kernel died, restarted or
detached), the keeper copies every task the engine holds (its facts and its whole op history,
redacted: the keys are never in it) to a dataset on the scheduler, `hermes-<session>-<i>-tasks`,
at most twice a second and only when something changed; so the state, conversation and result
of each task survive the worker too. After `detach_timeout` seconds without a kernel it
cancels the tasks still running. A kernel that re-attaches calls the engine again: the clock
stops.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.secrets import Secrets

__all__ = ["DETACHED", "UNATTENDED_AFTER", "WATCH_S", "Keeper"]

WATCH_S = 0.5  # how often the keeper looks
UNATTENDED_AFTER = 2.0  # seconds without a call from a kernel: no kernel is attached
DETACHED = "detached"  # the cancel reason of a task no kernel re-attached to in time

Records = dict[str, tuple[dict[str, Any], list[tuple[Any, ...]]]]


class Keeper:
    """Watches one engine's contact with its kernel (see the module docstring)."""

    def __init__(self, name: str, detach_timeout: float | None,
                 records: Callable[[bool], Records | None], live: Callable[[], list[str]],
                 cancel: Callable[[str, str], object], secrets: Callable[[], Secrets]) -> None:
        self.name = name  # the dataset holding this engine's tasks on the scheduler
        self.detach_timeout = detach_timeout
        self._records, self._live, self._cancel, self._secrets = records, live, cancel, secrets
        self._last = time.monotonic()
        self._detached = False  # the kernel said so (session.detach): no need to wait
        self._stop = threading.Event()
        self._publishing = threading.Lock()
        self._client: Any = _worker_client()
        self.published = 0  # how many times the tasks were copied to the scheduler
        self.contacts = 0  # calls from an attached kernel: a count that moves means it lives
        self._thread = threading.Thread(target=self._watch, name="hermes-worker-keeper",
                                        daemon=True)
        self._thread.start()

    def contact(self) -> None:
        """A kernel called: it is attached (unless it detached: only `attach` undoes that)."""
        if not self._detached:
            self._last = time.monotonic()
            self.contacts += 1

    def attach(self) -> None:
        """A kernel takes the tasks over: the clock stops, the scheduler's copy goes."""
        self._last = time.monotonic()
        self._detached = False
        self.forget()

    def detach(self) -> None:
        """The kernel leaves on purpose: the clock starts now, the state is copied now."""
        self._last = time.monotonic()
        self._detached = True
        self.publish(everything=True)

    def idle(self) -> float:
        return time.monotonic() - self._last

    def unattended(self) -> bool:
        return self._detached or self.idle() > UNATTENDED_AFTER

    def publish(self, everything: bool = False) -> None:
        """Copy the tasks that changed (all with `everything`) to the scheduler's dataset."""
        if self._client is None:
            return
        with self._publishing:  # one copy at a time: a later one never loses to an older
            records = self._records(everything)
            if records is None or not (records or self.published):  # nothing new to keep
                return
            records = self._secrets().redact_data(records)
            with contextlib.suppress(Exception):  # the scheduler is gone: nowhere to keep it
                self._client.publish_dataset(**{self.name: records}, override=True)
                self.published += 1

    def forget(self) -> None:
        """A kernel took the tasks back (or the session closed): drop the scheduler's copy."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.unpublish_dataset(self.name)

    def close(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        copied = False  # since the kernel left: everything once, then what changes
        while not self._stop.wait(WATCH_S):
            if not self.unattended():
                copied = False
                continue
            if self.detach_timeout is not None and self.idle() > self.detach_timeout:
                for task_id in self._live():
                    self._cancel(task_id, DETACHED)
            self.publish(everything=not copied)
            copied = True


def _worker_client() -> Any:
    """This worker's client to the scheduler (None outside a Dask worker)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None
