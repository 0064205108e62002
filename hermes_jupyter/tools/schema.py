"""A tool's JSON schema and its argument checking, both from the callable's signature.

One pydantic model per function, built from its parameters (type hints, `Annotated`
descriptions, the docstring's `Args:`, defaults), gives the schema the model is shown *and*
the validation of the arguments it sends back, so the two cannot drift apart: a parameter typed
as a pydantic model, a dataclass or an Enum receives an instance, never a plain dict.

The schema is tidied for strict OpenAI-style servers: every array has `items`, `$ref`s are
inlined (only recursive types keep a `$defs` entry), titles are dropped, and the top level is a
plain `object` with `additionalProperties: false` unless the function takes `**kwargs`.
Specs are cached per function (weakly): the engine asks for them on every model call.
"""

from __future__ import annotations

import inspect
import re
import threading
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from ..core.errors import ConfigurationError
from ..core.text import short

__all__ = ["ToolArgumentsError", "ToolSpec", "function_schema", "tool_name", "tool_spec"]

MAX_ERROR_LINES = 10
_PARAM_LINE = re.compile(r"^\s*(?::param\s+)?\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields)\s*:?\s*$")
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames",
               "if", "then", "else")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


class ToolArgumentsError(ValueError):
    """The arguments a model sent do not fit the tool; `str(err)` is the text for the model:
    one line saying what to do, then one line per wrong field."""


@dataclass(frozen=True)
class _Param:
    name: str  # as the model sees it (the alias)
    field: str  # the pydantic field name
    positional_only: bool
    always_pass: bool  # its Python default is a pydantic `Field(...)`, not a value


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about one callable (`schema`) and how its arguments are checked."""

    name: str
    schema: dict[str, Any]
    """The OpenAI `tools` entry: `{"type": "function", "function": {name, description,
    parameters}}`."""
    model: type[pydantic.BaseModel]
    params: tuple[_Param, ...]
    var_keyword: bool

    def bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Validate and convert the decoded JSON arguments into `(args, kwargs)` for the call.

        Only the arguments the model sent are passed (plus positional-only ones before them),
        so the function's own defaults apply to the rest. Raises `ToolArgumentsError`.
        """
        try:
            checked = self.model.model_validate(arguments)
        except pydantic.ValidationError as err:
            raise ToolArgumentsError(self._explain(err)) from None
        given = checked.model_fields_set
        last_positional = max(
            (i for i, p in enumerate(self.params) if p.positional_only and p.field in given),
            default=-1,
        )
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for i, param in enumerate(self.params):
            value = getattr(checked, param.field)
            if param.positional_only and i <= last_positional:
                args.append(value)
            elif param.field in given or param.always_pass:
                kwargs[param.name] = value
        if self.var_keyword:
            kwargs.update(checked.model_extra or {})
        return args, kwargs

    def _explain(self, err: pydantic.ValidationError) -> str:
        names = ", ".join(p.name for p in self.params) or "no arguments"
        lines = [f"the arguments of {self.name} are not valid; fix these and call it again:"]
        problems = err.errors(include_url=False)
        for problem in problems[:MAX_ERROR_LINES]:
            where = ".".join(str(part) for part in problem["loc"]) or "(the arguments)"
            kind = problem["type"]
            if kind == "missing":
                what = "required, but missing"
            elif kind == "extra_forbidden":
                what = f"not a parameter of {self.name} (its parameters: {names})"
            else:
                what = f"{problem['msg']} (got {short(repr(problem['input']), 60)})"
            lines.append(f"- {where}: {what}")
        if len(problems) > MAX_ERROR_LINES:
            lines.append(f"- … and {len(problems) - MAX_ERROR_LINES} more")
        return "\n".join(lines)


def tool_name(fn: Callable[..., Any]) -> str:
    """The name the model calls `fn` by: its `__name__`, cut to the 64 allowed characters."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def function_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI `tools` entry for `fn` (cached). Raises `ConfigurationError` as `tool_spec`.

    A callable that carries its own entry as `__tool_schema__` (an MCP server's tool, taking
    `**arguments`) is shown with that entry; its arguments pass through unchecked."""
    return tool_spec(fn).schema


_lock = threading.Lock()
_specs: weakref.WeakKeyDictionary[Any, ToolSpec] = weakref.WeakKeyDictionary()
_method_specs: weakref.WeakKeyDictionary[Any, ToolSpec] = weakref.WeakKeyDictionary()


def tool_spec(fn: Callable[..., Any]) -> ToolSpec:
    """The cached `ToolSpec` of `fn`; bound methods share one spec per underlying function.

    Raises `ConfigurationError` (one line, naming the parameter) when a type hint cannot be
    resolved or has no JSON form a model could send.
    """
    bound = inspect.ismethod(fn)
    cache, key = (_method_specs, fn.__func__) if bound else (_specs, fn)  # type: ignore[attr-defined]
    try:
        with _lock:
            found = cache.get(key)
    except TypeError:  # neither hashable nor weakly referable: build it every time
        return _build(fn)
    if found is not None:
        return found
    spec = _build(fn)
    with _lock:
        cache[key] = spec
    return spec


def _build(fn: Callable[..., Any]) -> ToolSpec:
    name = tool_name(fn)
    description, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    signature = _signature(fn, name)
    fields: dict[str, Any] = {}
    params: list[_Param] = []
    var_keyword = False
    for i, param in enumerate(signature.parameters.values()):
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        field = f"p{i}"
        fields[field] = _field(param, param_docs.get(param.name))
        params.append(_Param(param.name, field, param.kind is param.POSITIONAL_ONLY,
                             isinstance(param.default, FieldInfo)))
    config = pydantic.ConfigDict(  # models often send 75001 for "75001": take it
        extra="allow" if var_keyword else "forbid", arbitrary_types_allowed=True,
        coerce_numbers_to_str=True,
    )
    try:
        model = pydantic.create_model(f"{name}_arguments", __config__=config, **fields)
        raw = model.model_json_schema(schema_generator=_QuietGenerator)
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError,
            pydantic.errors.PydanticInvalidForJsonSchema) as err:
        raise ConfigurationError(_unsupported(name, signature, err)) from None
    parameters = _tidy(raw)
    parameters["additionalProperties"] = var_keyword
    schema = {
        "type": "function",
        "function": {
            "name": name,
            "description": description or f"Call {name}.",
            "parameters": parameters,
        },
    }
    given = getattr(fn, "__tool_schema__", None)
    if isinstance(given, dict):  # an MCP server's tool (`**arguments`): its own schema, as given
        schema = given
    return ToolSpec(name, schema, model, tuple(params), var_keyword)


def _signature(fn: Callable[..., Any], name: str) -> inspect.Signature:
    """`fn`'s signature with string annotations evaluated (closure variables count too)."""
    try:
        target = inspect.unwrap(getattr(fn, "__func__", fn))
        local = inspect.getclosurevars(target).nonlocals if inspect.isfunction(target) else {}
    except (TypeError, ValueError):
        local = {}
    try:
        return inspect.signature(fn, eval_str=True, locals=local)
    except (NameError, AttributeError, SyntaxError) as err:
        raise ConfigurationError(
            f"Tool {name}: a type hint cannot be resolved ({err}); define the types it uses "
            "at module level, not inside a function."
        ) from None
    except (TypeError, ValueError) as err:
        raise ConfigurationError(f"Tool {name}: its signature cannot be read ({err}).") from None


def _field(param: inspect.Parameter, doc: str | None) -> tuple[Any, FieldInfo]:
    """The pydantic `(type, FieldInfo)` of one parameter; the model sees it by its own name."""
    hint = Any if param.annotation is param.empty else param.annotation
    default = param.default
    if isinstance(default, FieldInfo):  # `def f(x: int = Field(3, description=...))`
        hint, default = typing.Annotated[hint, default], param.empty
    options: dict[str, Any] = {"alias": param.name}
    if default is not param.empty:
        options["default"] = default
    if not _has_field_description(hint):
        described = _annotated_text(hint) or doc
        if described:
            options["description"] = described
    return hint, pydantic.Field(**options)


def _annotated_metadata(hint: Any) -> tuple[Any, ...]:
    return tuple(getattr(hint, "__metadata__", ()))


def _has_field_description(hint: Any) -> bool:
    return any(isinstance(m, FieldInfo) and m.description for m in _annotated_metadata(hint))


def _annotated_text(hint: Any) -> str | None:
    """`Annotated[str, "the city"]` or `Annotated[str, Doc("the city")]` → "the city"."""
    for meta in _annotated_metadata(hint):
        if isinstance(meta, str):
            return meta
        documentation = getattr(meta, "documentation", None)
        if isinstance(documentation, str):
            return documentation
    return None


class _QuietGenerator(GenerateJsonSchema):
    """Leaves out defaults that have no JSON form without a warning: they still apply."""

    def emit_warning(self, kind: Any, detail: str) -> None:
        return None


def _unsupported(name: str, signature: inspect.Signature, err: Exception) -> str:
    """Name the first parameter whose type pydantic cannot describe as JSON."""
    config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    for param in signature.parameters.values():
        if param.annotation is param.empty or param.kind in (param.VAR_KEYWORD,
                                                             param.VAR_POSITIONAL):
            continue
        try:
            pydantic.TypeAdapter(param.annotation, config=config).json_schema()
        except Exception:
            kind = getattr(param.annotation, "__name__", None) or repr(param.annotation)
            return (f"Tool {name}: parameter {param.name!r} has type {kind}, which a model "
                    "cannot send as JSON; use str, int, float, bool, list, dict, Literal, Enum, "
                    "a dataclass, a TypedDict or a pydantic model.")
    return f"Tool {name}: its parameters cannot be described as JSON ({str(err).splitlines()[0]})."


def _tidy(raw: dict[str, Any]) -> dict[str, Any]:
    """The `parameters` object: refs inlined, titles dropped, every array with `items`.

    Only definitions that refer to themselves (directly or through others) stay in `$defs`.
    """
    definitions: dict[str, Any] = raw.get("$defs", {})
    kept: dict[str, Any] = {}
    pending: list[str] = []

    def visit(node: Any, inside: frozenset[str]) -> Any:
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = ref.removeprefix("#/$defs/")
            if key in inside:  # recursive: a reference is the only finite form
                if key not in kept:
                    kept[key] = None
                    pending.append(key)
                out["$ref"] = ref
            else:
                out.update(visit(definitions[key], inside | {key}))
        for word, value in node.items():
            if word in ("$ref", "$defs", "title", "discriminator"):  # refs are gone, so is that
                continue
            if word in _SCHEMA_MAPS and isinstance(value, dict):
                out[word] = {k: visit(v, inside) for k, v in value.items()}
            elif word in _SCHEMA_ONE:
                out[word] = visit(value, inside)
            elif word in _SCHEMA_LISTS and isinstance(value, list):
                out[word] = [visit(v, inside) for v in value]
            else:
                out[word] = value
        _give_items(out)
        return out

    top = visit(raw, frozenset())
    while pending:
        key = pending.pop()
        kept[key] = visit(definitions[key], frozenset({key}))
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": top.get("properties", {}),
        "required": top.get("required", []),
    }
    if kept:
        parameters["$defs"] = kept
    return parameters


def _give_items(schema: dict[str, Any]) -> None:
    """Arrays get `items`; a fixed tuple's `prefixItems` become one `items` schema."""
    kind = schema.get("type")
    if kind != "array" and not (isinstance(kind, list) and "array" in kind):
        return
    prefix = schema.pop("prefixItems", None)
    if prefix and "items" not in schema:
        distinct = [s for i, s in enumerate(prefix) if s not in prefix[:i]]
        schema["items"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
    schema.setdefault("items", {})


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """First paragraph as description; Google-style `Args:` and `:param x:` lines as params."""
    paragraphs = doc.split("\n\n")
    description = " ".join(paragraphs[0].split()) if paragraphs and paragraphs[0] else ""
    if _SECTION.match(paragraphs[0].splitlines()[0] if paragraphs[0] else ""):
        description = ""
    params: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        section = _SECTION.match(line)
        if section:
            in_args = section.group(1).startswith(("Arg", "Param"))
            continue
        match = _PARAM_LINE.match(line)
        if match and (in_args or line.lstrip().startswith(":param")):
            params[match.group(1)] = match.group(2).strip()
    return description, params
