"""Provider dialects over real sockets: tool-call deltas, how streams end, reasoning models,
and what goes back on the next turn (issue 11, kinds 1, 2, 7, 8)."""

from __future__ import annotations

import json

import hermes_jupyter as hj
from hermes_jupyter.testing import Reply

from .replays import (
    body,
    call,
    chunk,
    completion,
    get_weather,
    read_file,
    sse,
    text,
    wait_until,
)


def assistant_turn(llm, n: int = 1) -> dict:
    """The assistant message that request `n` sent back."""
    return next(m for m in llm.requests[n].messages if m["role"] == "assistant")


def tool_results(llm, n: int = 1) -> list[dict]:
    return [m for m in llm.requests[n].messages if m["role"] == "tool"]


# -- kind 1: assembling tool-call deltas --------------------------------------------------------


def test_parallel_calls_without_index_stay_two_calls(session, llm):
    llm.script(
        sse(call("get_weather", '{"city":"Paris"}', id="call_a"),
            call("get_weather", '{"city":"Tokyo"}', id="call_b"),
            chunk(finish="tool_calls")),
        Reply("both sunny"),
    )
    result = session.delegate("weather", tools=[get_weather]).collect(10)
    assert result.ok, result.error
    assert [(t.name, json.loads(t.arguments)) for t in result.tool_trace] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
    sent = assistant_turn(llm)["tool_calls"]
    assert [c["id"] for c in sent] == ["call_a", "call_b"]
    assert [r["tool_call_id"] for r in tool_results(llm)] == ["call_a", "call_b"]


def test_a_name_repeated_in_every_delta_is_one_name(session, llm):
    llm.script(
        sse(call("read_file", '{"pa', id="call_r", index=0),
            call("read_file", 'th": "a.py"}', index=0),
            call("read_file", "", index=0),
            chunk(finish="tool_calls")),
        Reply("read it"),
    )
    result = session.delegate("read", tools=[read_file]).collect(10)
    assert [(t.name, t.arguments) for t in result.tool_trace] == [
        ("read_file", '{"path": "a.py"}')]
    assert result.tool_trace[0].ok


def test_whole_calls_in_one_chunk_with_a_shared_id_get_unique_ids(session, llm):
    # Two whole calls, one chunk each, the same id; a third with no id at all.
    llm.script(
        sse(call("get_weather", '{"city":"Oslo"}', id="dup", index=0),
            call("get_weather", '{"city":"Rome"}', id="dup", index=1),
            call("read_file", '{"path":"x"}', index=2),
            chunk(finish="tool_calls")),
        Reply("done"),
    )
    result = session.delegate("many", tools=[get_weather, read_file]).collect(10)
    assert len(result.tool_trace) == 3 and all(t.ok for t in result.tool_trace)
    ids = [c["id"] for c in assistant_turn(llm)["tool_calls"]]
    assert ids[0] == "dup" and len(set(ids)) == 3 and all(ids)
    assert [r["tool_call_id"] for r in tool_results(llm)] == ids


def test_whole_calls_without_index_with_the_same_id_stay_apart(session, llm):
    llm.script(
        sse(call("get_weather", '{"city":"Lima"}', id="same"),
            call("get_weather", '{"city":"Quito"}', id="same"),
            chunk(finish="tool_calls")),
        Reply("done"),
    )
    result = session.delegate("same ids", tools=[get_weather]).collect(10)
    assert [json.loads(t.arguments)["city"] for t in result.tool_trace] == ["Lima", "Quito"]
    ids = [c["id"] for c in assistant_turn(llm)["tool_calls"]]
    assert ids[0] == "same" and ids[1] != "same"


def test_whole_calls_with_neither_id_nor_index_stay_apart_and_get_ids(session, llm):
    llm.script(
        sse(call("get_weather", '{"city":"Nice"}'), call("get_weather", '{"city":"Pau"}'),
            chunk(finish="tool_calls")),
        Reply("done"),
    )
    result = session.delegate("bare calls", tools=[get_weather]).collect(10)
    assert [json.loads(t.arguments)["city"] for t in result.tool_trace] == ["Nice", "Pau"]
    ids = [c["id"] for c in assistant_turn(llm)["tool_calls"]]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)


def test_arguments_that_do_not_parse_never_run_the_tool(session, llm):
    runs: list[str] = []

    def record(city: str) -> str:
        """Record a city."""
        runs.append(city)
        return "ok"

    llm.script(sse(call("record", '{"city":"Ki', id="c1", index=0),
                   call(None, 'ev"}{"city"', index=0), chunk(finish="tool_calls")),
               Reply("gave up"))
    result = session.delegate("corrupt", tools=[record]).collect(10)
    assert result.ok and runs == [] and not result.tool_trace[0].ok
    assert "not valid JSON" in tool_results(llm)[0]["content"]


# -- kind 2: how a stream ends ------------------------------------------------------------------


def test_done_without_finish_reason_is_a_finished_answer(session, llm):
    llm.script(Reply("complete answer", truncate=True))
    result = session.delegate("done no finish").collect(10)
    assert result.ok and result.summary == "complete answer"
    assert len(llm.requests) == 1


def test_a_json_body_to_a_stream_request_is_a_finished_answer(session, llm):
    llm.script(body(completion({"role": "assistant", "content": "from a body"},
                               usage={"prompt_tokens": 7, "completion_tokens": 3})))
    result = session.delegate("json body").collect(10)
    assert result.ok and result.summary == "from a body"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 3)
    assert len(llm.requests) == 1


def test_a_json_body_with_tool_calls_runs_them(session, llm):
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Bern"}'}}]}
    llm.script(body(completion(message, finish=None)), Reply("ok"))
    result = session.delegate("json tools", tools=[get_weather]).collect(10)
    assert result.ok and [t.name for t in result.tool_trace] == ["get_weather"]


def test_a_close_with_neither_done_nor_finish_is_retried(session, llm):
    llm.script(sse(text("half"), done=False), Reply("whole"))
    result = session.delegate("cut").collect(10)
    assert result.ok and result.summary == "whole" and len(llm.requests) == 2


def test_a_final_answer_cut_by_the_length_limit_is_kept_and_marked(session, llm):
    llm.script(sse(text("The answer is long and"), chunk(finish="length")))
    result = session.delegate("long").collect(10)
    assert result.ok and result.summary == "The answer is long and"
    assert result.truncated and "truncated" in result.headline()
    assert len(llm.requests) == 1


def test_a_tool_call_cut_by_the_length_limit_does_not_run(session, llm):
    llm.script(sse(call("read_file", '{"path": "very/lo', id="c9", index=0),
                   chunk(finish="length")), Reply("I will split it"))
    result = session.delegate("cut call", tools=[read_file]).collect(10)
    assert result.ok and result.tool_trace == [] and not result.truncated
    told = llm.requests[1].messages
    assert "tool_calls" not in told[-2] and told[-2]["role"] == "assistant"
    assert "output token limit" in told[-1]["content"] and "read_file" in told[-1]["content"]


# -- kind 7: reasoning models -------------------------------------------------------------------


def test_reasoning_content_streams_marked_and_stays_out_of_the_summary(session, llm):
    llm.script(sse(chunk({"role": "assistant", "content": None, "reasoning_content": "Let me"}),
                   chunk({"reasoning_content": " think.\nStep two."}),
                   0.5,
                   text("Forty-two."), chunk(finish="stop")))
    task = session.delegate("deep question")
    wait_until(lambda: task.check().activity == "reasoning", what="activity reasoning")
    assert any("[reasoning] Let me" in line for line in task.check().recent_output)
    result = task.collect(10)
    assert result.summary == "Forty-two."
    assert "[reasoning] Step two." in result.output and result.output[-1] == "Forty-two."
    assert result.transcript[-1]["reasoning_content"] == "Let me think.\nStep two."


def test_openrouter_reasoning_field_is_reasoning_too(session, llm):
    llm.script(sse(chunk({"reasoning": "Hmm."}), text("Yes."), chunk(finish="stop")))
    result = session.delegate("router").collect(10)
    assert result.summary == "Yes." and "[reasoning] Hmm." in result.output
    assert result.transcript[-1]["reasoning"] == "Hmm."


# -- kind 8: what goes back must be what came ---------------------------------------------------


def test_deepseek_reasoning_content_goes_back_with_the_tool_turn(session, llm):
    llm.script(sse(chunk({"reasoning_content": "I need the weather."}),
                   call("get_weather", '{"city":"Pune"}', id="call_d", index=0),
                   chunk(finish="tool_calls")), Reply("warm"))
    result = session.delegate("deepseek", tools=[get_weather]).collect(10)
    assert result.ok
    sent = assistant_turn(llm)
    assert sent["reasoning_content"] == "I need the weather."
    assert sent["tool_calls"][0]["id"] == "call_d"


def test_provider_extras_on_calls_and_message_go_back_verbatim(session, llm):
    signature = {"google": {"thought_signature": "c2lnbmF0dXJl=="}}
    llm.script(sse(chunk({"role": "assistant", "content": None, "provider_note": {"a": 1}}),
                   call("get_weather", '{"city":"Graz"}', id="g1", index=0,
                        extra_content=signature),
                   chunk(finish="tool_calls")), Reply("fine"))
    result = session.delegate("gemini", tools=[get_weather]).collect(10)
    assert result.ok
    sent = assistant_turn(llm)
    assert sent["tool_calls"][0]["extra_content"] == signature
    assert sent["provider_note"] == {"a": 1}
    assert hj.TaskState.SUCCEEDED is result.state


def test_a_json_body_that_is_no_completion_fails_with_one_line(session, llm):
    llm.default = body({"status": "ok", "service": "not an LLM"})
    result = session.delegate("wrong url").collect(10)
    assert result.exit_reason == "provider_error" and "check base_url" in result.error


def test_a_stopped_task_keeps_its_answer_whole_after_a_retry_and_without_reasoning(session,
                                                                                    llm):
    from hermes_jupyter.testing import Drop

    # "world!" ends in a mark: the live tail holds back a word still being written (it
    # could be the start of a key), so the test waits for text the tail can show.
    llm.script(Drop(after_chunks=1, text="Hello "),
               sse(chunk({"reasoning_content": "hmm"}), text("Hello "), text("world!"),
                   done=False, end="hang"))
    task = session.delegate("stop me")
    wait_until(lambda: "world!" in "".join(task.check().recent_output), what="the answer")
    task.cancel()
    result = task.collect(10)
    assert result.state is hj.TaskState.CANCELLED
    assert result.summary == "Hello world!" and result.truncated
