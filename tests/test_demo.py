"""The offline demo model: labelled, deterministic, uses its tools' results, honours steering."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import hermes_jupyter as hj
from hermes_jupyter.demo import DemoAgent, DemoSession, demo_session
from hermes_jupyter.testing import RecordedRequest

SALES = "month,region,revenue\nJan,north,120\nFeb,north,135\nMar,south,80\nApr,south,150\n"


@pytest.fixture
def demo(tmp_path) -> Iterator[DemoSession]:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text(SALES)
    (tmp_path / "data" / "notes.txt").write_text("one\ntwo\n")
    with demo_session(workspace=tmp_path, pace=0, toolsets=["files", "python"]) as session:
        yield session


def test_every_task_is_labelled_demo_and_says_so(demo):
    task = demo.delegate("Say hello", model="gpt-pretend")
    result = task.collect(10)
    assert result.ok and result.model == "demo" and task.check().model == "demo"
    assert result.summary.startswith("[demo model] ")
    assert "did not work on" in result.summary  # it never pretends to be an LLM
    assert "demo" in result.headline()


def test_reads_named_files_and_reports_csv_statistics_from_tool_results(demo):
    result = demo.delegate("Report the size and line count of data/sales.csv").collect(10)
    assert [t.name for t in result.tool_trace] == ["list_files", "read_file"]
    assert result.summary == (
        "[demo model] data/sales.csv (76 bytes) has 5 lines. As a table: 4 rows by 3 columns "
        "(month, region, revenue). revenue: total 485, mean 121.25, min 80 (Mar), max 150 (Apr)."
    )


def test_uses_what_the_tools_returned_not_the_disk(demo, tmp_path):
    def read_file(path: str) -> str:
        """A stand-in that returns other data than the file on disk."""
        return f"{path}: 3 lines, showing 1-3\nx,y\n1,10\n2,30"

    result = demo.delegate("Read data/sales.csv", tools=[read_file], toolsets=[]).collect(10)
    assert "y: total 40, mean 20" in result.summary
    assert "revenue" not in result.summary


def test_lists_folders_and_runs_code_in_backticks(demo):
    result = demo.delegate("List the files in data/ and compute `6 * 7`").collect(10)
    assert [t.name for t in result.tool_trace] == ["list_files", "run_python"]
    assert "data holds 2 files: data/notes.txt (8 bytes), data/sales.csv (76 bytes)" in \
        result.summary
    assert "Ran `print(6 * 7)`: 42." in result.summary


def test_calls_a_notebook_function_named_in_the_goal_with_arguments_from_it(demo):
    seen = []

    def scale(value: float, label: str, factor: int = 2) -> str:
        """Scale a number."""
        seen.append((value, label, factor))
        return f"{label}={value * factor}"

    result = demo.delegate('Call scale on 21 with label "answer" and factor=3',
                           tools=[scale]).collect(10)
    assert seen == [(21.0, "answer", 3)]
    assert "Called scale(value=21.0, label='answer', factor=3), which returned 'answer=63.0'" \
        in result.summary


def test_an_open_text_argument_gets_the_work_so_far(demo):
    drafts = []

    def submit(draft: str) -> str:
        """Submit a draft."""
        drafts.append(draft)
        return "ok"

    demo.delegate("Read data/notes.txt, then call submit", tools=[submit]).collect(10)
    assert drafts == ["[demo model] data/notes.txt has 2 lines."]
    demo.delegate("call submit at once", tools=[submit]).collect(10)
    assert drafts[-1] == "call submit at once"  # nothing done yet: the goal itself


def test_a_tool_not_named_in_the_goal_is_not_called(demo):
    called = []
    result = demo.delegate("Summarise nothing", tools=[lambda: called.append(1)]).collect(10)
    assert called == [] and result.ok


def test_steering_is_acknowledged_acted_on_and_reflected(demo):
    held, gate = threading.Event(), threading.Event()

    def wait_for_review() -> str:
        """Hold until the test has steered."""
        held.set()
        gate.wait(10)
        return "reviewed"

    task = demo.delegate("Read data/sales.csv, then call wait_for_review",
                         tools=[wait_for_review])
    assert held.wait(10), "the task never reached wait_for_review"
    demo.steer(task, "mention the March dip and read data/notes.txt")
    gate.set()
    result = task.collect(10)
    assert [t.name for t in result.tool_trace] == ["read_file", "wait_for_review", "read_file"]
    assert "Steer received: “mention the March dip" in "\n".join(result.output)
    assert "the rows it points at: month=Mar, region=south, revenue=80." in result.summary
    assert "data/notes.txt has 2 lines." in result.summary


def test_tool_errors_are_reported_not_hidden(demo):
    result = demo.delegate("Read data/missing.csv").collect(10)
    assert result.ok and "read_file failed:" in result.summary


def test_the_same_goal_gives_the_same_answer(demo):
    first = demo.delegate("Report the size of data/sales.csv").collect(10)
    second = demo.delegate("Report the size of data/sales.csv").collect(10)
    assert first.summary == second.summary and first.usage == second.usage


def test_context_is_acknowledged(demo):
    result = demo.delegate("Look at it", context="### df (DataFrame)\na,b\n1,2").collect(10)
    assert "I was handed 26 characters of context (variables: df)." in result.summary


def test_demo_session_refuses_real_model_settings():
    with pytest.raises(hj.ConfigurationError, match="takes no base_url"):
        demo_session(base_url="http://example.com/v1")


def test_paced_demo_streams_its_reasoning_in_small_chunks():
    agent = DemoAgent(pace=1.0)
    request = RecordedRequest(api_key="", model="demo", messages=[
        {"role": "system", "content": "s"}, {"role": "user", "content": "Goal:\nHello"}],
        tools=None, stream=True, body={}, headers={})
    reply = agent(request)
    assert reply.delay > 0 and reply.first_delay > 0
    assert len(reply.text) > 3 * reply.chunk_size  # several chunks, so streaming shows
    assert DemoAgent(pace=0)(request).delay == 0


def test_a_broken_conversation_gets_an_answer_not_an_error():
    request = RecordedRequest(api_key="", model="demo", messages=[
        {"role": "user", "content": "Goal:\nx"},
        {"role": "assistant", "tool_calls": "not-a-list"}], tools=None, stream=True, body={},
        headers={})
    assert DemoAgent(pace=0)(request).text.startswith("[demo model] I could not follow")
