"""`%delegate --each VAR` and `--output-type NAME`: notebook names turned into what
`Session.map` and `Session.delegate` take, each refusal one line before anything starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import HermesError
from ..engine.structured import OutputSpec, output_spec
from .binding import check_variable_name

__all__ = ["items_of", "output_type_of"]

_KINDS = "a pydantic model class, a dataclass, a TypedDict or a JSON-schema dict"


def output_type_of(namespace: Mapping[str, Any], name: str | None) -> OutputSpec | None:
    """The schema the notebook variable `name` holds, checked (None without the option)."""
    if name is None:
        return None
    value = _variable(namespace, name, "--output-type", _KINDS)
    try:
        return output_spec(value)
    except HermesError as err:  # the engine's line names `output_type`; say the option
        raise HermesError(f"--output-type {name}: {err}".replace("Bad output_type", "bad "
                                                                 "output type")) from None


def items_of(namespace: Mapping[str, Any], name: str) -> Any:
    """What the notebook variable `name` holds, for `--each` (checked by `Session.map`)."""
    return _variable(namespace, name, "--each", "a list, a DataFrame or any iterable of items")


def _variable(namespace: Mapping[str, Any], name: str, option: str, what: str) -> Any:
    check_variable_name(name, "items (a variable defined in an earlier cell)"
                        if option == "--each" else "Review (a class defined in the notebook)")
    if name not in namespace:
        raise HermesError(f"no variable {name!r} in the notebook for {option}: define it "
                          f"first ({what}).")
    return namespace[name]
