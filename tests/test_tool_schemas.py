"""Tool schemas and arguments from Python types (issue 11, kind 9), checked through pydantic.

Every schema here must be what a strict OpenAI-style server accepts (`assert_strict`), and the
function must receive what its hints say: instances of models, dataclasses and enums.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, Optional

import jsonschema
import pytest
from pydantic import BaseModel, Field
from typing_extensions import Doc, TypedDict

import hermes_jupyter as hj
from hermes_jupyter.core.errors import ConfigurationError
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import ToolRegistry, function_schema, tool_spec

# -- the types the tools below take (module level: hints are resolved from here) -------------


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class City(BaseModel):
    """A city on a map."""

    name: str
    country: str = "FR"


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Window(TypedDict):
    start: int
    end: int


# -- a strict server's view of a schema ------------------------------------------------------

TOP_LEVEL_REFUSED = {"anyOf", "oneOf", "allOf", "enum", "not", "$ref", "prefixItems"}


def assert_strict(entry: dict[str, Any]) -> dict[str, Any]:
    """Check what strict OpenAI-style validators check; returns the `parameters` object."""
    params = entry["function"]["parameters"]
    jsonschema.Draft202012Validator.check_schema(params)
    assert params["type"] == "object"
    assert isinstance(params["properties"], dict) and isinstance(params["required"], list)
    assert not TOP_LEVEL_REFUSED & set(params), f"refused at the top level: {set(params)}"
    defs = params.get("$defs", {})

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array":
                assert "items" in node, f"array without items at {where}"
                assert "prefixItems" not in node, f"prefixItems at {where}"
            ref = node.get("$ref")
            if ref is not None:
                assert ref.removeprefix("#/$defs/") in defs, f"dangling {ref} at {where}"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(params, "#")
    return params


def props(fn: Any) -> dict[str, Any]:
    return assert_strict(function_schema(fn))["properties"]


def bind(fn: Any, arguments: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    return tool_spec(fn).bind(arguments)


def run(registry: ToolRegistry, name: str, arguments: str) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return asyncio.run(registry.run(name, arguments, pool))


# -- containers ------------------------------------------------------------------------------


def bare_containers(
    paths: list,
    rows: list[list],
    pair: tuple[int, str],
    many: tuple[float, ...],
    tags: set[str],
    frozen: frozenset,
    index: dict[str, list[int]],
    maybe: Optional[list] = None,  # noqa: UP045 - the old spelling must work too
) -> str:
    return "ok"


def test_every_array_has_items_even_for_bare_containers():
    p = props(bare_containers)
    assert p["paths"] == {"type": "array", "items": {}}  # the issue's example
    assert p["rows"] == {"type": "array", "items": {"type": "array", "items": {}}}
    assert p["pair"]["items"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert (p["pair"]["minItems"], p["pair"]["maxItems"]) == (2, 2)
    assert p["many"] == {"type": "array", "items": {"type": "number"}}
    assert p["tags"]["items"] == {"type": "string"} and p["frozen"]["items"] == {}
    assert p["index"]["additionalProperties"] == {"type": "array", "items": {"type": "integer"}}
    assert {"type": "array", "items": {}} in p["maybe"]["anyOf"]


def test_containers_are_converted_and_checked():
    _, kwargs = bind(bare_containers, {
        "paths": ["a", 1], "rows": [[1], []], "pair": [3, "x"], "many": [1, 2.5],
        "tags": ["a", "a", "b"], "frozen": [1], "index": {"k": ["1", 2]}})
    assert kwargs["pair"] == (3, "x") and kwargs["tags"] == {"a", "b"}
    assert kwargs["frozen"] == frozenset({1}) and kwargs["index"] == {"k": [1, 2]}
    assert "maybe" not in kwargs  # not sent: the function's own default applies


# -- enums, literals, optionals, descriptions, defaults -------------------------------------


def forecast(
    city: str,
    unit: Unit = Unit.CELSIUS,
    days: Annotated[int, Field(ge=1, le=14, description="how many days ahead")] = 3,
    detail: Literal["short", "long"] = "short",
    note: Annotated[str, "free text for the forecaster"] = "",
    source: Annotated[str, Doc("where the data comes from")] = "met",
    limit: int | None = None,
) -> str:
    """Forecast the weather.

    Args:
        city: the city's name.
        note: this docstring line loses to the Annotated text.
    """
    return f"{city} {unit!r} {days} {detail}"


def test_enum_literal_optional_annotated_and_docstring_descriptions():
    entry = function_schema(forecast)
    assert entry["function"]["description"] == "Forecast the weather."
    p = props(forecast)
    assert p["city"] == {"type": "string", "description": "the city's name."}
    assert p["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "default": "celsius"}
    assert p["days"] == {"type": "integer", "minimum": 1, "maximum": 14, "default": 3,
                         "description": "how many days ahead"}
    assert p["detail"] == {"type": "string", "enum": ["short", "long"], "default": "short"}
    assert p["note"]["description"] == "free text for the forecaster"
    assert p["source"]["description"] == "where the data comes from"
    assert p["limit"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert entry["function"]["parameters"]["required"] == ["city"]


def test_an_enum_argument_arrives_as_the_enum_member():
    _, kwargs = bind(forecast, {"city": "Paris", "unit": "fahrenheit", "days": "5"})
    assert kwargs == {"city": "Paris", "unit": Unit.FAHRENHEIT, "days": 5}
    assert bind(forecast, {"city": 75001})[1] == {"city": "75001"}  # a number for a string


# -- models, dataclasses, TypedDicts ---------------------------------------------------------

received: list[Any] = []


def get_weather(city: City, unit: Unit = Unit.CELSIUS) -> str:
    """Current weather in a city."""
    received.append(city)
    return f"sunny in {city.name}, {city.country}"  # a dict has no .name: the issue's crash


def plot(origin: Point, window: Window, cities: list[City]) -> str:
    return "plotted"


def test_a_pydantic_model_parameter_is_described_inline_and_arrives_as_an_instance():
    p = props(get_weather)
    assert p["city"] == {
        "type": "object", "description": "A city on a map.", "required": ["name"],
        "properties": {"name": {"type": "string"},
                       "country": {"type": "string", "default": "FR"}}}
    _, kwargs = bind(get_weather, {"city": {"name": "Paris"}})
    assert kwargs["city"] == City(name="Paris")


def test_dataclasses_typed_dicts_and_lists_of_models():
    p = props(plot)
    assert p["origin"]["properties"]["x"] == {"type": "integer"}
    assert p["window"]["required"] == ["start", "end"]
    assert p["cities"]["items"]["properties"]["name"] == {"type": "string"}
    _, kwargs = bind(plot, {"origin": {"x": 1}, "window": {"start": 0, "end": 9},
                            "cities": [{"name": "Lyon"}, {"name": "Oslo", "country": "NO"}]})
    assert kwargs["origin"] == Point(1, 0)
    assert kwargs["window"] == {"start": 0, "end": 9}
    assert kwargs["cities"] == [City(name="Lyon"), City(name="Oslo", country="NO")]


def walk_tree(root: TreeNode, depth: int = 2) -> str:
    return root.label


def test_recursive_models_keep_one_definition_and_every_ref_resolves():
    params = assert_strict(function_schema(walk_tree))
    assert set(params["$defs"]) == {"TreeNode"}
    assert params["properties"]["root"]["properties"]["children"]["items"] == {
        "$ref": "#/$defs/TreeNode"}
    _, kwargs = bind(walk_tree, {"root": {"label": "a", "children": [{"label": "b"}]}})
    assert kwargs["root"].children[0] == TreeNode(label="b")


def test_the_schema_accepts_what_validation_accepts():
    good = {"city": {"name": "Paris"}, "unit": "celsius"}
    bad = {"city": {"country": "FR"}, "unit": "kelvin"}
    params = function_schema(get_weather)["function"]["parameters"]
    jsonschema.validate(good, params)
    bind(get_weather, good)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, params)
    with pytest.raises(ValueError):
        bind(get_weather, bad)


# -- what the model hears when its arguments are wrong ---------------------------------------


def test_wrong_arguments_come_back_as_one_line_per_field():
    registry = ToolRegistry([get_weather])
    outcome = run(registry, "get_weather",
                  '{"city": {"nam": "Paris", "country": 7}, "unit": "kelvin", "days": 2}')
    assert not outcome.ok
    lines = outcome.text.splitlines()
    assert lines[0] == ("Error: the arguments of get_weather are not valid; fix these and "
                        "call it again:")
    assert "- city.name: required, but missing" in lines
    assert "- city.country: Input should be a valid string (got 7)" in lines
    assert "- unit: Input should be 'celsius' or 'fahrenheit' (got 'kelvin')" in lines
    assert "- days: not a parameter of get_weather (its parameters: city, unit)" in lines
    assert len(lines) == 5
    assert "Traceback" not in outcome.text and "errors.pydantic.dev" not in outcome.text


def test_a_missing_argument_names_the_field():
    def needs_int(n: int) -> int:
        """Double it."""
        return n * 2

    registry = ToolRegistry([needs_int])
    assert run(registry, "needs_int", '{"n": "4"}').text == "8"
    wrong = run(registry, "needs_int", '{"m": 4}')
    assert wrong.text.splitlines()[1:] == [
        "- n: required, but missing",
        "- m: not a parameter of needs_int (its parameters: n)",
    ]


def test_many_wrong_fields_are_cut_to_ten_lines():
    def many(values: list[int]) -> int:
        return sum(values)

    outcome = run(ToolRegistry([many]), "many", json.dumps({"values": ["x"] * 15}))
    lines = outcome.text.splitlines()
    assert lines[1] == "- values.0: Input should be a valid integer, unable to parse string " \
                       "as an integer (got 'x')"
    assert lines[-1] == "- … and 5 more" and len(lines) == 12


# -- the callables people pass ---------------------------------------------------------------


class Toolbox:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def greet(self, who: City, /, loud: bool = False, **extra: Any) -> str:
        """Greet a city."""
        text = f"{self.prefix} {who.name}"
        return (text.upper() if loud else text) + "".join(f" {k}={v}" for k, v in extra.items())


def test_bound_methods_positional_only_and_kwargs():
    first, second = Toolbox("hi"), Toolbox("bye")
    assert tool_spec(first.greet) is tool_spec(second.greet)  # one spec per function
    params = assert_strict(function_schema(first.greet))
    assert list(params["properties"]) == ["who", "loud"]
    assert params["additionalProperties"] is True  # it takes **extra
    outcome = run(ToolRegistry([second.greet]), "greet",
                  '{"who": {"name": "Rome"}, "loud": true, "mood": "warm"}')
    assert outcome.text == "BYE ROME mood=warm"


def test_plain_functions_are_cached_and_refuse_unknown_arguments():
    assert tool_spec(get_weather) is tool_spec(get_weather)
    assert function_schema(get_weather)["function"]["parameters"]["additionalProperties"] is False


def test_a_type_a_model_cannot_send_is_a_configuration_error_naming_the_parameter():
    def guarded(name: str, lock: threading.Condition) -> str:
        return name

    expected = r"^Tool guarded: parameter 'lock' has type Condition, which a model cannot send"
    with pytest.raises(ConfigurationError, match=expected):
        ToolRegistry([guarded])


def test_an_unresolvable_hint_is_a_configuration_error():
    class Local(BaseModel):
        x: int

    def uses_local(value: Local) -> str:  # under `from __future__ import annotations`
        return "x"

    with pytest.raises(ConfigurationError, match="define the types it uses at module level"):
        function_schema(uses_local)


def test_closure_variables_resolve_hints():
    class Local(BaseModel):
        x: int

    def uses_local(value: Local) -> int:
        return Local.model_validate(value).x  # mentions Local, so the closure holds it

    _, kwargs = bind(uses_local, {"value": {"x": "3"}})
    assert kwargs["value"] == Local(x=3)


# -- through a Session, over FakeLLM ---------------------------------------------------------


def test_a_task_hands_the_tool_a_model_instance(session, llm):
    received.clear()
    llm.on("weather", Reply(tool_calls=[ToolCall("get_weather", {"city": {"name": "Oslo",
                                                                         "country": "NO"}})]),
           Reply(text="it is sunny"))
    result = session.delegate("weather in Oslo?", tools=[get_weather]).collect(10)
    assert result.summary == "it is sunny"
    assert received == [City(name="Oslo", country="NO")]
    offered = llm.requests[0].tools[0]["function"]["parameters"]
    assert offered["properties"]["city"]["properties"]["name"] == {"type": "string"}
    tool_message = next(m for m in llm.requests[1].messages if m["role"] == "tool")
    assert tool_message["content"] == "sunny in Oslo, NO"


def test_a_task_tells_the_model_which_argument_was_wrong(session, llm):
    received.clear()
    llm.on("weather", Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
           Reply(text="sorry"))
    result = session.delegate("weather in Oslo?", tools=[get_weather]).collect(10)
    assert result.ok and received == []
    tool_message = next(m for m in llm.requests[1].messages if m["role"] == "tool")
    assert tool_message["content"].splitlines() == [
        "Error: the arguments of get_weather are not valid; fix these and call it again:",
        "- city: Input should be a valid dictionary or instance of City (got 'Oslo')",
    ]


def test_delegate_refuses_a_tool_whose_types_have_no_json_form(session):
    def bad(event: threading.Event) -> str:
        return "x"

    with pytest.raises(hj.HermesError, match="parameter 'event'"):
        session.delegate("anything", tools=[bad])


def test_parameter_names_pydantic_reserves_still_work():
    def odd_names(schema: str, model_config: int, _hidden: bool = False, json: str = "") -> str:
        return f"{schema} {model_config} {_hidden} {json}"

    assert list(props(odd_names)) == ["schema", "model_config", "_hidden", "json"]
    outcome = run(ToolRegistry([odd_names]), "odd_names",
                  '{"schema": "s", "model_config": 2, "_hidden": true}')
    assert outcome.text == "s 2 True "
