"""`AgentBook`: the live parent agents of one session, at most one per name."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from ..core.errors import HermesError
from .task import Task

__all__ = ["AgentBook", "BookedAgent"]


class BookedAgent(Protocol):
    """What the book reads of an `Agent`."""

    name: str
    owner_id: str

    @property
    def waiting(self) -> int: ...

    @property
    def children(self) -> list[Task]: ...


class AgentBook:
    """The live parent agents of one session (`session.attachment("agents", AgentBook)`), at
    most one per name: the name is the owner id its children carry, so a second live agent of
    the same name is refused (it could act on the first one's children). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._agents: dict[str, BookedAgent] = {}

    def add(self, agent: BookedAgent) -> None:
        """Book `agent`; `HermesError` when a live agent of its name is booked already."""
        with self._lock:
            other = self._agents.get(agent.owner_id)
            if other is not None and other is not agent:
                raise HermesError(
                    f"An agent named {agent.name!r} is already live in this session: use it "
                    f"(hj.get_agent({agent.name!r}) in a notebook), close it first, or pass "
                    "another name=.")
            self._agents[agent.owner_id] = agent

    def get(self, name: str) -> Any:
        """The live agent called `name`, if any."""
        with self._lock:
            return self._agents.get(f"agent:{name}")

    def remove(self, agent: BookedAgent) -> None:
        with self._lock:
            if self._agents.get(agent.owner_id) is agent:
                del self._agents[agent.owner_id]

    def agents(self) -> list[Any]:
        with self._lock:
            return list(self._agents.values())

    def summaries(self) -> list[dict[str, Any]]:
        """One JSON-able dict per agent: name, owner (the owner id its children carry),
        waiting (results queued for its next turn), children, live (children not ended)."""
        out = []
        for agent in self.agents():
            children = agent.children
            out.append({"name": agent.name, "owner": agent.owner_id, "waiting": agent.waiting,
                        "children": len(children),
                        "live": sum(1 for t in children if not t.done())})
        return out
