"""Setting values that hold secrets, shown without them: `%config HermesJupyter` prints every
trait's value with `repr`, so these say how many keys, or which servers, never what they hold."""

from __future__ import annotations

from typing import Any

from traitlets import List

__all__ = ["KeyList", "MaskedKeys", "MaskedServers"]


class MaskedKeys(list):  # type: ignore[type-arg]
    """A list of API keys whose repr says how many there are, never what they are
    (`%config HermesJupyter` prints every trait's value with `repr`)."""

    def __repr__(self) -> str:
        return f"<{len(self)} API key{'s' if len(self) != 1 else ''} set>"

    __str__ = __repr__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


class KeyList(List):  # type: ignore[type-arg]
    """A List trait whose values are `MaskedKeys`, however they were set."""

    klass = MaskedKeys
    _cast_types = (list, tuple)


class MaskedServers(dict):  # type: ignore[type-arg]
    """MCP server settings whose repr names the servers, never their env or headers (which
    hold tokens): `%config HermesJupyter` prints every trait's value with `repr`."""

    def __repr__(self) -> str:
        return f"<MCP servers: {', '.join(self) or 'none'}>"

    __str__ = __repr__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))
