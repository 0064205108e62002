"""An MCP tool result as the text a model reads."""

from __future__ import annotations

import json

from mcp.types import (
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

__all__ = ["result_text"]


def result_text(result: CallToolResult) -> str:
    """Text blocks as they are; images, audio and binary resources as a short note; the
    structured content when the server sent nothing else."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource {resource.uri} ({resource.mime_type})]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource {block.uri}]")
        elif isinstance(block, ImageContent):
            parts.append(f"[image ({block.mime_type}), not shown]")
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} content, not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(parts)
    return text if text.strip() else "(no output)"
