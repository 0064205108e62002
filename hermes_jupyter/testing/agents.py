"""Canned model behaviours for `FakeLLM.responder`: deterministic agents for demos and benches."""

from __future__ import annotations

from dataclasses import dataclass

from .records import RecordedRequest
from .replies import Reply, ToolCall

__all__ = ["ScriptedAgent"]


@dataclass(frozen=True)
class ScriptedAgent:
    """Call the first offered tool until the conversation holds `rounds` tool results; then answer.

    This is the shape of a real agent loop (model → tool → model → ... → text) with none of the
    variance, so a benchmark measures the engine, not the model. `latency` is the time to the
    first chunk; the final answer streams as `chunks` text chunks, `chunk_delay` apart. A
    request offering no tools gets the final answer at once.
    """

    rounds: int = 1
    latency: float = 0.0
    chunks: int = 8
    chunk_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.chunks < 1:
            raise ValueError(f"ScriptedAgent needs rounds >= 0 and chunks >= 1, got {self}")

    def __call__(self, request: RecordedRequest) -> Reply:
        done = request.tool_results
        tools = request.tool_names
        if done < self.rounds and tools:
            return Reply(
                tool_calls=[ToolCall(tools[0], "{}")],
                first_delay=self.latency,
                delay=self.chunk_delay,
            )
        # Fixed-width pieces, so the text streams as exactly `chunks` chunks.
        text = "".join(f"t{i % 1_000_000:06d} " for i in range(self.chunks))
        return Reply(text=text, chunk_size=8, first_delay=self.latency, delay=self.chunk_delay)
