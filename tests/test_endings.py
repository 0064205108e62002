"""How tasks end well: partial answers kept, a final summary at the budget, wrap-up before the
timeout, empty answers nudged, token and cost budgets — over FakeLLM on real sockets."""

from __future__ import annotations

import threading

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.subagent import EMPTY_NUDGE, FINAL_CALL, WRAP_UP
from hermes_jupyter.testing import Reply, ToolCall


def noop() -> str:
    """Do nothing."""
    return "ok"


def test_cancel_keeps_the_text_written_so_far(session, llm):
    llm.default = Reply(text="First part of the answer. " + "x" * 2000, chunk_size=26,
                        delay=0.05)
    task = session.delegate("write a long answer")
    llm.wait_for_chunks(3)
    task.cancel()
    result = task.collect(10)
    assert result.state is hj.TaskState.CANCELLED and result.exit_reason == "cancelled"
    assert result.summary.startswith("First part of the answer.") and result.truncated


def test_cancel_before_any_text_has_an_empty_summary_not_truncated(session, llm):
    llm.default = Reply(text="late", first_delay=30)
    task = session.delegate("slow")
    llm.wait_for_requests(1)
    task.cancel()
    result = task.collect(10)
    assert result.summary == "" and not result.truncated


def test_iteration_budget_asks_for_a_final_summary_without_tools(session, llm):
    llm.on(lambda r: r.tools is not None, Reply(tool_calls=[ToolCall("noop")]),
           Reply(tool_calls=[ToolCall("noop")]))
    llm.on(lambda r: r.tools is None, Reply(text="Summary of two rounds."))
    result = session.delegate("loop", tools=[noop], max_iterations=2).collect(10)
    assert result.state is hj.TaskState.SUCCEEDED and result.exit_reason == "max_iterations"
    assert result.summary == "Summary of two rounds." and result.truncated
    last = llm.requests[-1]
    assert last.tools is None and last.messages[-1]["content"] == FINAL_CALL


def test_an_empty_answer_gets_one_nudge_then_fails(session, llm):
    llm.script(Reply(text=""), Reply(text="Now the answer."))
    result = session.delegate("answer me").collect(10)
    assert result.ok and result.summary == "Now the answer."
    assert llm.requests[-1].messages[-1]["content"] == EMPTY_NUDGE
    llm.script(Reply(text=""), Reply(text="   "))
    result = session.delegate("answer me again").collect(10)
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "empty_answer"


def test_timeout_warns_before_it_ends_and_keeps_the_partial_text(session, llm):
    events, ended = [], threading.Event()

    def keep(event) -> None:
        events.append(event)
        if event.kind == "finished":
            ended.set()

    session.subscribe(keep)
    def slow() -> str:
        """Take a while."""
        threading.Event().wait(2)  # longer than the timeout: the task is stopped meanwhile
        return "late"

    llm.default = Reply(text="Working on it. ", tool_calls=[ToolCall("slow")])
    result = session.delegate("slow job", tools=[slow], timeout=0.5).collect(10)
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "timeout"
    assert ended.wait(10)  # events reach subscribers on their own thread
    kinds = [(e.kind, e.data.get("message")) for e in events if e.task_id == result.id]
    steer = kinds.index(("steer_queued", WRAP_UP))
    finished = [k for k, _ in kinds].index("finished")
    assert steer < finished  # the wrap-up steer is visible, and comes before the end
    assert session.check(result.id).steering[0].message == WRAP_UP


def test_token_budget_ends_the_task_with_its_partial_text(session, llm):
    llm.default = Reply(text="partial findings", tool_calls=[ToolCall("noop")],
                        usage=(600, 500))
    result = session.delegate("expensive", tools=[noop], max_total_tokens=1000).collect(10)
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "budget"
    assert result.summary == "partial findings" and result.truncated
    assert "max_total_tokens=1000" in result.error and result.api_calls == 1


def test_cost_from_prices_and_the_cost_budget(llm, tmp_path):
    llm.default = Reply(text="x", tool_calls=[ToolCall("noop")], usage=(1_000_000, 0))
    with hj.Session(model="house-model", base_url=llm.base_url, api_keys=["k"],
                    workspace=tmp_path, prices={"house-model": (2.0, 8.0)}) as s:
        result = s.delegate("pricy", tools=[noop], max_cost_usd=5.0).collect(10)
        assert result.exit_reason == "budget" and result.usage.cost_usd == pytest.approx(6.0)
        assert "max_cost_usd=5" in result.error
        assert s.check(result.id).cost_usd == pytest.approx(6.0)
        assert s.cost() == (pytest.approx(6.0), 0)


def test_a_known_model_is_priced_from_the_price_table(llm, tmp_path):
    pytest.importorskip("genai_prices")
    llm.default = Reply(text="hi", usage=(1000, 500))
    with hj.Session(model="gpt-4o-mini", base_url=llm.base_url, api_keys=["k"],
                    workspace=tmp_path) as s:
        usage = s.delegate("hello").collect(10).usage
        assert usage.cost_usd is not None and usage.cost_usd > 0
    with hj.Session(model="no-such-model-anywhere", base_url=llm.base_url, api_keys=["k"],
                    workspace=tmp_path) as s:
        s.delegate("hello").collect(10)
        assert s.cost() == (0.0, 1)  # one task made calls whose cost is unknown


def test_the_session_budget_refuses_new_and_queued_tasks(llm, tmp_path):
    gate = threading.Event()

    def wait() -> str:
        """Wait for the test."""
        gate.wait(10)
        return "ok"

    llm.on(lambda r: "first" in r.first_user_text,
           Reply(tool_calls=[ToolCall("wait")], usage=(1_000_000, 0)), Reply(text="done"))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    prices={"m": (1.0, 1.0)}, session_budget_usd=0.5, max_concurrent=1) as s:
        first = s.delegate("first", tools=[wait])
        queued = s.delegate("second")
        llm.wait_for_requests(1)
        gate.set()
        assert first.collect(10).ok
        assert queued.collect(10).exit_reason == "budget"
        with pytest.raises(hj.HermesError, match="session budget is spent"):
            s.delegate("third")


def test_forgetting_tasks_refunds_nothing_of_the_session_budget(llm, tmp_path):
    llm.responder = lambda r: Reply(text="done", usage=(600_000, 0))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    prices={"m": (1.0, 1.0)}, session_budget_usd=1.0) as s:
        assert s.delegate("one").collect(10).ok and s.delegate("two").collect(10).ok
        assert s.forget(finished=True) == 2  # the tasks go; what they spent does not
        with pytest.raises(hj.HermesError, match=r"session budget is spent \(\$1\.2000"):
            s.delegate("three")
        keep = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"],
                          workspace=tmp_path, prices={"m": (1.0, 1.0)}, session_budget_usd=1.0,
                          keep_finished=1)
        with keep:  # the same through retention: keep_finished lets the oldest go
            assert keep.delegate("a").collect(10).ok and keep.delegate("b").collect(10).ok
            assert len(keep.tasks()) == 1
            with pytest.raises(hj.HermesError, match="session budget is spent"):
                keep.delegate("c")
