"""Filling a goal's `{expr}` and `$name` from the notebook, and saying so when one cannot be.

IPython expands a magic's line silently: when any `{expr}` fails, the whole line goes through
as typed. `%delegate` expands its goal here instead (the magic opts out with `@no_var_expand`),
with IPython's own syntax (`DollarFormatter`), field by field: a field that cannot be filled in
is one line naming it, and the cell fails. `{{expr}}` and `$$name` stay literal.

Some placeholders belong to the engine, not to the notebook: `%delegate --each VAR`
fills `{item}` for each element itself. `expand(..., keep={"item"})` passes such fields through
as typed (`{item}`, `{item.name}`, `{item!r}`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ..core.errors import HermesError

__all__ = ["expand"]

_BRACES = string.Formatter()
# `$name`, `$obj.attr` (IPython's form; a trailing dot is the sentence's), `$$name` literal.
# Unlike IPython, `$5` stays a price.
_DOLLAR = re.compile(r"\$(\$?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
_NAME_END = ".[(!:"


def expand(text: str, namespace: Mapping[str, Any], keep: Collection[str] = (),
           what: str = "goal") -> str:
    """`text` (a goal, or the `what` named in errors) with each `{expr}` / `$name` replaced
    by its value in `namespace`.

    Fields whose leading name is in `keep` are left as typed. Raises `HermesError` (one line)
    naming the first field that cannot be filled in, or an unbalanced brace.
    """
    out: list[str] = []
    for literal, field, conversion in _fields(text, what):
        out.append(literal)
        if field is None:
            continue
        if _leading_name(field.lstrip("$")) in keep:
            out.append(field if field.startswith("$") else _as_typed(field, conversion))
            continue
        out.append(_fill(field, conversion, namespace, what))
    return "".join(out)


def _fields(text: str, what: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(literal, field, conversion): a brace field as `expr`, a dollar field as `$name`."""
    try:
        parsed = list(_BRACES.parse(text))
    except ValueError as err:
        raise HermesError(
            f"the {what} has an unbalanced brace ({err}): write {{{{ or }}}} for a literal "
            "brace" + (", or use %%delegate, whose body is taken verbatim" if what == "goal"
                       else "")) from None
    for literal, field, spec, conversion in parsed:
        start = 0
        for match in _DOLLAR.finditer(literal):
            if match[1]:  # `$$name`: the name, literally, with one `$`
                yield literal[start:match.start()] + "$" + match[2], None, None
            else:
                yield literal[start:match.start()], "$" + match[2], None
            start = match.end()
        if field is None:
            yield literal[start:], None, None
        else:
            yield literal[start:], f"{field}:{spec}" if spec else field, conversion


def _fill(field: str, conversion: str | None, namespace: Mapping[str, Any], what: str) -> str:
    dollar = field.startswith("$")
    expression = field[1:] if dollar else field
    shown = field if dollar else "{" + field + (f"!{conversion}" if conversion else "") + "}"
    try:
        value = eval(expression, dict(namespace))  # what IPython's own expansion does
        if conversion:
            value = _BRACES.convert_field(value, conversion)
        return format(value, "")
    except Exception as err:
        reason = " ".join(_message(err).split())[:160]
        escaped = "$" + field if dollar else "{" + shown + "}"
        raise HermesError(
            f"{shown} in the {what} cannot be filled in ({type(err).__name__}"
            f"{': ' + reason if reason else ''}): define it first, or write {escaped} to "
            "keep it as typed") from None


def _as_typed(expression: str, conversion: str | None) -> str:
    return "{" + expression + (f"!{conversion}" if conversion else "") + "}"


def _leading_name(expression: str) -> str:
    name = expression.strip()
    for i, ch in enumerate(name):
        if ch in _NAME_END or ch.isspace():
            return name[:i]
    return name


def _message(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:
        return ""
