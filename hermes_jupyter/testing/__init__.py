"""A loopback OpenAI-compatible server for testing agents: `FakeLLM`, scripted per request.

    with FakeLLM() as llm:
        llm.script(Reply(tool_calls=[ToolCall("read_file", {"path": "a.py"})]), Reply("done"))
        client = OpenAI(base_url=llm.base_url, api_key="sk-test")
        ...
        assert llm.requests[1].messages[-1]["role"] == "tool"

It speaks the chat-completions wire format (streaming and not) over a real socket, so the
official SDK, retries and timeouts behave as they do against the API.
"""

from __future__ import annotations

from .agents import ScriptedAgent
from .records import RecordedRequest
from .replies import Drop, Fail, Outcome, Raw, Reply, ToolCall
from .server import FakeLLM, Match, Responder

__all__ = [
    "Drop",
    "Fail",
    "FakeLLM",
    "Match",
    "Outcome",
    "Raw",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ScriptedAgent",
    "ToolCall",
]
