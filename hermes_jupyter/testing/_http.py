"""The HTTP side of `FakeLLM`: a threading server and the chat-completions request handler.

Streams use chunked transfer encoding, so a client can tell a dropped connection (an
incomplete body) from a finished one, and connections stay alive between requests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import sys
import threading
import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from . import sse
from .records import RecordedRequest
from .replies import Drop, Fail, Outcome, Raw, Reply


class Script(Protocol):
    """What the request handler asks of `FakeLLM` (which implements it)."""

    def _record(self, request: RecordedRequest) -> None: ...
    def _select(self, request: RecordedRequest) -> Outcome | str: ...
    def _next_completion_id(self) -> str: ...
    def _next_call_id(self) -> str: ...
    def _count_chunk(self) -> None: ...
    def _streaming(self) -> AbstractContextManager[None]: ...
    def _model_ids(self) -> list[str]: ...


__all__ = ["FakeLLMServer"]

_log = logging.getLogger(__name__)


class FakeLLMServer(ThreadingHTTPServer):
    """One thread per connection; tracks connections so `stop()` can close them all."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default backlog of 5 refuses bursts of parallel clients

    def __init__(self, address: tuple[str, int], llm: Script) -> None:
        self.llm = llm
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            if self.stopping.is_set():
                self.shutdown_request(request)
                return
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self, timeout: float) -> None:
        """Hang up on every open connection and join its thread, within `timeout` in total."""
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)  # unblocks a thread waiting in recv or send
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A peer that went away is routine (no traceback on stderr); anything else is our bug.
        if not isinstance(sys.exc_info()[1], OSError):
            _log.exception("FakeLLM failed to handle a request from %s", client_address)


class _Stopped(Exception):
    """The server is stopping: abandon the response and hang up."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each SSE chunk must leave the moment it is written
    server_version = "hermes-jupyter-fake-llm"
    server: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read stderr; a line per request would drown it

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        if _route(self.path).endswith("/models"):
            data = [
                {"id": model, "object": "model", "created": 0, "owned_by": "hermes-jupyter"}
                for model in self.server.llm._model_ids()
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(
                404, f"FakeLLM serves no {self.path}", "invalid_request_error", "unknown_url"
            )

    def do_POST(self) -> None:
        path = _route(self.path)
        if not path.endswith("/chat/completions"):
            self.close_connection = True  # the body stays unread, so the connection is spent
            self._send_error(
                404, f"FakeLLM serves no {self.path}", "invalid_request_error", "unknown_url"
            )
            return
        llm = self.server.llm
        try:
            request = self._read_request(path)
            if request is None:
                return
            llm._record(request)
            outcome = llm._select(request)
            if isinstance(outcome, str):
                self._send_error(500, outcome, "server_error")
            elif isinstance(outcome, Fail):
                self._fail(outcome)
            elif isinstance(outcome, Drop):
                self._drop(outcome, request)
            elif isinstance(outcome, Raw):
                self._raw(outcome)
            elif request.stream:
                self._stream(outcome, request)
            else:
                self._wait(outcome.first_delay)
                counts = sse.usage(outcome, request.messages)
                meta = self._meta(request)
                self._send_json(200, sse.completion(meta, outcome, self._call_ids(outcome), counts))
        except (_Stopped, OSError):  # stopping, or the client went away
            self._hang_up()

    # -- outcomes ---------------------------------------------------------------------------

    def _stream(self, reply: Reply, request: RecordedRequest) -> None:
        meta = self._meta(request)
        deltas = sse.reply_deltas(reply, self._call_ids(reply))
        llm = self.server.llm
        with llm._streaming():
            self._start_events()
            self._wait(reply.first_delay)
            role = {"role": "assistant", "content": "" if reply.text else None, "refusal": None}
            self._send_event(sse.chunk(meta, role))
            for i, delta in enumerate(deltas):
                if i:
                    self._wait(reply.delay)
                self._send_event(sse.chunk(meta, delta))
                llm._count_chunk()
            if not reply.truncate:
                self._send_event(sse.chunk(meta, {}, reply.effective_finish_reason))
            if meta.include_usage:
                self._send_event(sse.usage_chunk(meta, sse.usage(reply, request.messages)))
            self._write_chunk(sse.DONE)
            self._write_chunk(b"")  # the zero-length chunk ends the body

    def _drop(self, drop: Drop, request: RecordedRequest) -> None:
        if not request.stream:
            self._wait(drop.delay)
            self._hang_up()
            return
        meta = self._meta(request)
        llm = self.server.llm
        with llm._streaming():
            self._start_events()
            self._send_event(sse.chunk(meta, {"role": "assistant", "content": "", "refusal": None}))
            for _ in range(drop.after_chunks):
                self._wait(drop.delay)
                self._send_event(sse.chunk(meta, {"content": drop.text}))
                llm._count_chunk()
            self._wait(drop.delay)
            self._hang_up()  # inside _streaming: the stream counts as open until we hung up

    def _raw(self, raw: Raw) -> None:
        llm = self.server.llm
        with llm._streaming():
            self.send_response(raw.status)
            for name, value in raw.headers.items():
                self.send_header(name, value)
            pieces = [p.encode() if isinstance(p, str) else p for p in raw.pieces]
            if not raw.chunked:
                body = b"".join(p for p in pieces if isinstance(p, bytes))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in pieces:
                if isinstance(piece, float):
                    self._wait(piece)
                elif piece:
                    self._write_chunk(piece)
                    llm._count_chunk()
            if raw.end == "hang":  # until stop(): the client must give up on its own
                self.server.stopping.wait()
                raise _Stopped
            if raw.end == "drop":
                self._hang_up()
            else:
                self._write_chunk(b"")

    def _fail(self, fail: Fail) -> None:
        self._wait(fail.delay)
        headers = {}
        if fail.retry_after is not None:
            headers["Retry-After"] = f"{fail.retry_after:g}"
        self._send_json(fail.status, sse.error_body(fail), headers)

    # -- plumbing ---------------------------------------------------------------------------

    def _read_request(self, path: str) -> RecordedRequest | None:
        """The parsed request, or None after answering 400 for a malformed one."""
        try:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = self._read_chunked_body()
            else:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except ValueError:  # a bad length or chunk size: where the body ends is unknown
            self.close_connection = True
            self._send_error(400, "malformed request body framing", "invalid_request_error")
            return None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        problem = _problem(body)
        if problem:
            self._send_error(400, problem, "invalid_request_error")
            return None
        auth = self.headers.get("Authorization", "")
        tools = body.get("tools")
        return RecordedRequest(
            api_key=auth[7:].strip() if auth[:7].lower() == "bearer " else "",
            model=body["model"],
            messages=body["messages"],
            tools=tools if isinstance(tools, list) else None,
            stream=body.get("stream") is True,
            body=body,
            headers={name.lower(): value for name, value in self.headers.items()},
            path=path,
            received_at=time.monotonic(),
        )

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size < 0:
                raise ValueError("negative chunk size")
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _meta(self, request: RecordedRequest) -> sse.CompletionMeta:
        options = request.body.get("stream_options")
        include_usage = (
            request.stream and isinstance(options, dict) and bool(options.get("include_usage"))
        )
        return sse.CompletionMeta(
            id=self.server.llm._next_completion_id(),
            model=request.model,
            created=int(time.time()),
            include_usage=include_usage,
        )

    def _call_ids(self, reply: Reply) -> list[str]:
        llm = self.server.llm
        return [call.id or llm._next_call_id() for call in reply.tool_calls]

    def _wait(self, seconds: float) -> None:
        """Sleep that `stop()` interrupts, so no delay can hold the server open."""
        stopping = self.server.stopping
        if stopping.wait(seconds) if seconds > 0 else stopping.is_set():
            raise _Stopped

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_event(self, obj: dict[str, Any]) -> None:
        if self.server.stopping.is_set():
            raise _Stopped
        self._write_chunk(sse.encode_event(obj))

    def _write_chunk(self, data: bytes) -> None:
        # One write per chunk: with Nagle off it goes out as one segment, at once.
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")  # so the client will not reuse it
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, kind: str, code: str = "") -> None:
        fail = Fail(status, message, type=kind, code=code or None)
        self._send_json(status, sse.error_body(fail))

    def _hang_up(self) -> None:
        """Close the connection at once, mid-response if need be (FIN, not a clean end)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _route(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/")


def _problem(body: Any) -> str | None:
    """Why OpenAI would answer 400 to this body, or None; catches client bugs early."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    if not all(isinstance(m, dict) for m in messages):
        return "every item of 'messages' must be an object"
    return None
