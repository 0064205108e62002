"""Reading SSE as the spec says (issue 11, kind 3): the parser against the WHATWG spec's own
examples, then every variant over real sockets, usage, and retries that show text once."""

from __future__ import annotations

import json

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.sse import SSEParser
from hermes_jupyter.testing import Drop, Raw, Reply

from .replays import chunk, event, sse, text


def parse(stream: bytes, sizes: int | None = None) -> list[tuple[str, bytes]]:
    """All events of `stream`, fed whole or in `sizes`-byte pieces."""
    parser = SSEParser()
    step = sizes or len(stream) or 1
    out: list[tuple[str, bytes]] = []
    for i in range(0, len(stream), step):
        out += parser.feed(stream[i:i + step])
    return out


# The examples of https://html.spec.whatwg.org/multipage/server-sent-events.html §9.2.6,
# with the data each one dispatches.
SPEC_EXAMPLES = [
    (b"data: YHOO\ndata: +2\ndata: 10\n\n", [b"YHOO\n+2\n10"]),
    (b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
     b"data:  third event\n\n", [b"first event", b"second event", b" third event"]),
    (b"data\n\ndata\ndata\n\ndata:", [b"", b"\n"]),  # the last one never ends: dropped
    (b"data:test\n\ndata: test\n\n", [b"test", b"test"]),
]


@pytest.mark.parametrize(("stream", "expected"), SPEC_EXAMPLES)
@pytest.mark.parametrize("sizes", [None, 1, 3])
def test_the_spec_examples(stream, expected, sizes):
    assert [data for _, data in parse(stream, sizes)] == expected


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"])
def test_every_line_ending_and_event_types(eol):
    stream = eol.join([b"\xef\xbb\xbfevent: add", b"data: 73857293", b"", b"event: remove",
                       b"data: 2153", b"", b"data: 113411", b"", b""])
    for size in (None, 1, 2):
        assert parse(stream, size) == [("add", b"73857293"), ("remove", b"2153"),
                                       ("", b"113411")]


def test_one_event_per_piece_keeps_what_came_before():
    parser = SSEParser()
    assert parser.feed(b"\xef\xbb\xbfdata: 0\n\n") == [("", b"0")]
    assert parser.feed(b"event: delta\n") == []
    assert parser.feed(b"data: 1\n\n") == [("delta", b"1")]
    assert parser.feed(b"data: 2\n\n") == [("", b"2")]
    assert parser.feed(b"data: 3\r") == [] and parser.feed(b"\n\n") == [("", b"3")]
    assert parser.feed(b"data: a\n") == [] and parser.feed(b"data: b\n\n") == [("", b"a\nb")]


def test_unicode_line_separators_stay_inside_the_data():
    payload = json.dumps({"t": "a\u2028b\u2029c\x85d"}, ensure_ascii=False).encode()
    assert parse(b"data: " + payload + b"\n\n", 1) == [("", payload)]


# -- over real sockets --------------------------------------------------------------------------


def test_comments_events_multiline_data_and_crlf(session, llm):
    split = json.dumps(text("two ")).replace('"delta"', '\r\ndata: "delta"')
    llm.script(sse(": keep-alive\r\n\r\n", "event: message\r\n", event(text("one "), "\r\n"),
                   f"data: {split}\r\n\r\n", event(chunk({}, "stop"), "\r\n"), eol="\r\n"))
    result = session.delegate("crlf").collect(10)
    assert result.ok and result.summary == "one two "


def test_cr_only_line_endings(session, llm):
    llm.script(sse(text("carriage "), text("returns"), chunk(finish="stop"), eol="\r"))
    result = session.delegate("cr").collect(10)
    assert result.ok and result.summary == "carriage returns"


def test_non_json_data_and_empty_choices_are_skipped(session, llm):
    llm.script(sse("data: : OPENROUTER PROCESSING\n\n", "data: keep-alive\n\n",
                   chunk(choices=False), text("still "), "data: {}\n\n",
                   text("here"), chunk(finish="stop")))
    result = session.delegate("odd data").collect(10)
    assert result.ok and result.summary == "still here"
    assert len(llm.requests) == 1


def test_a_line_separator_inside_the_text_does_not_break_the_chunk(session, llm):
    llm.script(sse(text("first\u2028second"), chunk(finish="stop")))
    result = session.delegate("u2028").collect(10)
    assert result.ok and result.summary == "first\u2028second" and len(llm.requests) == 1


def test_bytes_split_anywhere_still_read(session, llm):
    stream = "".join(event(c) for c in (text("naïve "), text("café ✓"), chunk(finish="stop")))
    data = (stream + "data: [DONE]\n\n").encode()
    llm.script(Raw([data[i:i + 3] for i in range(0, len(data), 3)]))
    result = session.delegate("split").collect(10)
    assert result.ok and result.summary == "naïve café ✓"


def test_cumulative_usage_in_every_chunk_takes_the_last(session, llm):
    llm.script(sse(*(chunk({"content": w}, usage={"prompt_tokens": 10, "completion_tokens": i})
                     for i, w in enumerate(["a", "b", "c"], 1)),
                   chunk(finish="stop", usage={"prompt_tokens": 10, "completion_tokens": 3})))
    result = session.delegate("usage each").collect(10)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (10, 3)
    assert not result.usage.estimated


def test_no_usage_at_all_is_estimated_and_marked(session, llm):
    events: list[hj.Event] = []
    session.subscribe(lambda e: events.append(e) if e.kind == "model_call" else None)
    llm.script(sse(text("x" * 400), chunk(finish="stop")))  # llama.cpp: no usage, ever
    result = session.delegate("estimate me").collect(10)
    assert result.usage.completion_tokens == 100 and result.usage.prompt_tokens > 0
    assert result.usage.estimated
    session._bus.close()
    assert events[0].data["usage"] == "estimated"


def test_a_retried_stream_shows_its_text_once(session, llm):
    seen: list[str] = []
    session.subscribe(lambda e: seen.append(e.data["text"]) if e.kind == "text" else None)
    llm.script(Drop(after_chunks=2, text="Hello "), Reply("Hello Hello world", chunk_size=6))
    result = session.delegate("retry once").collect(10)
    assert result.ok and result.summary == "Hello Hello world"
    assert "".join(result.output) == "Hello Hello world"
    session._bus.close()
    assert "".join(seen) == "Hello Hello world"


def test_a_retried_stream_that_goes_another_way_says_so(session, llm):
    llm.script(Drop(after_chunks=1, text="Paris is "), Reply("Rome is the capital"))
    result = session.delegate("diverge").collect(10)
    assert result.summary == "Rome is the capital"
    assert result.output[-1] == "Rome is the capital"
    assert any("another way" in line for line in result.output)


def test_raw_replays_bytes_exactly_and_checks_its_fields(llm):
    import httpx

    sent = b": hi\r\ndata: {\"x\": \"\xe2\x80\xa8\"}\r\r"
    llm.script(Raw([sent[:5], 0.01, sent[5:]], headers={"Content-Type": "text/event-stream",
                                                         "X-Dialect": "test"}))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response:
        got = response.read()
    assert got == sent and response.headers["x-dialect"] == "test"
    with pytest.raises(ValueError, match="end"):
        Raw([b""], end="later")
    with pytest.raises(ValueError, match="chunked"):
        Raw([b"a", 0.5], chunked=False)
