"""A parent agent asks for typed output by name: `delegate_task(output_type="NAME")`."""

from __future__ import annotations

import pydantic
import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.errors import HermesError
from hermes_jupyter.notebook.agent_magics import get_agent
from hermes_jupyter.parent_tools import session_tools
from hermes_jupyter.testing import Reply, ToolCall


class Count(pydantic.BaseModel):
    rows: int


def parent_request(request) -> bool:
    return "delegate_task" in request.tool_names


def test_delegate_task_resolves_the_name_through_its_lookup(session, llm):
    llm.on(lambda r: not parent_request(r), Reply.json({"rows": 42}))
    tools = {t.__name__: t for t in session_tools(session, output_types={"Count": Count})}
    task_id = tools["delegate_task"]("count the rows", output_type="Count")
    result = session.collect(task_id, 10)
    assert result.ok and result.data == Count(rows=42)
    assert llm.requests[0].response_format["json_schema"]["name"] == "Count"
    assert tools["collect_task"](task_id) == '{"rows": 42}'


@pytest.mark.parametrize("lookup, name, says", [
    ({"Count": Count}, "Missing", "No output type named 'Missing'; the user defined: Count."),
    ({"Count": Count, "n": 3}, "n", "Bad output_type int value"),
    (None, "Count", "the user defined: none"),
])
def test_an_unknown_or_unsuitable_name_is_an_answer_and_starts_nothing(session, llm, lookup,
                                                                       name, says):
    tools = {t.__name__: t for t in session_tools(session, output_types=lookup)}
    answer = tools["delegate_task"]("count", output_type=name)
    assert answer.startswith("Error: ") and says in answer
    assert session.tasks() == []


def test_agent_takes_output_types_and_refuses_a_bad_one(session, llm):
    llm.on(lambda r: not parent_request(r), Reply.json({"rows": 5}))
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "count", "output_type": "Count"})]),
           Reply(text="Started."))
    agent = hj.Agent(session, output_types=lambda: {"Count": Count})
    reply = agent.ask("Plan it")
    assert reply.children[0].collect(10).data == Count(rows=5)
    with pytest.raises(HermesError, match="output_types"):
        hj.Agent(session, name="other", output_types=42)


def test_a_kernel_agent_finds_types_in_the_notebook(live, llm, capsys):
    live.run_cell("import pydantic\nclass Mood(pydantic.BaseModel):\n    mood: str")
    llm.on(lambda r: not parent_request(r), Reply.json({"mood": "calm"}))
    llm.on(parent_request,
           Reply(tool_calls=[ToolCall("delegate_task", {"goal": "feel", "output_type": "Mood"})]),
           Reply(text="Started."))
    assert live.run_cell("%hermes how is it?").success
    data = get_agent().children[0].collect(10).data
    assert type(data) is live.user_ns["Mood"] and data.mood == "calm"
