"""No secret on any surface after failures of every kind: the data-driven scan (surfaces.py).

One kernel session (the magics' own, through a real IPython shell) and one plain session
against a raw SSE server are driven through every failure the issue names; then every
surface in `SURFACES` is grepped for the planted secrets and their fragments.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import Fail, FakeLLM, Reply, ToolCall

from .conftest import FAST_RETRY
from .surfaces import SURFACES, Probe, scan

KEY = "sk-scan-Zq7Xw3Pv9Lm2Kd8Rt5Yb"  # the pool key, also in OPENAI_API_KEY
PASSWORD = "pw4Hx9QuietRiver"  # inside base_url: http://hermesuser:<it>@host/v1
ENV_TOKEN = "tok3n-DeployXYZZY-77"  # DEPLOY_TOKEN: not registered, scrubbed by its name
NEEDLES = [KEY, PASSWORD, ENV_TOKEN, "Zq7Xw3Pv9", "Lm2Kd8Rt5Yb", "QuietRiver", "DeployXYZZY"]


class MidStreamError(BaseHTTPRequestHandler):
    """Streams one text chunk, then an error event carrying the key, as some servers do."""

    protocol_version = "HTTP/1.1"
    received: list[bytes]

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "working "}}]}
        error = {"error": {"message": f"Invalid key {KEY}", "type": "invalid_request_error"}}
        for event in (chunk, error):
            self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Handler", (MidStreamError,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    server.shutdown()
    server.server_close()


def script_failures(llm: FakeLLM, url: str) -> None:
    done = Reply("done")
    llm.on("raise", Reply(tool_calls=[ToolCall("raise_key")]), done)
    llm.on("return", Reply(tool_calls=[ToolCall("return_key")]), done)
    env = "import os; print(dict(os.environ)); print(os.environ.get('DEPLOY_TOKEN'))"
    llm.on("environ", Reply(tool_calls=[ToolCall("run_python", {"code": env})]), done)
    llm.on("split", Reply(f"Final: {KEY} and {PASSWORD} and {url}.", chunk_size=5))
    llm.on("retry", Fail(500, f"upstream saw {KEY}"), done)
    llm.on("refused", Fail(400, f"bad request for {PASSWORD} with key {KEY}"))
    llm.on("typed", Reply.json({"note": f"the key is {KEY}, the password {PASSWORD}"}))


@pytest.mark.timeout(120)
def test_no_surface_shows_a_secret_after_failures_of_every_kind(
    ip, llm, raw_server, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DEPLOY_TOKEN", ENV_TOKEN)
    url = llm.base_url.replace("//", f"//hermesuser:{PASSWORD}@")
    for line in (f'HermesJupyter.base_url = "{llm.base_url}"',
                 f'HermesJupyter.api_keys = ["{KEY}"]', "HermesJupyter.model = 'parent-model'",
                 "HermesJupyter.journal = True", "HermesJupyter.toolsets = ['python']"):
        ip.run_line_magic("config", line)
    session = hj.get_session()
    session._provider.retry = FAST_RETRY  # fast retries in a test
    session.secrets.add(PASSWORD)  # as an MCP server's header would be registered
    events: list[hj.Event] = []
    session.subscribe(events.append)
    script_failures(llm, url)

    def raise_key() -> str:
        """Fail loudly."""
        raise ValueError(f"bad key {KEY} at {url}")

    def return_key() -> str:
        """Say too much."""
        return f"the key is {KEY}; the endpoint is {url}"

    tools = [raise_key, return_key]
    tasks = [session.delegate(goal, tools=tools) for goal in
             ("raise", "return", "environ", "split", "retry", "refused")]
    note = {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}
    tasks.append(session.delegate("typed", output_type=note))  # result.data, journal data
    raw_url, received = raw_server
    raw = hj.Session(model="m", base_url=raw_url, api_keys=[KEY], workspace=tmp_path,
                     journal=tmp_path / "raw.sqlite", retry=FAST_RETRY)
    raw.subscribe(events.append)
    tasks.append(raw.delegate("stream an error"))
    # credentials inside base_url are refused, in a line that does not repeat them
    with pytest.raises(hj.InvalidArgument) as refused:
        hj.Session(model="m", base_url=url, api_keys=[KEY], workspace=tmp_path)
    assert [n for n in NEEDLES if n in str(refused.value)] == []
    for task in tasks:
        task.collect(60)
    llm.key_rules[KEY] = Fail(401, f"Incorrect API key provided: {KEY}")  # last: it kills the key
    tasks.append(session.delegate("rejected"))
    tasks[-1].collect(60)
    ends = {t.goal: (t.state.value, t.result.exit_reason.value) for t in tasks if t.result}
    assert ends["split"] == ends["typed"] == ("succeeded", "completed")
    assert "***" in next(t for t in tasks if t.goal == "typed").result.data["note"]
    assert ends["refused"] == ("failed", "provider_error")
    assert ends["stream an error"][0] == ends["rejected"][0] == "failed"
    assert "MemoryError" not in str(ends)
    for s in (session, raw):
        assert s.journal is not None
        s.journal.flush()
    probe = Probe([session, raw], [llm], events, lambda: caplog.text, received, ip,
                  [tmp_path / ".hermes" / "tasks.sqlite", tmp_path / "raw.sqlite"])
    # the scan looks where it should: each failure left its (masked) trace there
    assert "***" in SURFACES["results (collect)"](probe)
    assert "run_python" in SURFACES["recorded model requests"](probe)
    assert "t1" in SURFACES["magics output"](probe)
    assert [name for name, surface in SURFACES.items() if not surface(probe).strip()] == []
    assert scan(probe, NEEDLES) == {}
    raw.close()
