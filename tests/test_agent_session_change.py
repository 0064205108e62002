"""`%%hermes` across a rebuilt kernel session (new endpoint or keys), in a real IPython shell:
the conversation goes on; and the agent's messages a user meets in a notebook."""

from __future__ import annotations

import pytest

import hermes_jupyter as hj
from hermes_jupyter.notebook.agent_magics import get_agent
from hermes_jupyter.testing import FakeLLM, Reply, ToolCall


@pytest.fixture
def llm2():
    with FakeLLM() as server:
        yield server


def users(request) -> list[str]:
    return [m["content"] for m in request.messages if m["role"] == "user"]


def run(ip, capsys, cell: str) -> str:
    result = ip.run_cell(cell)
    out, err = capsys.readouterr()
    assert result.success, err
    return out


@pytest.mark.parametrize("change", [
    "HermesJupyter.base_url = '{url2}'",            # another endpoint
    "HermesJupyter.api_keys = ['sk-other-key-000111222333']",  # other keys, same endpoint
])
def test_the_conversation_survives_a_rebuilt_session(live, llm, llm2, capsys, change):
    for server in (llm, llm2):
        server.on(lambda r: "what was the word?" in users(r), Reply("the word was PINEAPPLE"))
    llm.default = Reply("ok, I will remember PINEAPPLE")
    run(live, capsys, "%hermes remember the word PINEAPPLE")
    first = get_agent()
    old_session = first.session
    live.run_line_magic("config", change.format(url2=llm2.base_url))
    run(live, capsys, "t = %delegate -n other something")  # rebuilds the session
    assert hj.get_session() is not old_session
    out = run(live, capsys, "%hermes what was the word?")
    assert "hermes_jupyter: agent 'default' moved to the new session with its conversation" \
        in out
    server = llm2 if "base_url" in change else llm
    asked = next(r for r in server.requests if "what was the word?" in users(r))
    assert users(asked) == ["remember the word PINEAPPLE", "what was the word?"]
    assert "the word was PINEAPPLE" in out
    agent = get_agent()
    assert agent is not first and first.closed and agent.session is hj.get_session()
    with pytest.raises(hj.HermesError, match=r"is closed: .*hj.get_agent\('default'\)"):
        first.ask("the old handle")
    assert next(m["content"] for m in agent.history if m["role"] == "assistant") == \
        "ok, I will remember PINEAPPLE"


def test_results_waiting_move_too_and_earlier_children_stay_findable(live, llm, llm2, capsys):
    llm.on(lambda r: "delegate_task" not in r.tool_names, Reply("child says 7"))
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "count", "name": "kid"})]),
           Reply("started a counter"))
    run(live, capsys, "%hermes count things")
    first = get_agent()
    kid = first.children[0]
    assert kid.collect(10).ok and first.wait_for_results(1, timeout=10)
    live.run_line_magic("config", f"HermesJupyter.base_url = '{llm2.base_url}'")
    llm2.default = Reply("the counter said 7")
    out = run(live, capsys, "%hermes")  # no message: take in what arrived, on the new session
    assert f"its earlier tasks ({kid.id}) stay in the old one" in out
    assert "the counter said 7" in out
    pushed = users(llm2.requests[-1])
    assert "child says 7" in pushed[-1] and pushed[0] == "count things"
    assert live.run_line_magic("check_task", kid.id).status.state.value == "succeeded"


def test_an_agent_made_in_python_is_the_one_hermes_talks_to(live, llm, capsys):
    llm.default = Reply("hello")
    made = hj.Agent()  # the kernel's session, the default name: %%hermes's agent
    run(live, capsys, "%hermes hi")
    assert get_agent() is made and made.history[1]["content"] == "hi"
    with pytest.raises(hj.HermesError, match=r"use it \(hj.get_agent\('default'\)"):
        hj.Agent()


def test_nothing_to_say_names_the_magic(live, capsys):
    result = live.run_cell("%hermes")
    _, err = capsys.readouterr()
    assert not result.success and "UsageError: %hermes: Nothing to say" in err


def test_collect_task_by_an_agents_child_name_says_which_id(live, llm, capsys):
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child", "name": "kid"})]),
           Reply("started"))
    llm.default = Reply("child done")
    run(live, capsys, "%hermes go")
    kid = get_agent().children[0]
    result = live.run_cell("%collect_task kid")
    _, err = capsys.readouterr()
    assert not result.success
    assert f"'kid' is agent default's task {kid.id}: use {kid.id}." in err
    out = run(live, capsys, f"r = %collect_task {kid.id}")
    assert live.user_ns["r"].summary == "child done", out


def test_two_children_of_one_name_are_both_named(live, llm, capsys):
    llm.on(lambda r: "delegate_task" in r.tool_names,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child one", "name": "part1"})]),
           Reply("started"),
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "child two", "name": "part1"})]),
           Reply("started again"))
    llm.default = Reply("child done")
    run(live, capsys, "%hermes go")
    run(live, capsys, "%hermes and again")
    first, second = (t.id for t in get_agent().children)
    result = live.run_cell("%check_task part1")
    _, err = capsys.readouterr()
    assert not result.success
    assert (f"'part1' is agent default's task {second}; 'part1' is agent default's task "
            f"{first}: use {second} or {first}.") in err
