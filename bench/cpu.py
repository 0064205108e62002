"""Engine CPU per 1,000 streamed chunks, against a bare `openai` stream reading the same server.

The server (its own process, so its CPU is not ours) streams `chunks` text chunks per request
as fast as it can; `streams` requests run at once. We count this process's CPU time, all
threads. Baseline: `AsyncOpenAI.chat.completions.create(stream=True)` iterated to the end.
"""

from __future__ import annotations

import asyncio
import time

import openai

from ._common import KEY, Row, ServerProcess, cpu_seconds, session

SIZES = {
    "full": {"streams": 16, "chunks": 2000, "repeats": 3},
    "quick": {"streams": 16, "chunks": 1000, "repeats": 1},
    "tiny": {"streams": 2, "chunks": 20, "repeats": 1},
}
GOAL = 1.3


def run(streams: int, chunks: int, repeats: int) -> list[Row]:
    engine, bare = [], []
    with ServerProcess(chunks=chunks) as server:
        for _ in range(repeats):
            engine.append(_engine_cpu(server.base_url, streams))
            bare.append(_bare_cpu(server.base_url, streams))
    total = streams * chunks / 1000
    value, baseline = min(engine) / total * 1000, min(bare) / total * 1000
    return [Row(
        "cpu", "engine CPU per 1,000 chunks", value, "ms", baseline,
        "bare openai stream", goal=f"≤ {GOAL:g}x", met=value / baseline <= GOAL,
        note=f"{streams} concurrent streams x {chunks} chunks; best of {repeats}",
    )]


def _engine_cpu(base_url: str, streams: int) -> float:
    with session(base_url, max_concurrent=streams) as s:
        s.delegate("warm up").collect(60)
        c0 = cpu_seconds()
        tasks = [s.delegate(f"stream {i}") for i in range(streams)]
        for t in tasks:
            if t.collect(300).state.value != "succeeded":
                raise RuntimeError(f"bench: stream failed: {t.result}")
        return cpu_seconds() - c0


def _bare_cpu(base_url: str, streams: int) -> float:
    async def main() -> float:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)

        async def one(i: int) -> None:
            stream = await client.chat.completions.create(
                model="bench-model", messages=[{"role": "user", "content": f"bare {i}"}],
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices:
                    _ = chunk.choices[0].delta.content

        await one(-1)  # warm up: connection, SDK imports
        c0 = cpu_seconds()
        await asyncio.gather(*(one(i) for i in range(streams)))
        used = cpu_seconds() - c0
        await client.close()
        return used

    time.sleep(0.05)
    return asyncio.run(main())
