"""The engine's six operations against a real loopback server."""

from __future__ import annotations

import threading

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import Drop, Fail, FakeLLM, Raw, Reply, ToolCall

from .conftest import FAST_RETRY, SECRET


def test_delegate_returns_at_once_and_collects_summary(session, llm):
    llm.default = Reply(text="The answer is 42.", chunk_size=3)
    task = session.delegate("find the answer", name="answer")
    assert task.id == "t1" and task.name == "answer"
    result = session.collect(task, timeout=10)
    assert result.state is hj.TaskState.SUCCEEDED
    assert result.summary == "The answer is 42."
    assert result.exit_reason == "completed"
    assert result.api_calls == 1 and result.usage.total_tokens > 0
    assert session.collect("answer") is result  # by name, again
    assert "t1 'answer': succeeded" in repr(task)


def test_delegate_does_no_network_io_on_the_callers_thread(session, llm):
    llm.default = Reply(text="ok", first_delay=0.5)
    task = session.delegate("slow one")
    # the server has not answered yet, and delegate came back: the task is not done
    assert not task.done()
    assert session.check(task).state in (hj.TaskState.QUEUED, hj.TaskState.RUNNING)
    session.collect(task, timeout=10)


def test_fresh_context_holds_only_system_goal_and_context(session, llm):
    session.delegate("first goal", context="secret of task one").collect(10)
    session.delegate("second goal", context="ctx two").collect(10)
    second = next(r for r in llm.requests if "second goal" in str(r.messages))
    assert [m["role"] for m in second.messages] == ["system", "user"]
    assert "ctx two" in second.messages[1]["content"]
    assert "secret of task one" not in str(second.messages)


def test_model_routing(llm, tmp_path):
    with hj.Session(model="big", subagent_model="cheap", base_url=llm.base_url,
                    api_keys=[SECRET], workspace=tmp_path) as s:
        s.delegate("a").collect(10)
        s.delegate("b", model="special").collect(10)
    assert [r.model for r in llm.requests] == ["cheap", "special"]
    with hj.Session(model="big", base_url=llm.base_url, api_keys=[SECRET]) as s:
        assert s.delegate("c").collect(10).model == "big"


def test_check_shows_the_line_being_streamed(session, llm):
    llm.default = Reply(text="no newline for a long while " * 50, chunk_size=5, delay=0.01)
    task = session.delegate("stream")
    llm.wait_for_chunks(5)
    status = session.check(task)
    assert status.state is hj.TaskState.RUNNING
    assert status.recent_output and status.recent_output[-1].startswith("no newline")
    session.cancel(task)
    result = session.collect(task, timeout=5)
    assert result.state is hj.TaskState.CANCELLED
    assert result.output and result.output[-1].startswith("no newline")  # partial output kept


def test_tool_calls_run_and_results_return_to_the_model(session, llm):
    calls = []

    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        calls.append((a, b))
        return a + b

    llm.on("sum", Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3})]), Reply(text="sum is 5"))
    result = session.delegate("sum please", tools=[add]).collect(10)
    assert calls == [(2, 3)]
    assert result.summary == "sum is 5"
    assert result.tool_trace[0].name == "add" and result.tool_trace[0].ok
    tool_msg = llm.requests[-1].messages[-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == "5"
    assert llm.requests[0].tools[0]["function"]["name"] == "add"


def test_bad_tool_calls_become_errors_the_model_sees(session, llm):
    def boom() -> str:
        raise ValueError("disk on fire")

    llm.on("tools", Reply(tool_calls=[ToolCall("boom"), ToolCall("boom", "{not json"),
                                      ToolCall("nope")]), Reply(text="handled"))
    result = session.delegate("tools go wrong", tools=[boom]).collect(10)
    assert result.state is hj.TaskState.SUCCEEDED
    contents = [m["content"] for m in llm.requests[-1].messages if m["role"] == "tool"]
    assert "ValueError: disk on fire" in contents[0]
    assert "not valid JSON" in contents[1]
    assert "no tool 'nope'" in contents[2]


def test_steer_is_delivered_before_the_next_model_call(session, llm):
    gate = threading.Event()

    def wait_for_steer() -> str:
        """Block until the test has steered."""
        gate.wait(10)
        return "waited"

    llm.on("steerable", Reply(tool_calls=[ToolCall("wait_for_steer")]), Reply(text="done"))
    task = session.delegate("steerable", tools=[wait_for_steer])
    llm.wait_for_requests(1)
    session.steer(task, "focus on Q3")
    assert [s.delivered for s in session.check(task).steering] == [False]
    gate.set()
    task.collect(10)
    steering = session.check(task).steering
    assert steering[0].delivered and steering[0].delivered_at >= steering[0].queued_at
    assert llm.requests[-1].messages[-1] == {
        "role": "user", "content": "[steer from parent] focus on Q3"}


def test_steer_during_final_answer_gets_another_turn(session, llm):
    llm.on("final", Reply(text="first final " * 40, chunk_size=4, delay=0.005),
           Reply(text="revised after steer"))
    task = session.delegate("final answer")
    llm.wait_for_chunks(3)
    session.steer(task, "also mention risks")
    result = task.collect(10)
    assert result.summary == "revised after steer"
    assert len([r for r in llm.requests if "final answer" in str(r.messages)]) == 2


def test_steering_a_finished_task_is_a_clear_error(session):
    task = session.delegate("quick")
    task.collect(10)
    with pytest.raises(hj.TaskFinishedError, match="already succeeded"):
        session.steer(task, "too late")
    with pytest.raises(hj.HermesError, match="empty"):
        session.steer(task, "  ")


def test_cancel_mid_stream_stops_and_sends_nothing_more(session, llm):
    llm.default = Reply(text="x" * 5000, chunk_size=5, delay=0.01)
    task = session.delegate("long stream")
    llm.wait_for_chunks(3)
    assert session.cancel(task) is True
    result = task.collect(2)
    assert result.state is hj.TaskState.CANCELLED and result.exit_reason == "cancelled"
    llm.wait_idle(5)
    assert len(llm.requests) == 1
    assert session.cancel(task) is False


def test_cancel_while_queued_settles_and_never_calls_the_model(llm, tmp_path):
    llm.default = Reply(text="y" * 2000, chunk_size=5, delay=0.01)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET],
                    max_concurrent=1) as s:
        first = s.delegate("first")
        second = s.delegate("second")
        llm.wait_for_chunks(1)
        assert s.check(second).state is hj.TaskState.QUEUED
        s.cancel(second)
        assert s.collect(second, timeout=1).state is hj.TaskState.CANCELLED
        s.cancel(first)
        first.collect(5)
    assert all("second" not in str(r.messages) for r in llm.requests)


def test_queue_is_fifo_beyond_max_concurrent(llm):
    llm.default = Reply(text="step " * 10, chunk_size=5)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET],
                    max_concurrent=2) as s:
        started: list[str] = []
        peak = []
        s.subscribe(lambda e: started.append(e.task_id) if e.kind == "started" else None)
        tasks = [s.delegate(f"job {i}") for i in range(6)]
        for t in tasks:
            peak.append(sum(st.state is hj.TaskState.RUNNING for st in s.list_tasks()))
            t.collect(10)
        s._bus.close()
    assert started == [t.id for t in tasks]
    assert max(peak) <= 2


def test_collect_timeout_raises_and_task_goes_on(session, llm):
    llm.default = Reply(text="z" * 400, chunk_size=4, delay=0.01)
    task = session.delegate("slowish")
    with pytest.raises(TimeoutError, match="still running"):
        session.collect(task, timeout=0.05)
    assert not task.done()
    assert task.collect(10).state is hj.TaskState.SUCCEEDED


def test_max_iterations_fails_with_its_reason(session, llm):
    llm.default = Reply(tool_calls=[ToolCall("noop")])

    def noop() -> str:
        """Do nothing."""
        return "ok"

    result = session.delegate("loop forever", tools=[noop], max_iterations=3).collect(10)
    # The fake model calls a tool even when offered none: no final summary, so it fails.
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "empty_answer"
    assert "3 model calls" in result.error
    assert result.api_calls == 4


def test_timeout_fails_with_its_reason(session, llm):
    llm.default = Reply(text="w" * 5000, chunk_size=5, delay=0.01)
    result = session.delegate("too slow", timeout=0.2).collect(10)
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "timeout"
    assert "timeout" in result.error


def test_server_errors_retry_then_succeed(session, llm):
    # a 500, a dropped connection, a body that ends with neither [DONE] nor a finish reason
    cut = Raw(['data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'])
    llm.on("flaky", Fail(500), Drop(after_chunks=2), cut, Reply(text="made it"))
    retries: list[hj.Event] = []
    session.subscribe(lambda e: retries.append(e) if e.kind == "retry" else None)
    result = session.delegate("flaky endpoint").collect(10)
    assert result.summary == "made it"
    assert result.api_calls == 4
    session._bus.close()
    assert [e.data["attempt"] for e in retries] == [1, 2, 3]


def test_bad_request_fails_task_with_one_line(session, llm):
    llm.default = Fail(400, message="model 'x' does not exist\nsecond line")
    result = session.delegate("bad model").collect(10)
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "provider_error"
    assert "400" in result.error and "\n" not in result.error


def test_persistent_server_errors_give_up(session, llm):
    llm.default = Fail(503)
    result = session.delegate("down").collect(10)
    assert result.state is hj.TaskState.FAILED
    assert "gave up after retries" in result.error
    assert len(llm.requests) == FAST_RETRY.max_retries + 1


def test_unknown_task_and_bad_input(session):
    with pytest.raises(hj.UnknownTaskError, match="No task 'nope'"):
        session.check("nope")
    with pytest.raises(hj.HermesError, match="goal is empty"):
        session.delegate("   ")
    with pytest.raises(hj.ConfigurationError, match="Unknown toolset"):
        session.delegate("x", toolsets=["terminal"])
    with pytest.raises(hj.ConfigurationError, match="max_iterations"):
        session.delegate("x", max_iterations=0)
    assert session.list_tasks() == []


def test_list_tasks_in_creation_order_and_totals(session, llm):
    tasks = [session.delegate(f"g{i}", name=f"n{i}") for i in range(3)]
    for t in tasks:
        t.collect(10)
    assert [s.id for s in session.list_tasks()] == ["t1", "t2", "t3"]
    assert session.usage.api_calls == 3
    assert session.counts()["succeeded"] == 3


def test_events_are_typed_and_ordered(session, llm):
    seen: list[hj.Event] = []
    done = threading.Event()

    def on_event(event: hj.Event) -> None:
        seen.append(event)
        if event.kind == "finished":
            done.set()

    session.subscribe(on_event)
    llm.default = Reply(text="hello " * 200, chunk_size=4, delay=0.001)
    session.delegate("evented").collect(10)
    assert done.wait(5)
    kinds = [e.kind for e in seen]
    texts = [e.data["text"] for e in seen if e.kind == "text"]
    assert "".join(texts) == "hello " * 200  # every streamed character, in order...
    assert len(texts) < 300 / 2  # ...coalesced, far fewer events than the 300 chunks
    for kind in ("created", "queued", "started", "model_call", "finished"):
        assert kind in kinds
    assert kinds.index("created") < kinds.index("started") < kinds.index("finished")


def test_a_failing_subscriber_breaks_nothing(session, llm):
    def broken(event: hj.Event) -> None:
        raise RuntimeError("subscriber bug")

    session.subscribe(broken)
    assert session.delegate("still fine").collect(10).state is hj.TaskState.SUCCEEDED


def test_close_cancels_running_tasks_promptly(llm):
    llm.default = Reply(text="q" * 5000, chunk_size=5, delay=0.02)
    s = hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET])
    tasks = [s.delegate(f"run {i}") for i in range(3)]
    llm.wait_for_chunks(3)
    s.close()
    assert all(t.result.state is hj.TaskState.CANCELLED for t in tasks)
    with pytest.raises(hj.HermesError, match="closed"):
        s.delegate("after close")


def test_no_model_or_key_is_a_configuration_error(monkeypatch):
    for var in ("HERMES_MODEL", "OPENAI_API_KEY", "HERMES_API_KEYS", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(hj.ConfigurationError, match="No model"):
        hj.Session()
    with pytest.raises(hj.ConfigurationError, match="No API key"):
        hj.Session(model="m")
    monkeypatch.setenv("HERMES_API_KEYS", "k1, k2,k1")
    assert hj.Session(model="m").key_count == 2


def test_fake_llm_fixture_is_real(llm: FakeLLM):
    assert llm.base_url.startswith("http://127.0.0.1:")


def test_close_stops_the_refresher_thread(llm):
    from hermes_jupyter.engine.refresher import get_refresher

    s = hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET])
    refresher = get_refresher(s)
    refresher.add_sink(lambda changed, totals: None)
    s.delegate("one").collect(10)
    s.close()
    refresher._thread.join(2)
    assert not refresher._thread.is_alive()


def test_a_task_with_a_free_slot_is_running_when_delegate_returns(llm):
    llm.default = Reply(text="r" * 400, chunk_size=4, delay=0.01)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET],
                    max_concurrent=1) as s:
        first, second = s.delegate("first"), s.delegate("second")
        assert (first.state, second.state) == (hj.TaskState.RUNNING, hj.TaskState.QUEUED)
        assert "running" in repr(first) and "queued" in repr(second)
        s.cancel_all()


def test_many_cancelled_queued_tasks_hand_the_slot_on(llm):
    gate = threading.Event()

    def hold() -> str:
        """Hold the only slot until the test has cancelled the queue."""
        gate.wait(30)
        return "released"

    llm.on("first", Reply(tool_calls=[ToolCall("hold")]), Reply(text="first done"))
    llm.default = Reply(text="s" * 200, chunk_size=4, delay=0.005)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET],
                    max_concurrent=1) as s:
        first = s.delegate("first", tools=[hold])
        waiting = [s.delegate(f"w{i}") for i in range(3000)]
        last = s.delegate("last one")
        for task in waiting:
            s.cancel(task)
        gate.set()
        assert first.collect(10).ok
        assert last.collect(10).ok  # the slot passed over 3,000 cancelled tasks to it
    assert len(llm.requests) == 3  # first (twice: its tool round) and last
