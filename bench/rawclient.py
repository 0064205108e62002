"""A minimal asyncio HTTP/1.1 client doing what one task does: the floor to compare with.

No SDK, no httpx: one keep-alive connection per simulated task, a JSON body per request,
chunked transfer decoding, SSE lines parsed with `json.loads`, tool calls answered inline.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

__all__ = ["run_agents", "run_agents_limited"]

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look something up.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}


async def run_agents(base_url: str, n: int, key: str = "sk-raw") -> list[str]:
    """Run `n` simulated agents concurrently; returns their final texts."""
    return list(await asyncio.gather(*(_agent(base_url, i, key) for i in range(n))))


async def run_agents_limited(base_url: str, n: int, limit: int, key: str = "sk-raw") -> int:
    """Run `n` simulated agents, at most `limit` at once; returns how many answered."""
    gate = asyncio.Semaphore(limit)

    async def one(i: int) -> str:
        async with gate:
            return await _agent(base_url, i, key)

    return len(await asyncio.gather(*(one(i) for i in range(n))))


async def _agent(base_url: str, i: int, key: str) -> str:
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    path = url.path.rstrip("/") + "/chat/completions"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a focused subagent."},
        {"role": "user", "content": f"Goal:\nraw agent {i}"},
    ]
    try:
        for _ in range(100):
            text, calls = await _stream(reader, writer, url.netloc, path, key, messages)
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if not calls:
                return text
            message["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls
            ]
            messages.append(message)
            for c in calls:
                messages.append({"role": "tool", "tool_call_id": c["id"], "content": "result"})
        raise RuntimeError("raw agent: no final answer")
    finally:
        writer.close()


async def _stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
    key: str, messages: list[dict[str, Any]],
) -> tuple[str, list[dict[str, str]]]:
    body = json.dumps({
        "model": "bench-model", "messages": messages, "tools": [TOOL], "stream": True,
        "stream_options": {"include_usage": True},
    }).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"raw agent: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass  # headers: the fake server always sends a chunked event stream
    parts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    buffer = b""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            break
        buffer += data[:-2]
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                continue
            for choice in json.loads(line[5:]).get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    parts.append(delta["content"])
                for tc in delta.get("tool_calls") or ():
                    slot = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.get("id") or slot["id"]
                    fn = tc.get("function") or {}
                    slot["name"] += fn.get("name") or ""
                    slot["arguments"] += fn.get("arguments") or ""
    return "".join(parts), [calls[k] for k in sorted(calls)]
