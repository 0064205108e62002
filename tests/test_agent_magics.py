"""`%%hermes` through a real IPython shell, on FakeLLM and on the demo model, and in a real
kernel while children stream."""

from __future__ import annotations

import pytest

from hermes_jupyter.engine.agent import RESULTS_HEADER
from hermes_jupyter.notebook.agent_magics import get_agent
from hermes_jupyter.testing import Reply, ToolCall

from .kernel_frontend import running_kernel


def parent_request(request) -> bool:
    return "delegate_task" in request.tool_names


def test_hermes_cell_streams_the_reply_and_children_report_back(live, llm, capsys):
    llm.on(lambda r: not parent_request(r), Reply(text="child says 7"))
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "count", "name": "counter"})]),
           Reply(text="I started a counter.", chunk_size=4),
           Reply(text="The counter says 7."))
    result = live.run_cell("%%hermes\nPlease count things")
    out, err = capsys.readouterr()
    assert result.success, err
    assert "I started a counter." in out and "started t1 'counter'" in out
    agent = get_agent()
    agent.children[0].collect(10)
    assert agent.wait_for_results(1, timeout=10)
    result = live.run_cell("%hermes")  # no message: take the results in
    out, _ = capsys.readouterr()
    assert result.success and "The counter says 7." in out
    pushed = [m["content"] for m in llm.requests[-1].messages if m["role"] == "user"]
    assert pushed[-1].startswith(RESULTS_HEADER) and "child says 7" in pushed[-1]


def test_line_form_and_named_agents(live, llm, capsys):
    llm.default = Reply(text="hello from the parent")
    assert live.run_cell("%hermes -a research what is up?").success
    out, _ = capsys.readouterr()
    assert "hello from the parent" in out
    assert get_agent("research").history[-2]["content"] == "what is up?"
    assert get_agent("default").history[1:] == []


@pytest.mark.parametrize("line", ["%%hermes\n", "%hermes", "%hermes -x hi",
                                  "%%hermes extra words\nhi"])
def test_rejected_lines_fail_the_cell_in_one_line(live, capsys, line):
    result = live.run_cell(line)
    out, err = capsys.readouterr()
    assert not result.success
    assert "Traceback" not in out + err and "UsageError" in err


def test_the_demo_model_plays_the_parent(ip, capsys, tmp_path):
    (tmp_path / "sales.csv").write_text("region,q1\nnorth,10\nsouth,7\n")
    ip.run_line_magic("config", "HermesJupyter.toolsets = ['files']")
    capsys.readouterr()
    assert ip.run_cell("%%hermes\n- summarise sales.csv\n- list the files").success
    out, _ = capsys.readouterr()
    assert "Started t1, t2 in the background" in out
    agent = get_agent()
    for child in agent.children:
        child.collect(20)
    assert agent.wait_for_results(2, timeout=10)
    assert ip.run_cell("%hermes").success
    out, _ = capsys.readouterr()
    assert "t1 (part1) succeeded" in out and "sales.csv" in out and "t2 (part2)" in out


@pytest.mark.kernel
def test_a_turn_in_a_real_kernel_while_children_stream(tmp_path, llm):
    """The parent's turn ends while its children still stream; the kernel answers at once."""
    stream = Reply(text="x" * 4000, chunk_size=8, delay=0.01)  # about 5 s each
    llm.on(lambda r: not parent_request(r), stream, stream)
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "stream a lot"}),
                             ToolCall("delegate_task", {"goal": "stream more"})]),
           Reply(text="Two children are streaming."))
    with running_kernel(str(tmp_path), OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-k",
                        HERMES_MODEL="m") as kc:
        kc.execute_interactive("%load_ext hermes_jupyter", timeout=30)
        out: list[str] = []

        def keep(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        reply = kc.execute_interactive("%%hermes\nStart two streams", timeout=30,
                                       output_hook=keep)
        assert reply["content"]["status"] == "ok"
        assert "Two children are streaming." in "".join(out)
        out.clear()
        reply = kc.execute_interactive(
            "from hermes_jupyter.notebook.agent_magics import get_agent\n"
            "print(sum(not t.done() for t in get_agent().children), 'live')",
            timeout=10, output_hook=keep)
        assert reply["content"]["status"] == "ok"
        assert "2 live" in "".join(out)  # the kernel answered while both children ran
