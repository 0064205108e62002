"""`%delegate --output-type NAME` and `%delegate --each VAR` through a real IPython shell."""

from __future__ import annotations

import json

import pytest

from hermes_jupyter.engine.group import TaskGroup
from hermes_jupyter.notebook import kernel
from hermes_jupyter.testing import Reply

MODEL = "import pydantic\nclass Review(pydantic.BaseModel):\n    title: str\n    score: int\n"


def echo_title(request) -> Reply:
    """A typed answer naming the book the goal is about."""
    goal = request.first_user_text.removeprefix("Goal:\n").split("\n\n", 1)[0]
    return Reply.json({"title": goal.removeprefix("Review "), "score": len(goal)})


def test_output_type_names_a_class_of_the_notebook(live, llm, capsys):
    assert live.run_cell(MODEL).success
    llm.responder = echo_title
    result = live.run_cell("t = %delegate --output-type Review Review Dune")
    assert result.success, capsys.readouterr().err
    data = live.user_ns["t"].collect(10).data
    assert type(data) is live.user_ns["Review"] and data.title == "Dune"
    assert llm.requests[0].response_format["json_schema"]["name"] == "Review"


def test_output_type_takes_a_json_schema_dict_too(live, llm, capsys):
    live.user_ns["schema"] = {"type": "object", "properties": {"title": {"type": "string"}},
                              "required": ["title"]}
    llm.script(Reply.json({"title": "Emma"}))
    assert live.run_cell("t = %delegate --output-type schema Review Emma").success
    assert live.user_ns["t"].collect(10).data == {"title": "Emma"}


@pytest.mark.parametrize("setup, line, says", [
    ("", "%delegate --output-type Missing do it", "no variable 'Missing' in the notebook for "
                                                  "--output-type"),
    ("n = 42", "%delegate --output-type n do it", "--output-type n: bad output type int value"),
    ("s = {'type': 'string'}", "%delegate --output-type s do it", "must describe an object"),
    ("", "%delegate --output-type 3x do it", "Bad variable name '3x': use a Python identifier "
                                             "such as Review (a class defined in the notebook)"),
    ("", "%delegate --each [1,2] do {item}", "Bad variable name '[1,2]': use a Python "
                                             "identifier such as items (a variable defined in "
                                             "an earlier cell)"),
    ("", "%delegate --each missing do {item}", "no variable 'missing' in the notebook for "
                                               "--each"),
    ("word = 'abc'", "%delegate --each word do {item}", "Bad items str"),
    ("empty = []", "%delegate --each empty do {item}", "the list is empty"),
    ("rows = [1]\nn = 4", "%delegate --each rows --output-type n do {item}", "bad output type"),
])
def test_a_bad_name_fails_the_cell_in_one_line_and_starts_nothing(live, llm, capsys, setup,
                                                                    line, says):
    assert live.run_cell(setup).success
    capsys.readouterr()
    result = live.run_cell(line)
    out, err = capsys.readouterr()
    assert not result.success and "Traceback" not in out + err
    (message,) = [row for row in err.splitlines() if row.strip()]
    assert message.startswith("UsageError: %delegate: ") and says in message, message
    assert kernel.peek_session() is None or kernel.peek_session().tasks() == []
    assert llm.requests == []


def test_each_starts_a_group_and_leaves_item_to_the_engine(live, llm, capsys):
    assert live.run_cell(MODEL).success
    live.user_ns["books"] = ["Dune", "Emma", "Ulysses"]
    live.user_ns["item"] = "NOT THIS"  # {item} is the engine's placeholder in --each mode
    llm.responder = echo_title
    result = live.run_cell("g = %delegate --each books --output-type Review -n rev "
                           "Review {item}")
    assert result.success, capsys.readouterr().err
    group = live.user_ns["g"]
    assert isinstance(group, TaskGroup) and group.name == "rev"
    results = group.collect(10)
    assert [r.data.title for r in results] == ["Dune", "Emma", "Ulysses"]
    assert [t.name for t in group.tasks] == ["rev[0]", "rev[1]", "rev[2]"]
    assert all("NOT THIS" not in r.first_user_text for r in llm.requests)


def test_without_each_item_is_an_ordinary_notebook_field(live, llm):
    live.user_ns["item"] = "Dune"
    llm.script(Reply("ok"))
    assert live.run_cell("t = %delegate Review {item}").success
    live.user_ns["t"].collect(10)
    assert llm.requests[0].first_user_text == "Goal:\nReview Dune"


def test_each_as_a_cell_magic_over_dataframe_rows_with_context(live, llm, capsys):
    pd = pytest.importorskip("pandas")
    live.user_ns["rows"] = pd.DataFrame({"book": ["Dune", "Emma"], "year": [1965, 1815]})
    live.user_ns["notes"] = "be brief"
    llm.default = Reply("ok")
    result = live.run_cell("%%delegate --each rows -c notes\nSay the year of {item}.")
    assert result.success, capsys.readouterr().err
    group = result.result
    assert [r.ok for r in group.collect(10)] == [True, True]
    rows = [json.loads(r.first_user_text.split("year of ", 1)[1].split(".\n", 1)[0])
            for r in llm.requests]
    assert sorted(rows, key=str) == [{"book": "Dune", "year": 1965},
                                     {"book": "Emma", "year": 1815}]
    assert all("be brief" in r.first_user_text for r in llm.requests)


def test_the_demo_model_answers_each_with_typed_output(ip, capsys):
    ip.run_line_magic("config", "HermesJupyter.demo_pace = 0.0")
    assert ip.run_cell(MODEL).success
    ip.user_ns["books"] = [{"title": "Dune"}, {"title": "Emma"}]
    result = ip.run_cell("g = %delegate --each books --output-type Review Review {item}")
    assert result.success, capsys.readouterr().err
    results = ip.user_ns["g"].collect(20)
    assert [r.data.title for r in results] == ["Dune", "Emma"]
    assert all(1 <= r.data.score <= 10 for r in results)

