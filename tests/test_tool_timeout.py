"""`tool_timeout`: no tool call holds its task forever (issue 14), over FakeLLM."""

from __future__ import annotations

import asyncio
import threading

import hermes_jupyter as hj
from hermes_jupyter.testing import Reply, ToolCall

from .conftest import FAST_RETRY, SECRET


def tool_messages(result: hj.TaskResult) -> list[str]:
    return [m["content"] for m in result.transcript if m.get("role") == "tool"]


def make(llm, tmp_path, **kw) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                      retry=FAST_RETRY, **kw)


def test_a_hanging_function_is_abandoned_and_the_task_goes_on(llm, tmp_path):
    release = threading.Event()
    entered = []

    def stuck() -> str:
        """Never returns on its own."""
        entered.append(threading.current_thread().name)
        release.wait(30)
        return "too late"

    def quick() -> str:
        """Answers at once."""
        return "quick answer"

    # five hanging calls in a row, then one that works: abandoned calls never eat the pool
    llm.on("hang", *[Reply(tool_calls=[ToolCall("stuck")]) for _ in range(5)],
           Reply(tool_calls=[ToolCall("quick")]), Reply(text="went on"))
    with make(llm, tmp_path, tool_timeout=0.2, max_concurrent=1) as s:
        result = s.delegate("hang", tools=[stuck, quick]).collect(30)
        release.set()
    assert result.ok and result.summary == "went on"
    messages = tool_messages(result)
    assert all("did not finish within its 0.2s tool_timeout" in m for m in messages[:5])
    assert "left running on its own thread" in messages[0]
    assert messages[5] == "quick answer"
    assert len(entered) == 5 and all(name == "hermes-tool-timed" for name in entered)


def test_an_async_tool_is_cancelled_and_a_task_override_wins(llm, tmp_path):
    cancelled = threading.Event()

    async def wait_forever() -> str:
        """Waits for nothing."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    llm.on("wait", Reply(tool_calls=[ToolCall("wait_forever")]), Reply(text="moved on"))
    with make(llm, tmp_path, tool_timeout=600) as s:
        task = s.delegate("wait", tools=[wait_forever], tool_timeout=0.2)
        result = task.collect(30)
    assert task.tool_timeout == 0.2 and result.summary == "moved on"
    assert cancelled.is_set()  # the coroutine was cancelled, not left pending
    [message] = tool_messages(result)
    assert "0.2s tool_timeout" in message and "own thread" not in message


def test_the_smaller_of_tool_timeout_and_run_python_timeout_wins(llm, tmp_path):
    llm.on("py", Reply(tool_calls=[ToolCall("run_python", {"code": "import time; "
                                                                     "time.sleep(60)",
                                                            "timeout": 120})]),
           Reply(text="python stopped"))
    with make(llm, tmp_path, tool_timeout=0.5) as s:
        result = s.delegate("py", toolsets=["python"]).collect(30)
    assert result.summary == "python stopped"
    [message] = tool_messages(result)
    assert "0.5s tool_timeout" in message
    assert result.tool_trace[0].duration_s < 30  # not the 60 s sleep, nor the 120 s limit


def test_without_a_tool_timeout_sync_tools_use_the_shared_pool(llm, tmp_path):
    seen = []

    def where() -> str:
        """Says which thread it ran on."""
        seen.append(threading.current_thread().name)
        return "here"

    llm.on("where", Reply(tool_calls=[ToolCall("where")]), Reply(text="done"))
    with make(llm, tmp_path) as s:
        assert s.delegate("where", tools=[where]).collect(30).ok
    assert seen[0].startswith("hermes-tool")  and seen[0] != "hermes-tool-timed"
