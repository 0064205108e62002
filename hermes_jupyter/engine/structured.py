"""Typed output: `delegate(..., output_type=Schema)` and what the engine does with it.

A schema is a pydantic model class, a dataclass, a TypedDict or a JSON-schema dict. The first
three go through pydantic's `TypeAdapter`, which gives both the JSON schema the model is shown
and the validation of what it answers (so the two cannot drift apart); a JSON-schema dict is
validated with the `jsonschema` package when it is installed, else by `_minimal_errors` (the
top-level object's required keys and its properties' JSON types, nothing deeper).

The request: the endpoint's structured output (`response_format` of type `json_schema`) when
it takes it, else the schema in the instructions; both end in validation here. See
docs/architecture.md, "Typed output".
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from typing_extensions import is_typeddict

from ..core.errors import InvalidArgument, InvalidArgumentType

__all__ = ["OUTPUT_HEADING", "RESPONSE_FORMAT", "SCHEMA_LEAD", "OutputSpec", "Verdict",
           "jsonable", "output_spec", "portable"]

OUTPUT_HEADING = "Output: "  # starts the paragraph added to a typed task's first message
SCHEMA_LEAD = "JSON schema:\n"  # what precedes the schema in instructions and corrections
RESPONSE_FORMAT = "response_format"  # the request field, as `Provider.refused_fields` names it
_WHAT = "a pydantic model class, a dataclass, a TypedDict or a JSON-schema dict"
_MAX_ERRORS = 8  # validation errors named in a correction turn


@dataclass(frozen=True)
class Verdict:
    """What an answer validated to: `value` when `errors` is empty."""

    value: Any = None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, eq=False)
class OutputSpec:
    """One output type, ready for requests and validation.

    `name` (for `response_format`, `^[A-Za-z0-9_-]{1,64}$`), `schema` (the JSON schema),
    `strict` (every object lists all its properties as required, so the endpoint may enforce
    the schema exactly), `kind` ("model", "dataclass", "typeddict", "json_schema"), `source`
    (what the user passed). Pickles as its JSON schema only (`portable`): a Dask worker
    validates against the schema, and the kernel validates the JSON it sends back into the
    user's own class (`revive`), so no user class has to travel.
    """

    name: str
    schema: dict[str, Any]
    strict: bool
    kind: str
    source: Any
    _check: Callable[[str], Verdict] = field(repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return (portable, (self.name, self.schema, self.strict, self.kind))

    def response_format(self) -> dict[str, Any]:
        """The `response_format` request field (OpenAI's structured outputs)."""
        schema = _closed(self.schema) if self.strict else self.schema
        return {"type": "json_schema",
                "json_schema": {"name": self.name, "schema": schema, "strict": self.strict}}

    def note(self) -> str:
        """The line added to the goal when the endpoint enforces the schema itself."""
        return (f"{OUTPUT_HEADING}your final answer is a JSON object of the response format "
                f"{self.name!r} (only that object, no other text).")

    def instructions(self) -> str:
        """The schema as instructions, for endpoints without structured output."""
        return (f"{OUTPUT_HEADING}when you give your final answer, reply with only a JSON "
                f"object (no other text, no code fence) named {self.name!r} that matches this "
                f"{SCHEMA_LEAD}{json.dumps(self.schema, ensure_ascii=False)}")

    def correction(self, errors: tuple[str, ...]) -> str:
        """The one correction turn: what was wrong, field by field, and the schema again."""
        listed = "; ".join(errors)
        schema = json.dumps(self.schema, ensure_ascii=False)
        return (f"[engine] Your final answer is not a valid {self.name!r} object: {listed}. "
                "Reply again with only the corrected JSON object (no other text, no code "
                f"fence) matching this {SCHEMA_LEAD}{schema}")

    def check(self, text: str) -> Verdict:
        """Validate a final answer (JSON, optionally in a code fence)."""
        return self._check(text)

    def revive(self, data: Any) -> Verdict:
        """A value from its JSON form (`jsonable`) validated as this type: how a result that
        crossed a process boundary becomes the user's own class again."""
        return self._check(json.dumps(data))


def output_spec(output_type: Any) -> OutputSpec:
    """Check `output_type` and build its spec; an `OutputSpec` is returned as is.

    Raises `InvalidArgumentType` for anything that is not a schema (`42`, `int`, an instance)
    and `InvalidArgument` for a JSON-schema dict that is not a valid schema of an object.
    """
    if isinstance(output_type, OutputSpec):
        return output_type
    if isinstance(output_type, dict):
        return _dict_spec(output_type)
    if isinstance(output_type, type) and (issubclass(output_type, BaseModel)
                                          or dataclasses.is_dataclass(output_type)
                                          or is_typeddict(output_type)):
        return _typed_spec(output_type)
    shown = output_type.__name__ if isinstance(output_type, type) else \
        f"{type(output_type).__name__} value"
    raise InvalidArgumentType(f"Bad output_type {shown}: pass {_WHAT}.")


def portable(name: str, schema: dict[str, Any], strict: bool, kind: str) -> OutputSpec:
    """A spec that validates against the JSON schema alone (what a pickled spec becomes)."""
    spec = _dict_spec(schema, checked=False)
    return OutputSpec(name, schema, strict, kind, schema, spec._check)


def jsonable(value: Any) -> Any:
    """A validated value as plain JSON data (models and dataclasses as dicts): what the
    journal stores and what comes back from a worker."""
    return to_jsonable_python(value, fallback=str)


# ---- building specs ----------------------------------------------------------------------
def _typed_spec(cls: type) -> OutputSpec:
    kind = ("model" if issubclass(cls, BaseModel) else
            "dataclass" if dataclasses.is_dataclass(cls) else "typeddict")
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(cls)
        schema = adapter.json_schema()
    except Exception as err:  # pydantic cannot build a schema of some field type
        why = str(err).splitlines()[0].rstrip(".")
        raise InvalidArgument(f"Bad output_type {cls.__name__}: pydantic cannot make a JSON "
                              f"schema of it ({why}).") from None

    def check(text: str) -> Verdict:
        candidate = _json_text(text)
        try:
            return Verdict(adapter.validate_json(candidate))
        except ValidationError as err:
            return Verdict(errors=_pydantic_errors(err))

    return OutputSpec(_name(cls.__name__), schema, _strict_ok(schema), kind, cls, check)


def _dict_spec(schema: dict[str, Any], checked: bool = True) -> OutputSpec:
    if checked:
        try:
            json.dumps(schema)
        except (TypeError, ValueError):
            raise InvalidArgument("Bad output_type: the JSON-schema dict holds values that "
                                  "are not JSON; pass a JSON schema of an object.") from None
        if schema.get("type") != "object":
            raise InvalidArgument("Bad output_type: the JSON-schema dict must describe an "
                                  "object (\"type\": \"object\" with \"properties\"), as "
                                  "structured output requires.")
    validate = _schema_validator(schema)

    def check(text: str) -> Verdict:
        try:
            value = json.loads(_json_text(text))
        except ValueError as err:
            return Verdict(errors=(f"the answer is not JSON ({err})",))
        errors = validate(value)
        return Verdict(errors=errors) if errors else Verdict(value)

    name = schema.get("title") if isinstance(schema.get("title"), str) else "output"
    return OutputSpec(_name(str(name)), schema, _strict_ok(schema), "json_schema", schema,
                      check)


def _schema_validator(schema: dict[str, Any]) -> Callable[[Any], tuple[str, ...]]:
    try:
        import jsonschema
    except ImportError:
        return lambda value: _minimal_errors(schema, value)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as err:
        raise InvalidArgument(f"Bad output_type: not a valid JSON schema ({err.message}); "
                              "fix the schema dict.") from None
    validator = cls(schema)

    def errors(value: Any) -> tuple[str, ...]:
        found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        return tuple(f"{_where(e.absolute_path)}: {e.message}" for e in found[:_MAX_ERRORS])

    return errors


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}


def _minimal_errors(schema: dict[str, Any], value: Any) -> tuple[str, ...]:
    """Without `jsonschema`: an object, its required keys, its properties' JSON types."""
    if not isinstance(value, dict):
        return (f"(answer): expected a JSON object, got {type(value).__name__}",)
    out = [f"{key}: field required" for key in schema.get("required", ()) if key not in value]
    for key, sub in (schema.get("properties") or {}).items():
        wanted = sub.get("type") if isinstance(sub, dict) else None
        names = [wanted] if isinstance(wanted, str) else list(wanted or ())
        kinds = tuple(t for n in names for t in _JSON_TYPES.get(n, ()))
        if key in value and kinds:
            got = value[key]
            bad = not isinstance(got, kinds) or (isinstance(got, bool) and bool not in kinds)
            if bad:
                out.append(f"{key}: expected {' or '.join(names)}, got {type(got).__name__}")
    return tuple(out[:_MAX_ERRORS])


# ---- helpers -----------------------------------------------------------------------------
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _json_text(text: str) -> str:
    """The JSON of an answer: as given, or inside a ``` fence, or from the first `{` to the
    last `}` when a model wrapped it in a sentence."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        return fenced.group(1).strip()
    if not body.startswith(("{", "[")) and "{" in body and "}" in body:
        return body[body.index("{"): body.rindex("}") + 1]
    return body


def _pydantic_errors(err: ValidationError) -> tuple[str, ...]:
    out = []
    for e in err.errors(include_url=False)[:_MAX_ERRORS]:
        loc = _where(e.get("loc", ()))
        out.append(f"{loc}: {e.get('msg', 'invalid')}")
    return tuple(out)


def _where(path: Any) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(answer)"


def _name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:64]
    return cleaned or "output"


def _strict_ok(schema: Any) -> bool:
    """Whether every object of the schema requires all its properties (strict mode's rule;
    a model field with a default is optional, so such a schema is sent non-strict)."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict) and set(props) != set(schema.get("required", ())):
            return False
        if schema.get("additionalProperties") not in (None, False):
            return False
        return all(_strict_ok(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_ok(v) for v in schema)
    return True


def _closed(schema: Any) -> Any:
    """A copy with `additionalProperties: false` on every object (strict mode needs it)."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if isinstance(out.get("properties"), dict):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema
