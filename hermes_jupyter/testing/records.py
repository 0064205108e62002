"""What the fake model saw: one `RecordedRequest` per chat-completions call, in arrival order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    """A parsed `POST .../chat/completions` request.

    `headers` has lower-case names; `api_key` is the bearer token ("" when absent);
    `received_at` is `time.monotonic()` when the body had been read.
    """

    api_key: str
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    stream: bool
    body: dict[str, Any]
    headers: dict[str, str] = field(repr=False)
    path: str = "/v1/chat/completions"
    received_at: float = 0.0

    @property
    def first_user_text(self) -> str:
        """Text of the first user message; what a string `FakeLLM.on` rule matches against."""
        for message in self.messages:
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The `response_format` the request asked for (structured output), or None."""
        value = self.body.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema of a `{"type": "json_schema"}` response format, or None."""
        spec = (self.response_format or {}).get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return schema if isinstance(schema, dict) else None

    @property
    def tool_results(self) -> int:
        """How many tool results (role "tool" messages) the conversation holds so far."""
        return sum(1 for message in self.messages if message.get("role") == "tool")

    @property
    def tool_names(self) -> list[str]:
        """Names of the functions offered in `tools`, in order."""
        names = []
        for tool in self.tools or ():
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
        return names


def content_text(content: object) -> str:
    """The text of a message `content`: a plain string or a list of `{"type": "text"}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
