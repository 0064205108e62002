"""The demo model with `output_type=` and `{item}` goals: valid typed answers, first time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pydantic
import pytest

from hermes_jupyter.demo import DemoSession, demo_session


class City(pydantic.BaseModel):
    city: str
    population: int
    climate: Literal["cold", "mild", "hot"]
    score: int = pydantic.Field(ge=1, le=5)
    ratio: float = pydantic.Field(gt=0, lt=1)
    summary: str
    tags: list[str]
    capital: bool
    mayor: str | None = None


class Wrapper(pydantic.BaseModel):
    city: City
    rank: int


ROWS = [{"city": "Oslo", "population": 709000}, {"city": "Lima", "population": 10000000}]


@pytest.fixture
def demo(tmp_path) -> Iterator[DemoSession]:
    with demo_session(workspace=tmp_path, pace=0) as session:
        yield session


def test_fan_out_over_rows_gives_valid_objects_from_the_items(demo):
    group = demo.map("Describe the city in {item}, is it hot?", ROWS, output_type=City)
    results = group.collect(20)
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert [r.data.city for r in results] == ["Oslo", "Lima"]
    assert [r.data.population for r in results] == [709000, 10000000]
    assert all(r.data.climate == "hot" for r in results)  # the choice the goal names
    assert all(r.data.summary.startswith("[demo model] ") for r in results)
    assert all(r.api_calls == 1 for r in results)  # valid the first time: no correction
    again = demo.map("Describe the city in {item}, is it hot?", ROWS, output_type=City)
    assert [r.data for r in again.collect(20)] == [r.data for r in results]  # deterministic
    frame = group.to_pandas()
    assert frame["city"].tolist() == ["Oslo", "Lima"] and "summary" in frame.columns


def test_nested_models_and_a_json_schema_dict(demo):
    nested = demo.delegate('Rank {"city": "Oslo"}', output_type=Wrapper).collect(10)
    assert nested.ok and nested.data.city.city == "Oslo", nested.error
    schema = {"type": "object", "properties": {"label": {"type": "string",
                                                         "enum": ["spam", "ham"]},
                                               "confidence": {"type": "number",
                                                              "minimum": 0, "maximum": 1}},
              "required": ["label", "confidence"]}
    plain = demo.delegate("Is this ham?", output_type=schema).collect(10)
    assert plain.ok and plain.data["label"] == "ham" and 0 <= plain.data["confidence"] <= 1


def test_without_structured_output_the_demo_reads_the_instructions(demo):
    demo._demo_llm.refuse_fields = {"response_format"}
    first = demo.delegate("Describe {\"city\": \"Rome\"}", output_type=City).collect(10)
    second = demo.delegate("Describe {\"city\": \"Bern\"}", output_type=City).collect(10)
    assert first.ok and second.ok, (first.error, second.error)
    assert (first.data.city, second.data.city) == ("Rome", "Bern")
    assert second.api_calls == 1  # the endpoint's refusal was remembered


def test_item_goals_without_output_type_still_name_the_item(demo):
    results = demo.map("Summarise {item}", ["apples", "pears"]).collect(10)
    assert [("apples" in r.summary, "pears" in r.summary) for r in results] == [
        (True, False), (False, True)]
    assert all(r.summary.startswith("[demo model] ") for r in results)
