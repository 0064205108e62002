"""Typed output (`output_type=`): structured output requests, fallback, validation, correction.

Every test runs the real engine against FakeLLM over real sockets.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

import hermes_jupyter as hj
from hermes_jupyter.core.errors import InvalidArgument, InvalidArgumentType
from hermes_jupyter.testing import Fail, Reply, ToolCall


class Review(BaseModel):
    title: str
    score: int


@dataclasses.dataclass
class ReviewDC:
    title: str
    score: int


class ReviewTD(TypedDict):
    title: str
    score: int


REVIEW_SCHEMA = {
    "type": "object", "title": "Review",
    "properties": {"title": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["title", "score"],
}
GOOD = {"title": "Dune", "score": 9}


def _as_dict(value):
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


@pytest.mark.parametrize("schema, kind", [
    (Review, Review), (ReviewDC, ReviewDC), (ReviewTD, dict), (REVIEW_SCHEMA, dict),
], ids=["pydantic", "dataclass", "typeddict", "json-schema"])
def test_a_valid_answer_becomes_data_of_the_type(session, llm, schema, kind):
    llm.script(Reply.json(GOOD))
    result = session.delegate("Review Dune", output_type=schema).collect(10)
    assert result.ok and result.exit_reason == "completed", result.error
    assert type(result.data) is kind and _as_dict(result.data) == GOOD
    assert json.loads(result.summary) == GOOD  # the raw text stays the summary
    (request,) = llm.requests
    fmt = request.response_format
    name = getattr(schema, "__name__", "Review")
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == name
    assert fmt["json_schema"]["strict"] is True
    assert request.json_schema["required"] == ["title", "score"]
    assert request.json_schema["additionalProperties"] is False  # strict needs it


def test_a_schema_with_optional_fields_is_sent_non_strict(session, llm):
    class Loose(BaseModel):
        title: str
        note: str = ""

    llm.script(Reply.json({"title": "x"}))
    result = session.delegate("Loose", output_type=Loose).collect(10)
    assert result.ok and result.data == Loose(title="x")
    fmt = llm.requests[0].response_format["json_schema"]
    assert fmt["strict"] is False and "additionalProperties" not in fmt["schema"]


def test_without_output_type_no_response_format_is_sent(session, llm):
    result = session.delegate("plain").collect(10)
    assert result.ok and result.data is None
    assert llm.requests[0].response_format is None


def test_tools_still_run_and_the_final_answer_is_typed(session, llm):
    seen = []

    def lookup(title: str) -> str:
        """Look a title up."""
        seen.append(title)
        return "rated 9 of 10"

    llm.script(Reply(tool_calls=[ToolCall("lookup", {"title": "Dune"})]), Reply.json(GOOD))
    result = session.delegate("Review Dune", tools=[lookup], output_type=Review).collect(10)
    assert result.ok and result.data == Review(**GOOD) and seen == ["Dune"]
    assert [r.tool_names for r in llm.requests] == [["lookup"], ["lookup"]]
    assert all(r.response_format is not None for r in llm.requests)


def test_an_invalid_answer_gets_one_correction_naming_the_fields(session, llm):
    llm.script(Reply.json({"title": "Dune", "score": "great"}), Reply.json(GOOD))
    result = session.delegate("Review Dune", output_type=Review).collect(10)
    assert result.ok and result.data == Review(**GOOD)
    correction = llm.requests[1].messages[-1]
    assert correction["role"] == "user" and "score" in correction["content"]
    assert "not a valid 'Review' object" in correction["content"]
    assert llm.requests[1].response_format is not None


def test_text_that_is_not_json_is_corrected_too(session, llm):
    llm.script(Reply("Dune is great, 9/10."), Reply("```json\n" + json.dumps(GOOD) + "\n```"))
    result = session.delegate("Review Dune", output_type=ReviewDC).collect(10)
    assert result.ok and result.data == ReviewDC(**GOOD)
    assert "Invalid JSON" in llm.requests[1].messages[-1]["content"]


@pytest.mark.parametrize("schema", [Review, REVIEW_SCHEMA], ids=["pydantic", "json-schema"])
def test_invalid_twice_fails_with_invalid_output_and_keeps_the_text(session, llm, schema):
    llm.script(Reply.json({"title": "Dune"}), Reply.json({"title": "Dune", "score": "x"}))
    result = session.delegate("Review Dune", output_type=schema).collect(10)
    assert result.state == "failed" and result.exit_reason == "invalid_output"
    assert result.data is None and json.loads(result.summary) == {"title": "Dune",
                                                                 "score": "x"}
    assert "score" in result.error and not result.truncated
    assert "failed [invalid_output]" in result.headline()
    assert "output_type" in result.reason()
    assert len(llm.requests) == 2


def test_a_refused_response_format_falls_back_to_instructions_and_is_remembered(session, llm):
    llm.refuse_fields = {"response_format"}
    llm.default = None
    llm.script(Reply.json(GOOD), Reply.json({"title": "Emma", "score": 7}))
    first = session.delegate("Review Dune", output_type=Review).collect(10)
    second = session.delegate("Review Emma", output_type=Review).collect(10)
    assert first.ok and second.ok, (first.error, second.error)
    assert second.data == Review(title="Emma", score=7)
    sent = [r.response_format is not None for r in llm.requests]
    assert sent == [True, False, False]  # refused once, asked again without, remembered
    instructions = llm.requests[2].first_user_text
    assert '"required": ["title", "score"]' in instructions  # the schema as instructions


def test_a_refusal_naming_json_schema_mid_task_adds_the_instructions(session, llm):
    def responder(request):
        if request.response_format is not None:
            return Fail(400, message="json_schema response format is not supported")
        if request.tool_results == 0:
            return Reply(tool_calls=[ToolCall("note", {})])
        return Reply.json(GOOD)

    def note() -> str:
        """Take a note."""
        return "noted"

    llm.responder = responder
    result = session.delegate("Review Dune", tools=[note], output_type=Review).collect(10)
    assert result.ok and result.data == Review(**GOOD)
    last = llm.requests[-1].messages[-1]
    assert last["role"] == "user" and "JSON schema" in last["content"]
    assert [r.response_format is not None for r in llm.requests] == [True, False, False]


def test_a_400_about_something_else_still_fails(session, llm):
    llm.default = Fail(400, message="model 'x' does not exist")
    result = session.delegate("Review", output_type=Review).collect(10)
    assert result.exit_reason == "provider_error" and len(llm.requests) == 1


def test_the_final_call_at_max_iterations_is_typed(session, llm):
    llm.script(Reply(tool_calls=[ToolCall("nothing")]), Reply.json(GOOD))

    def nothing() -> str:
        """Do nothing."""
        return ""

    result = session.delegate("Review", tools=[nothing], max_iterations=1,
                              output_type=Review).collect(10)
    assert result.ok and result.exit_reason == "max_iterations" and result.truncated
    assert result.data == Review(**GOOD)
    assert llm.requests[1].response_format is not None


def test_map_types_every_item_in_item_order(session, llm):
    def responder(request):
        title = request.first_user_text.split("Review ", 1)[1].split("\n", 1)[0]
        return Reply.json({"title": title, "score": len(title)})

    llm.responder = responder
    group = session.map("Review {item}", ["Dune", "Emma", "Ulysses"], output_type=Review)
    results = group.collect(10)
    assert [r.data for r in results] == [Review(title="Dune", score=4),
                                         Review(title="Emma", score=4),
                                         Review(title="Ulysses", score=7)]
    frame = group.to_pandas()
    assert list(frame.columns) == ["item", "id", "state", "title", "score", "tokens",
                                   "api_calls", "cost_usd", "error"]
    assert frame["score"].tolist() == [4, 4, 7]


def test_map_over_a_dataframe_gives_one_task_per_row(session, llm):
    pd = pytest.importorskip("pandas")
    llm.responder = lambda r: Reply.json({"title": "t", "score": 1})
    frame = pd.DataFrame({"book": ["Dune", "Emma"], "year": [1965, 1815]})
    group = session.map("Review {item}", frame, output_type=Review)
    assert [r.ok for r in group.collect(10)] == [True, True]
    asked = sorted(r.first_user_text.split("\n\n", 1)[0] for r in llm.requests)
    assert asked == ['Goal:\nReview {"book": "Dune", "year": 1965}',
                     'Goal:\nReview {"book": "Emma", "year": 1815}']
    assert group.to_pandas()["item"].tolist() == frame.to_dict("records")


def test_a_bad_output_type_refuses_the_whole_map(session, llm):
    with pytest.raises(InvalidArgumentType, match="output_type"):
        session.map("Review {item}", ["a", "b"], output_type=42)
    assert session.tasks() == [] and llm.requests == []


@pytest.mark.parametrize("bad, error", [
    (42, InvalidArgumentType), (int, InvalidArgumentType), (Review(**GOOD), InvalidArgumentType),
    ({"type": "string"}, InvalidArgument), ({"type": "object", "properties": 3}, InvalidArgument),
])
def test_bad_output_types_are_one_line_and_start_nothing(session, llm, bad, error):
    with pytest.raises(error) as info:
        session.delegate("x", output_type=bad)
    assert "output_type" in str(info.value) and "\n" not in str(info.value)
    assert session.tasks() == []


def test_the_journal_keeps_data_as_json(llm, tmp_path):
    llm.script(Reply.json(GOOD))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    journal=True) as first:
        assert first.delegate("Review", output_type=Review).collect(10).data == Review(**GOOD)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"], workspace=tmp_path,
                    journal=True) as later:
        (record,) = later.history()
        result = record.result()
    assert result is not None and result.data == GOOD and result.ok


def test_without_jsonschema_a_minimal_check_still_names_fields(session, llm, monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import fails as if not installed
    llm.script(Reply.json({"title": 3}), Reply.json({"title": "x", "score": True}),
               Reply.json({"title": "x", "score": 2}), Reply.json({"title": "y", "score": 1}))
    failed = session.delegate("a", output_type=REVIEW_SCHEMA).collect(10)
    assert failed.exit_reason == "invalid_output"
    assert "score: field required" in llm.requests[1].messages[-1]["content"]
    assert "title: expected string" in llm.requests[1].messages[-1]["content"]
    assert "score: expected integer, got bool" in failed.error
    assert session.delegate("b", output_type=REVIEW_SCHEMA).collect(10).data == {
        "title": "x", "score": 2}


def test_to_pandas_renames_an_output_field_that_clashes_and_leaves_failures_empty(session,
                                                                                   llm):
    class Status(BaseModel):
        state: str
        error: str

    llm.on("ok", Reply.json({"state": "fine", "error": "none"}))
    llm.on("bad", Reply("nope"), Reply("still nope"))
    group = session.map("{item}", ["ok", "bad"], output_type=Status)
    group.collect(10)
    frame = group.to_pandas()
    assert list(frame.columns) == ["item", "id", "state", "output.state", "output.error",
                                   "tokens", "api_calls", "cost_usd", "error"]
    assert frame["state"].tolist() == ["succeeded", "failed"]
    assert frame["output.state"].tolist()[0] == "fine" and frame["output.state"].isna()[1]
    assert "did not match Status" in frame["error"].tolist()[1]


def test_two_refused_fields_named_one_after_the_other_are_both_dropped(session, llm):
    def responder(request):
        for field in ("stream_options", "response_format"):
            if field in request.body:
                return Fail(400, message=f"Unrecognized request argument supplied: {field}")
        return Reply.json(GOOD)

    llm.responder = responder
    result = session.delegate("Review", output_type=Review).collect(10)
    assert result.ok and result.data == Review(**GOOD)
    sent = [sorted(k for k in ("stream_options", "response_format") if k in r.body)
            for r in llm.requests]
    assert sent == [["response_format", "stream_options"], ["response_format"], []]
    assert session._provider.refused_fields == {"stream_options", "response_format"}
