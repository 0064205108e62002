"""JSON schemas for plain Python callables, from type hints and the docstring.

Schemas are cached per function: the engine asks for them on every model call.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

__all__ = ["function_schema", "tool_name"]

_cache: dict[Any, dict[str, Any]] = {}
_PARAM_LINE = re.compile(r"^\s*(?::param\s+)?\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields)\s*:?\s*$")


def tool_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def function_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI `tools` entry for `fn` (cached). A callable that carries its own entry as
    `__tool_schema__` (an MCP server's tool) gets that entry as given."""
    given = getattr(fn, "__tool_schema__", None)
    if isinstance(given, dict):
        return given
    key = getattr(fn, "__func__", fn), getattr(fn, "__self__", None)
    try:
        return _cache[key]
    except (KeyError, TypeError):
        pass
    schema = _build(fn)
    with contextlib.suppress(TypeError):
        _cache[key] = schema
    return schema


def _build(fn: Callable[..., Any]) -> dict[str, Any]:
    description, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        prop = _type_schema(hints.get(name, param.annotation))
        if name in param_docs:
            prop["description"] = param_docs[name]
        if param.default is param.empty:
            required.append(name)
        elif _jsonable(param.default):
            prop["default"] = param.default
        properties[name] = prop
    return {
        "type": "function",
        "function": {
            "name": tool_name(fn),
            "description": description or f"Call {tool_name(fn)}.",
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def _type_schema(tp: Any) -> dict[str, Any]:
    if tp is inspect.Parameter.empty or tp is Any:
        return {}
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        return _type_schema(options[0]) if len(options) == 1 else {
            "anyOf": [_type_schema(a) for a in options]
        }
    if origin is Literal:
        values = list(get_args(tp))
        out = _type_schema(type(values[0])) if values else {}
        return {**out, "enum": values}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        args = get_args(tp)
        return {"type": "array", **({"items": _type_schema(args[0])} if args else {})}
    if origin is dict or tp is dict:
        return {"type": "object"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return {"type": simple[tp]} if tp in simple else {}


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


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
