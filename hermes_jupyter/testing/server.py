"""`FakeLLM`: a real OpenAI-compatible HTTP server on 127.0.0.1, scripted per request.

Tests talk to it through the real SDK and a real socket, so streaming, retries, timeouts and
dropped connections behave as they do against the API. Everything the server sees is recorded,
and the `wait_*` methods block on a condition, so tests synchronise without sleeping.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeAlias

from ._http import FakeLLMServer
from .records import RecordedRequest
from .replies import Drop, Fail, Outcome, Raw, Reply

__all__ = ["FakeLLM", "Match", "Responder"]

Match: TypeAlias = str | Callable[[RecordedRequest], bool]
"""A substring of the first user message, or a predicate on the whole request."""
Responder: TypeAlias = Callable[[RecordedRequest], Outcome | None]
"""Computes the outcome of a request; `None` passes it on to the queues."""

_log = logging.getLogger(__name__)


class FakeLLM:
    """A scripted chat-completions server; `with FakeLLM() as llm:` starts and stops it.

    `refuse_fields`: request fields this server does not take, as servers without structured
    output refuse `response_format`: a request carrying one gets a 400 naming it (recorded
    like any other). Then, per request, the first of these that yields something wins:
    `key_rules[api_key]`,
    `responder(request)`, the first matching `on` rule whose queue is not empty, the global
    `script` queue, `default`. With nothing left (and `default = None`) the request gets a 500
    whose message says the script is used up.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default: Outcome | None = Reply(text="ok")
        self.responder: Responder | None = None
        self.key_rules: dict[str, Outcome] = {}
        self.refuse_fields: set[str] = set()
        self._address = (host, port)
        self._cond = threading.Condition()
        self._queue: deque[Outcome] = deque()
        self._rules: list[_Rule] = []
        self._requests: list[RecordedRequest] = []
        self._models: dict[str, None] = {}  # ordered set of the models asked for
        self._chunks_sent = 0
        self._active_streams = 0
        self._completion_ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._server: FakeLLMServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        """Bind the port and serve from a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError(f"FakeLLM is already serving at {self.base_url}")
        server = FakeLLMServer(self._address, self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeLLM:{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving: abort open streams, close every connection, join the threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.stopping.set()  # wakes every delay at once, so slow streams end now
        server.shutdown()
        server.close_connections(timeout)
        server.server_close()
        thread.join(timeout)

    def __enter__(self) -> FakeLLM:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("FakeLLM is not running; call start() or use `with FakeLLM()`")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as `OpenAI(base_url=...)`."""
        return f"http://{self._address[0]}:{self.port}/v1"

    # -- scripting --------------------------------------------------------------------------

    def script(self, *replies: Outcome) -> None:
        """Queue replies for requests that no `on` rule takes."""
        _check_outcomes(replies)
        with self._cond:
            self._queue.extend(replies)

    def on(self, match: Match, *replies: Outcome) -> None:
        """Queue replies for requests that `match` selects.

        A string matches as a substring of the first user message; a callable gets the
        `RecordedRequest`. Calling `on` again with the same match extends that rule's queue.
        """
        if not (isinstance(match, str) or callable(match)):
            raise TypeError(f"match must be a str or a callable, not {type(match).__name__}")
        _check_outcomes(replies)
        with self._cond:
            for rule in self._rules:
                if rule.match is match or (isinstance(match, str) and rule.match == match):
                    rule.queue.extend(replies)
                    return
            self._rules.append(_Rule(match, deque(replies)))

    @property
    def pending(self) -> int:
        """Scripted replies not used yet, over all queues (so a test can assert all were used)."""
        with self._cond:
            return len(self._queue) + sum(len(rule.queue) for rule in self._rules)

    def reset(self) -> None:
        """Forget queues, `on` rules, key rules, recorded requests and counters.

        `default`, `responder` and `refuse_fields` stay; `active_streams` keeps counting
        streams still open.
        """
        with self._cond:
            self._queue.clear()
            self._rules.clear()
            self.key_rules.clear()
            self._requests.clear()
            self._models.clear()
            self._chunks_sent = 0
            self._completion_ids = itertools.count(1)
            self._call_ids = itertools.count(1)
            self._cond.notify_all()

    # -- observing --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the chat-completions requests received, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def chunks_sent(self) -> int:
        """Text and tool-call chunks written so far, over all streams."""
        with self._cond:
            return self._chunks_sent

    @property
    def active_streams(self) -> int:
        """Streaming responses currently open."""
        with self._cond:
            return self._active_streams

    def wait_for_requests(self, n: int, timeout: float = 10) -> list[RecordedRequest]:
        """Block until at least `n` requests arrived; returns them all."""
        self._wait(lambda: len(self._requests) >= n, timeout, f"{n} requests")
        return self.requests

    def wait_for_chunks(self, n: int, timeout: float = 10) -> None:
        """Block until at least `n` chunks were written, i.e. a stream is mid-flight."""
        self._wait(lambda: self._chunks_sent >= n, timeout, f"{n} chunks")

    def wait_idle(self, timeout: float = 10) -> None:
        """Block until no stream is open."""
        self._wait(lambda: self._active_streams == 0, timeout, "no open stream")

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"<FakeLLM {where} requests={len(self._requests)} pending={self.pending}>"

    # -- used by the request handler ----------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._models.setdefault(request.model)
            self._cond.notify_all()

    def _select(self, request: RecordedRequest) -> Outcome | str:
        """The outcome for `request`, or the message of the 500 to send instead."""
        refused = sorted(f for f in set(self.refuse_fields) if f in request.body)
        if refused:
            return Fail(400, message=f"Unrecognized request argument supplied: {refused[0]}",
                        type="invalid_request_error", code="unrecognized_argument")
        keyed = self.key_rules.get(request.api_key)
        if keyed is not None:
            return keyed
        try:
            responder = self.responder
            answer = responder(request) if responder is not None else None
            if answer is not None:
                _check_outcomes((answer,))
                return answer
            with self._cond:
                rules = list(self._rules)
            for rule in rules:  # user callables run outside the lock: they may call us
                if rule.matches(request):
                    with self._cond:
                        if rule.queue:
                            return rule.queue.popleft()
        except Exception as exc:
            _log.exception("FakeLLM responder or match rule failed")
            return f"FakeLLM: the responder or an `on` match raised {exc!r}"
        with self._cond:
            if self._queue:
                return self._queue.popleft()
        if self.default is not None:
            return self.default
        return (
            "FakeLLM has no reply for this request: the script is used up and llm.default "
            "is None. Queue more with llm.script(...) or llm.on(...), or set llm.default."
        )

    def _next_completion_id(self) -> str:
        return f"chatcmpl-fake{next(self._completion_ids)}"

    def _next_call_id(self) -> str:
        return f"call_{next(self._call_ids)}"

    def _count_chunk(self) -> None:
        with self._cond:
            self._chunks_sent += 1
            self._cond.notify_all()

    @contextmanager
    def _streaming(self) -> Iterator[None]:
        with self._cond:
            self._active_streams += 1
        try:
            yield
        finally:
            with self._cond:
                self._active_streams -= 1
                self._cond.notify_all()

    def _model_ids(self) -> list[str]:
        with self._cond:
            return ["fake-model", *(m for m in self._models if m != "fake-model")]

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"FakeLLM: waited {timeout}s for {what}; saw {len(self._requests)} requests, "
                    f"{self._chunks_sent} chunks, {self._active_streams} open streams"
                )


@dataclass
class _Rule:
    match: Match
    queue: deque[Outcome] = field(default_factory=deque)

    def matches(self, request: RecordedRequest) -> bool:
        if isinstance(self.match, str):
            return self.match in request.first_user_text
        return bool(self.match(request))


def _check_outcomes(outcomes: tuple[object, ...]) -> None:
    for outcome in outcomes:
        if not isinstance(outcome, Reply | Fail | Drop | Raw):
            raise TypeError(f"expected a Reply, Fail, Drop or Raw, got {outcome!r}")
