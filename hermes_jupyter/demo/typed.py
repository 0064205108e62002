"""The demo model's typed answers: a JSON object that matches the task's schema.

The schema comes from the request's `response_format`, or from the instructions the engine
writes when an endpoint has no structured output. Values are built per field from what the
conversation holds: a field named like a key of the task's item (a row of a fan-out, sent as
JSON) gets that value; a `name`/`title` field the item's first text; an `enum` picks the
choice the goal names; other text fields say they were made up by the demo; numbers and
booleans are made up, the same every time for the same goal (a checksum of the field name and
the goal), within the schema's bounds.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

from ..core.text import short
from ..engine.structured import SCHEMA_LEAD
from ..testing.records import RecordedRequest, content_text

__all__ = ["schema_of", "typed_answer"]

_PROSE = ("summary", "description", "reason", "reasoning", "note", "notes", "explanation",
          "comment", "comments", "text", "rationale", "answer", "why")
_NAMES = ("name", "title", "label", "item", "subject", "topic")  # the item's first text
_MAX_DEPTH = 6


def typed_answer(request: RecordedRequest, goal: str, context: str) -> str | None:
    """The final answer as JSON text, or None when the task asked for no typed output."""
    schema = schema_of(request)
    if schema is None:
        return None
    filler = _Filler(goal, context, schema.get("$defs") or schema.get("definitions") or {})
    return json.dumps(filler.value(schema, "output", 0), ensure_ascii=False)


def schema_of(request: RecordedRequest) -> dict[str, Any] | None:
    """The JSON schema the request asks the answer to match: its response format's, else
    the last one written out in a user message."""
    if request.json_schema is not None:
        return request.json_schema
    for message in reversed(request.messages):
        text = content_text(message.get("content")) if message.get("role") == "user" else ""
        at = text.rfind(SCHEMA_LEAD)
        if at >= 0:
            try:
                value, _ = json.JSONDecoder().raw_decode(text[at + len(SCHEMA_LEAD):])
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


class _Filler:
    def __init__(self, goal: str, context: str, defs: dict[str, Any]) -> None:
        self.goal = goal
        self.defs = defs
        self.item = _item_in(goal) or _item_in(context) or {}
        self.keys = {_key(k): v for k, v in self.item.items()}

    def value(self, schema: Any, name: str, depth: int) -> Any:
        schema = self._resolved(schema)
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._choice(schema["enum"], name)
        for key in ("anyOf", "oneOf", "allOf"):
            options = [o for o in schema.get(key) or () if self._resolved(o) != {"type": "null"}]
            if options:
                return self.value(options[0], name, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in schema:
            return {k: self.value(v, k, depth + 1)
                    for k, v in (schema.get("properties") or {}).items()}
        if kind == "array":
            count = max(1, min(3, int(schema.get("minItems", 2))))
            return [self.value(schema.get("items", {}), f"{name}{i}", depth + 1)
                    for i in range(count)]
        return self._scalar(kind, schema, name)

    def _scalar(self, kind: Any, schema: dict[str, Any], name: str) -> Any:
        known = self.keys.get(_key(name))
        if kind in ("integer", "number"):
            if isinstance(known, int | float) and not isinstance(known, bool):
                return int(known) if kind == "integer" else known
            return self._number(kind, schema, name)
        if kind == "boolean":
            return known if isinstance(known, bool) else self._checksum(name) % 2 == 0
        if kind == "null":
            return None
        if known is not None:
            return str(known)
        texts = [str(v) for v in self.item.values() if isinstance(v, str | int | float)]
        if _key(name) in _PROSE:
            about = ", ".join(texts)[:60] if texts else f"“{short(self.goal, 60)}”"
            return f"[demo model] made-up {name} of {about}"
        subject = texts[0] if texts else short(self.goal, 60)
        return subject if _key(name) in _NAMES else f"[demo model] {name} of {subject}"

    def _number(self, kind: str, schema: dict[str, Any], name: str) -> float | int:
        """A made-up number within the schema's bounds (1 to 10 without any)."""
        low_ex, high_ex = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        low = float(schema.get("minimum", low_ex if low_ex is not None else 1))
        high = max(low, float(schema.get("maximum", high_ex if high_ex is not None
                                          else low + 9)))
        pick = self._checksum(name)
        if kind == "integer":
            first = math.ceil(low) + (1 if "minimum" not in schema and low_ex is not None
                                      and math.ceil(low) == low else 0)
            last = math.floor(high) - (1 if "maximum" not in schema and high_ex is not None
                                       and math.floor(high) == high else 0)
            return first + pick % (last - first + 1) if last >= first else first
        if high == low:
            return low
        value = low + (high - low) * (pick % 98 + 1) / 100  # strictly between the bounds
        rounded = round(value, 2)
        return rounded if low < rounded < high else value

    def _choice(self, options: list[Any], name: str) -> Any:
        goal = self.goal.lower()
        named = [o for o in options if isinstance(o, str) and o.lower() in goal]
        return named[0] if named else options[self._checksum(name) % len(options)]

    def _checksum(self, name: str) -> int:
        return zlib.crc32(f"{name}\x00{self.goal}".encode())

    def _resolved(self, schema: Any) -> Any:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str):
            return self.defs.get(ref.rsplit("/", 1)[-1], {})
        return schema


def _item_in(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`: a fan-out item that is a mapping (a table row)."""
    decoder = json.JSONDecoder()
    at = text.find("{")
    while at >= 0:
        try:
            value, _ = decoder.raw_decode(text[at:])
        except ValueError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            return value
        at = text.find("{", at + 1)
    return None


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")
