"""FakeLLM against the real openai SDK (sync, async, raw) and raw httpx, over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from hermes_jupyter.testing import (
    Drop,
    Fail,
    FakeLLM,
    RecordedRequest,
    Reply,
    ScriptedAgent,
    ToolCall,
)

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "hello"}]
TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}},
]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def client(llm: FakeLLM) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def stream(
    client: openai.OpenAI, content: str = "hello", **kwargs: Any
) -> list[ChatCompletionChunk]:
    """A streamed completion for one user message, read to the end."""
    messages = [{"role": "user", "content": content}]
    return list(client.chat.completions.create(model="m", messages=messages, stream=True, **kwargs))


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_events(llm: FakeLLM, **body: Any) -> tuple[httpx.Response, list[str]]:
    """POST a streaming request with httpx and return the `data:` payloads."""
    body = {"model": "m", "messages": USER, "stream": True, **body}
    with httpx.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response:
        lines = list(response.iter_lines())
    assert all(line.startswith("data: ") for line in lines[::2]), lines
    assert all(line == "" for line in lines[1::2]), "every event ends with a blank line"
    return response, [line.removeprefix("data: ") for line in lines[::2]]


# -- wire format ------------------------------------------------------------------------------


def test_streamed_text_reassembles(llm: FakeLLM, client: openai.OpenAI) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    llm.script(Reply(text, chunk_size=5))
    chunks = stream(client)
    assert text_of(chunks) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert llm.chunks_sent == 9  # ceil(44 / 5) text chunks; role and finish chunks not counted


def test_tool_call_deltas_reassemble(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(
        Reply(
            text="Let me look.",
            tool_calls=[
                ToolCall("read_file", {"path": "notes/a.md", "limit": 40}),
                ToolCall("write_file", '{"path": "b', id="call_custom"),  # malformed on purpose
            ],
        )
    )
    chunks = stream(client)
    calls: dict[int, dict[str, str]] = {}
    pieces: dict[int, int] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or ():
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                assert not call["id"], "only the first delta of a call carries its id"
                call["id"], call["name"] = delta.id, delta.function.name
                assert delta.type == "function"
            call["arguments"] += delta.function.arguments or ""
            pieces[delta.index] = pieces.get(delta.index, 0) + bool(delta.function.arguments)
    assert text_of(chunks) == "Let me look."
    assert json.loads(calls[0]["arguments"]) == {"path": "notes/a.md", "limit": 40}
    assert calls[0]["name"] == "read_file" and calls[0]["id"].startswith("call_")
    assert calls[1] == {"id": "call_custom", "name": "write_file", "arguments": '{"path": "b'}
    assert pieces[0] >= 2 and pieces[1] >= 2, "arguments must arrive in several pieces"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("include_usage", [True, False])
def test_usage_chunk_only_when_asked(
    llm: FakeLLM, client: openai.OpenAI, include_usage: bool
) -> None:
    llm.script(Reply("abc", usage=(11, 5)))
    chunks = stream(client, stream_options={"include_usage": include_usage})
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert usage_chunks == [chunks[-1]] and chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 5)
        assert chunks[-1].usage.total_tokens == 16
        assert chunks[-2].choices[0].finish_reason == "stop"
    else:
        assert usage_chunks == [] and all(c.choices for c in chunks)


def test_raw_stream_events_validate_as_sdk_chunks(llm: FakeLLM) -> None:
    llm.script(Reply("raw text", chunk_size=3, tool_calls=[ToolCall("read_file", {"a": 1})]))
    response, events = raw_events(llm, stream_options={"include_usage": True})
    assert response.headers["content-type"] == "text/event-stream"
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(e) for e in events[:-1]]  # strict parse
    assert text_of(chunks) == "raw text"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == len("hello") // 4


def test_non_streaming_completion(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Reply("sixteen chars!!!", tool_calls=[ToolCall("read_file", {"path": "x"})]))
    completion = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "twelve chars"}]
    )
    assert isinstance(completion, ChatCompletion)
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", "sixteen chars!!!")
    assert choice.finish_reason == "tool_calls" and completion.model == "gpt-test"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("read_file", '{"path": "x"}')
    assert completion.usage is not None
    # prompt: 12 chars // 4; completion: 16 // 4 + 13 argument chars // 4
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 7)

    llm.script(Reply("plain"))
    body = {"model": "m", "messages": USER}
    raw = httpx.post(f"{llm.base_url}/chat/completions", json=body)
    parsed = ChatCompletion.model_validate(raw.json())  # strict: every required field present
    assert parsed.choices[0].message.content == "plain"


def test_async_client_streams(llm: FakeLLM) -> None:
    llm.script(Reply("async works", chunk_size=2), Reply("second"))

    async def main() -> tuple[str, str | None]:
        async with openai.AsyncOpenAI(
            base_url=llm.base_url, api_key="sk-test", max_retries=0
        ) as sdk:
            parts = []
            events = await sdk.chat.completions.create(model="m", messages=USER, stream=True)
            async for chunk in events:
                parts.append(chunk.choices[0].delta.content or "")
            plain = await sdk.chat.completions.create(model="m", messages=USER)
            return "".join(parts), plain.choices[0].message.content

    assert asyncio.run(main()) == ("async works", "second")


def test_with_streaming_response_raw_lines(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Reply("raw lines", chunk_size=4))
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=USER, stream=True
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(line[6:]) for line in lines[:-1]]
    assert text_of(chunks) == "raw lines"


def test_chunks_reach_the_client_as_they_are_written(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Reply("abcde", chunk_size=1, delay=0.2))
    sent_when_first_arrived = None
    for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            sent_when_first_arrived = llm.chunks_sent
            break
    # A buffering server would have written all 5 chunks before the client saw one.
    assert sent_when_first_arrived is not None and sent_when_first_arrived < 5


# -- failures ---------------------------------------------------------------------------------


def test_rate_limit_with_retry_after(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Fail(429, "slow down", retry_after=7))
    with pytest.raises(openai.RateLimitError) as caught:
        stream(client)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_401_is_an_authentication_error(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Fail(401, "bad key"))
    with pytest.raises(openai.AuthenticationError, match="bad key"):
        client.chat.completions.create(model="m", messages=USER)


def test_drop_mid_stream_raises_in_the_sdk(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Drop(after_chunks=2, text="part "))
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "part part "
    llm.wait_idle()
    assert llm.chunks_sent == 2


def test_drop_is_a_protocol_error_for_raw_httpx(llm: FakeLLM) -> None:
    llm.script(Drop(after_chunks=1))
    body = {"model": "m", "messages": USER, "stream": True}
    lines = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response,
    ):
        lines.extend(response.iter_lines())
    assert not any("[DONE]" in line for line in lines)


def test_drop_without_stream_hangs_up_before_responding(
    llm: FakeLLM, client: openai.OpenAI
) -> None:
    llm.script(Drop())
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER)


def test_truncate_ends_without_finish_reason(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Reply("cut short", chunk_size=3, truncate=True))
    chunks = stream(client)
    assert text_of(chunks) == "cut short"
    assert all(c.choices[0].finish_reason is None for c in chunks)
    llm.script(Reply("cut", truncate=True))
    assert raw_events(llm)[1][-1] == "[DONE]"  # still a clean end


def test_default_none_gives_a_clear_500(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.default = None
    with pytest.raises(openai.InternalServerError, match="script is used up"):
        client.chat.completions.create(model="m", messages=USER)


def test_malformed_requests_get_400(llm: FakeLLM) -> None:
    url = f"{llm.base_url}/chat/completions"
    assert httpx.post(url, content=b"{not json").status_code == 400
    response = httpx.post(url, json={"model": "m", "messages": []})
    assert response.status_code == 400 and "messages" in response.json()["error"]["message"]
    assert httpx.post(f"{llm.base_url}/embeddings", json={}).status_code == 404
    assert llm.requests == []


# -- scripting --------------------------------------------------------------------------------


def test_on_routes_two_concurrent_requests(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.on("alpha", Reply("for alpha", chunk_size=2))
    llm.on(lambda r: "beta" in r.first_user_text, Reply("for beta", chunk_size=2))
    both_open = threading.Barrier(2, timeout=5)

    def ask(content: str) -> str:
        parts = []
        events = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": content}], stream=True
        )
        for i, chunk in enumerate(events):
            if i == 1:
                both_open.wait()  # both streams are mid-flight at the same time
            parts.append(chunk.choices[0].delta.content or "")
        return "".join(parts)

    with ThreadPoolExecutor(2) as pool:
        beta = pool.submit(ask, "task beta please")
        alpha = pool.submit(ask, "task alpha please")
        assert (alpha.result(10), beta.result(10)) == ("for alpha", "for beta")


def test_queue_order_and_fallthrough(llm: FakeLLM, client: openai.OpenAI) -> None:
    def ask(content: str) -> str | None:
        messages = [{"role": "user", "content": content}]
        reply = client.chat.completions.create(model="m", messages=messages)
        return reply.choices[0].message.content

    llm.script(Reply("global 1"), Reply("global 2"))
    llm.on("special", Reply("special 1"))
    llm.on("special", Reply("special 2"))  # same match: extends the rule's queue
    assert llm.pending == 4
    assert ask("special") == "special 1"
    assert ask("other") == "global 1"
    assert ask("special") == "special 2"
    assert ask("special") == "global 2"  # rule used up: falls through to the global queue
    assert ask("special") == "ok"  # then the default
    assert llm.pending == 0


def test_key_rules_apply_before_queues(llm: FakeLLM) -> None:
    llm.key_rules["sk-limited"] = Fail(429, retry_after=30)
    llm.key_rules["sk-revoked"] = Fail(401)
    llm.script(Reply("queued"))
    kwargs: dict[str, Any] = {"base_url": llm.base_url, "max_retries": 0}
    with openai.OpenAI(api_key="sk-limited", **kwargs) as limited:
        with pytest.raises(openai.RateLimitError):
            limited.chat.completions.create(model="m", messages=USER)
        with pytest.raises(openai.RateLimitError):
            limited.chat.completions.create(model="m", messages=USER)
    with (
        openai.OpenAI(api_key="sk-revoked", **kwargs) as revoked,
        pytest.raises(openai.AuthenticationError),
    ):
        revoked.chat.completions.create(model="m", messages=USER)
    with openai.OpenAI(api_key="sk-good", **kwargs) as good:
        reply = good.chat.completions.create(model="m", messages=USER)
    assert reply.choices[0].message.content == "queued"
    assert [r.api_key for r in llm.requests] == ["sk-limited"] * 2 + ["sk-revoked", "sk-good"]


def test_responder_wins_over_queues_unless_it_returns_none(
    llm: FakeLLM, client: openai.OpenAI
) -> None:
    llm.responder = lambda r: Reply("from responder") if "dyn" in r.first_user_text else None
    llm.script(Reply("from queue"))
    assert text_of(stream(client, "dyn")) == "from responder"
    assert text_of(stream(client, "static")) == "from queue"


def test_scripted_agent_loops_through_tools(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.responder = ScriptedAgent(rounds=2, chunks=3)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for _ in range(2):
        reply = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        calls = reply.choices[0].message.tool_calls
        assert calls is not None and calls[0].function.name == "read_file"
        messages.append(reply.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "data"})
    chunks = list(
        client.chat.completions.create(model="m", messages=messages, tools=TOOLS, stream=True)
    )
    assert text_of(chunks) == "t000000 t000001 t000002 "
    assert llm.chunks_sent == 3


def test_invalid_script_items_are_rejected(llm: FakeLLM) -> None:
    with pytest.raises(TypeError):
        llm.script("not a reply")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        Reply("x", chunk_size=0)
    with pytest.raises(TypeError):
        ToolCall("f", arguments=[1, 2])  # type: ignore[arg-type]


# -- recording and waiting --------------------------------------------------------------------


def test_requests_are_recorded(llm: FakeLLM, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-a", messages=USER, tools=TOOLS)
    stream(client, "second")
    first, second = llm.requests
    assert isinstance(first, RecordedRequest)
    assert (first.api_key, first.model, first.messages) == ("sk-test", "gpt-a", USER)
    assert first.tools == TOOLS and first.stream is False and first.body["model"] == "gpt-a"
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert second.stream is True and second.tools is None and second.first_user_text == "second"
    assert first.received_at <= second.received_at
    assert "gpt-a" in [m.id for m in client.models.list()]


def test_wait_for_requests_with_threads(llm: FakeLLM, client: openai.OpenAI) -> None:
    with pytest.raises(TimeoutError):
        llm.wait_for_requests(1, timeout=0.05)
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(lambda: [stream(client, f"req {i}") for i in range(3)])
        seen = llm.wait_for_requests(3, timeout=10)
        done.result(10)
    assert [r.first_user_text for r in seen] == ["req 0", "req 1", "req 2"]


def test_wait_for_chunks_and_idle(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Reply("x" * 40, chunk_size=1, delay=0.01))
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(stream, client)
        llm.wait_for_chunks(3)
        assert llm.active_streams == 1 and llm.chunks_sent < 40
        llm.wait_idle()
        assert text_of(done.result(10)) == "x" * 40
    assert (llm.active_streams, llm.chunks_sent) == (0, 40)
    with pytest.raises(TimeoutError):
        llm.wait_for_chunks(41, timeout=0.05)


def test_reset_clears_script_and_records(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.script(Reply("a"), Reply("b"))
    llm.on("x", Reply("c"))
    llm.key_rules["sk-test"] = Reply("keyed")
    stream(client)
    llm.reset()
    assert (llm.requests, llm.pending, llm.chunks_sent, llm.key_rules) == ([], 0, 0, {})
    assert text_of(stream(client, "x")) == "ok"


# -- load, shutdown, process ------------------------------------------------------------------


def test_200_parallel_streams_all_succeed(llm: FakeLLM, client: openai.OpenAI) -> None:
    n = 200
    llm.default = Reply("parallel reply", chunk_size=4)
    start_together = threading.Barrier(n, timeout=10)

    def one(i: int) -> str:
        start_together.wait()
        return text_of(stream(client, f"req {i}"))

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    assert results == ["parallel reply"] * n
    assert len(llm.requests) == n


def test_sequential_requests_reuse_connections_cleanly(llm: FakeLLM) -> None:
    body = {"model": "m", "messages": USER}
    with httpx.Client(base_url=llm.base_url) as http:
        for i in range(10):
            llm.script(Reply(f"r{i}"))
            if i % 2:
                with http.stream("POST", "/chat/completions", json={**body, "stream": True}) as r:
                    assert "[DONE]" in r.read().decode()
            else:
                reply = http.post("/chat/completions", json=body).json()
                assert reply["choices"][0]["message"]["content"] == f"r{i}"
    assert len(llm.requests) == 10


def test_stop_is_prompt_with_a_slow_stream_open() -> None:
    llm = FakeLLM().start()
    # 10 s between chunks: a server sleeping through its delays could not stop within 2 s.
    llm.script(Reply("x" * 1000, chunk_size=1, delay=10.0))
    errors: list[BaseException] = []

    def consume() -> None:
        with openai.OpenAI(base_url=llm.base_url, api_key="k", max_retries=0) as sdk:
            try:
                list(sdk.chat.completions.create(model="m", messages=USER, stream=True))
            except openai.APIError as exc:
                errors.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    llm.wait_for_chunks(1)
    port = llm.port
    started = time.monotonic()
    llm.stop()
    assert time.monotonic() - started < 2
    assert llm.active_streams == 0, "stop() returns after the stream's thread has ended"
    reader.join(5)
    assert not reader.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)


def test_client_disconnect_leaves_stderr_clean(
    llm: FakeLLM, capfd: pytest.CaptureFixture[str]
) -> None:
    llm.script(Reply("y" * 500, chunk_size=1, delay=0.01))
    body = {"model": "m", "messages": USER, "stream": True}
    with httpx.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response:
        next(response.iter_lines())
    llm.wait_idle(timeout=5)  # the server noticed the hang-up and ended the stream early
    assert llm.chunks_sent < 500
    assert capfd.readouterr().err == ""


def start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hermes_jupyter.testing", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    with ThreadPoolExecutor(1) as pool:
        try:
            url = pool.submit(proc.stdout.readline).result(timeout=10).strip()
        except BaseException:
            proc.kill()
            raise
    return proc, url


def finish(proc: subprocess.Popen[str]) -> str:
    """Kill the CLI if it still runs; its stderr."""
    proc.kill()
    proc.wait()
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        return proc.stderr.read()


def test_cli_serves_a_scripted_agent_until_sigterm() -> None:
    proc, url = start_cli("--tool-rounds", "1", "--chunks", "3")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with openai.OpenAI(base_url=url, api_key="k", max_retries=0) as sdk:
            first = sdk.chat.completions.create(model="m", messages=USER, tools=TOOLS)
            calls = first.choices[0].message.tool_calls
            assert calls is not None and calls[0].function.name == "read_file"
            messages = [
                *USER,
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": calls[0].id, "content": "{}"},
            ]
            chunks = list(
                sdk.chat.completions.create(model="m", messages=messages, tools=TOOLS, stream=True)
            )
        assert text_of(chunks) == "t000000 t000001 t000002 "
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        err = finish(proc)
    assert err == ""


def test_cli_exits_when_stdin_closes() -> None:
    proc, _ = start_cli()
    try:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        err = finish(proc)
    assert err == ""


def test_response_format_is_recorded_and_can_be_refused_like_servers_without_it(llm):
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)
    fmt = {"type": "json_schema",
           "json_schema": {"name": "Pet", "strict": True,
                           "schema": {"type": "object", "properties": {"name": {"type": "string"}},
                                      "required": ["name"], "additionalProperties": False}}}
    llm.script(Reply.json({"name": "Rex"}), Reply("not json"))
    answer = client.chat.completions.create(model="m", messages=USER, response_format=fmt)
    assert json.loads(answer.choices[0].message.content) == {"name": "Rex"}
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content \
        == "not json"
    first, second = llm.requests
    assert first.response_format == fmt and first.json_schema["required"] == ["name"]
    assert second.response_format is None and second.json_schema is None
    llm.refuse_fields = {"response_format"}
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(model="m", messages=USER, response_format=fmt)
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content \
        == "ok"  # requests without the field are served as before
    llm.reset()
    assert llm.refuse_fields == {"response_format"}  # a trait of the server, kept by reset
