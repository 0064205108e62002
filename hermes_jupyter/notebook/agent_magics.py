"""`%%hermes` and `%hermes MESSAGE`: talk to the kernel's parent agent.

The cell is the user's turn; the reply streams into the cell's output on the main thread, and
the cell waits only for the parent's own turn (its children run in the background). `%hermes`
with no message lets the parent take in the results that arrived (IPython refuses an empty
`%%hermes` cell). Interrupting the kernel stops
the turn, never the children, and leaves the conversation valid.
"""

# IPython's magic decorators are untyped; everything else here is checked.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
from __future__ import annotations

import re
import sys
import threading
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..core.errors import HermesError
from ..core.text import plural
from ..engine.agent import Agent, AgentBook
from . import kernel

__all__ = ["AgentMagics", "get_agent", "kernel_agents"]

_lock = threading.Lock()
_agents: dict[str, Agent] = {}
_OPTION = re.compile(r"^\s*(?:-a|--agent)(?:\s+|=)(\S+)\s*")


def get_agent(name: str = "default") -> Agent:
    """The kernel's parent agent called `name`, made on first use in the kernel's session.

    One agent per name and session: an `hj.Agent(name=...)` already live in the kernel's
    session is that agent. When the session was rebuilt (new endpoint or keys), the agent
    moves to the new one with its conversation and waiting results, and says so in one line;
    its earlier children stay in the old session, still found by id."""
    session = kernel.get_session()
    with _lock:
        agent = _agents.get(name)
        if agent is not None and agent.session is session and not agent.closed:
            return agent
        booked = session.attachment("agents", AgentBook).get(name)
        if booked is not None:
            agent = booked
        elif agent is not None and not agent.closed and kernel.replaced(agent.session):
            old = agent.session
            agent = agent.move_to(session)
            before = [t.id for t in old.tasks() if t.owner == agent.owner_id]
            kernel.notify(f"hermes_jupyter: agent {name!r} moved to the new session with its "
                          "conversation" + (f"; its earlier tasks ({_listed(before)}) stay in "
                                            "the old one (%check_task ID still finds them)."
                                            if before else "."))
        else:
            if agent is not None:
                agent.close()  # of a session this kernel no longer knows
            agent = Agent(session, name=name, output_types=_user_namespace)
        _agents[name] = agent
        return agent


def _listed(ids: list[str]) -> str:
    return ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")


def _user_namespace() -> dict[str, Any]:
    """Where a kernel agent's `delegate_task(output_type=NAME)` finds NAME: the notebook."""
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def kernel_agents() -> list[Agent]:
    """Every parent agent of this kernel, by name."""
    with _lock:
        return [_agents[name] for name in sorted(_agents)]


@magics_class
class AgentMagics(Magics):
    """`%%hermes [-a NAME]` (cell: the message) and `%hermes [-a NAME] MESSAGE`."""

    @line_cell_magic
    def hermes(self, line: str, cell: str | None = None) -> None:
        """Talk to the kernel's parent agent; it delegates work to background subagents.

        Usage: `%hermes [-a NAME] MESSAGE`, or a `%%hermes [-a NAME]` cell whose body is the
        message. `%hermes` with no message lets the agent take in the results that arrived.
        """
        name, rest = _parse(line)
        message = (cell if cell is not None else rest).strip()
        if cell is not None and rest:
            raise UsageError(f"%%hermes takes only -a NAME on its line, not {rest!r}: put the "
                             "message in the cell.")
        try:
            agent = get_agent(name)
            reply = agent.ask(message or None, on_text=_write)
        except HermesError as err:
            raise UsageError(f"%hermes: {err}") from None
        sys.stdout.write("\n")
        if reply.children:
            started = ", ".join(f"{t.id} {t.name!r}" if t.name else t.id for t in reply.children)
            sys.stdout.write(f"(started {started}: results arrive at your next %%hermes; "
                             "`%hermes` alone takes them in)\n")
        if agent.waiting:
            sys.stdout.write(f"({plural(agent.waiting, 'result')} arrived during this turn: "
                             "run %hermes with no message to take them in)\n")


def _parse(line: str) -> tuple[str, str]:
    match = _OPTION.match(line)
    if match is None:
        if line.strip().startswith("-"):
            raise UsageError(f"%hermes: unknown option in {line.strip()!r}: use -a NAME.")
        return "default", line.strip()
    return match.group(1), line[match.end():].strip()


def _write(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def load(ip: Any) -> None:
    """Register `%hermes` / `%%hermes` in `ip`."""
    ip.register_magics(AgentMagics)
