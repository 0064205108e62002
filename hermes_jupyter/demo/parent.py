"""The demo model as a parent agent: it delegates, says so at once, and summarises results.

From the conversation alone (deterministic, like the rest of the demo): a request with several
parts ("- a\\n- b", "1. a 2. b", "a; b", "a, and also b") becomes one `delegate_task` call per
part in one completion; a request for status lists the tasks; a pushed results message
(`[background task results] ...`) is summarised in a few lines per task.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.text import short
from ..engine.agent import RESULTS_HEADER
from ..testing import RecordedRequest, ToolCall
from ..testing.records import content_text

__all__ = ["is_parent_request", "parent_reply", "split_parts"]

MAX_PARTS = 5
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$", re.MULTILINE)
_INLINE_NUMBERED = re.compile(r"(?:^|\s)\d+[.)]\s+")
_STATUS = re.compile(r"\b(status|progress|how (?:are|is) .*going|still running)\b", re.I)
_FILEISH = re.compile(r"\bfiles?\b|\bfolder|\bdirector|[\w.-]+/|\b\w+\.(?:csv|txt|md|json|py|"
                      r"log|tsv|yaml|yml|toml|ini|xml|html)\b", re.I)
_HEADLINE = re.compile(r"^(t\d+)(?: '([^']*)')?: (\w+)", re.MULTILINE)


def is_parent_request(request: RecordedRequest) -> bool:
    """A parent agent's conversation: it may delegate, and it is not a task's (a task's
    conversation opens with its goal, which the subagent demo follows to the letter)."""
    return ("delegate_task" in request.tool_names
            and not request.first_user_text.startswith("Goal:\n"))


def parent_reply(request: RecordedRequest) -> tuple[str, list[ToolCall]]:
    """The demo parent's next text and tool calls."""
    messages = request.messages
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return _after_tools(messages), []
    text = content_text(last.get("content")).strip()
    if text.startswith(RESULTS_HEADER):
        return _summarise_results(text), []
    if _STATUS.search(text):
        return "[demo model] Let me look at the tasks.\n", [ToolCall("list_tasks", {})]
    parts = split_parts(text)
    calls = [ToolCall("delegate_task", {"goal": part, "name": f"part{i}",
                                        **_toolsets_for(part)})
             for i, part in enumerate(parts, 1)]
    plural = "s" if len(parts) > 1 else ""
    return f"[demo model] I'll hand this to {len(parts)} background subagent{plural}.\n", calls


def _toolsets_for(part: str) -> dict[str, list[str]]:
    """The tools a part needs, as a model would pick them: files for a path or a file, python
    for `code`; none asked for: the session's default."""
    toolsets = []
    if _FILEISH.search(part):
        toolsets.append("files")
    if "`" in part:
        toolsets.append("python")
    return {"toolsets": toolsets} if toolsets else {}


def split_parts(text: str) -> list[str]:
    """The parts of a request, in order (at most five); the whole request if it has one."""
    bullets = [m.group(1) for m in _BULLET.finditer(text)]
    if len(bullets) >= 2:
        parts = bullets
    elif len(_INLINE_NUMBERED.findall(text)) >= 2:
        parts = [p for p in _INLINE_NUMBERED.split(text) if p.strip()]
        parts = parts[1:] if len(parts) > 1 and not _INLINE_NUMBERED.match(text) else parts
    else:
        parts = re.split(r";|\band also\b|\bthen also\b", text)
    parts = [p.strip(" \n\t,.;:") for p in parts]
    parts = [p for p in parts if len(p) > 2]
    return parts[:MAX_PARTS] or [text]


def _after_tools(messages: list[dict[str, Any]]) -> str:
    """What the parent says once its tool calls of this turn have answered."""
    started: list[str] = []
    other: list[str] = []
    names = _call_names(messages)
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        name = names.get(message.get("tool_call_id", ""), "")
        answer = content_text(message.get("content")).strip()
        (started if name == "delegate_task" and re.fullmatch(r"t\d+", answer) else other
         ).insert(0, answer)
    if started:
        return (f"[demo model] Started {', '.join(started)} in the background. Carry on: "
                "their results come to me by themselves, and I will summarise them when "
                "you next talk to me (`%hermes` with no message is enough).")
    return "[demo model] " + " ".join(short(a, 300) for a in other)


def _summarise_results(text: str) -> str:
    lines = ["[demo model] Here is what came back:"]
    blocks = sorted(text.split("\n\n")[1:], key=_task_number)  # by task, not arrival
    for block in blocks:
        head = _HEADLINE.search(block)
        if head is None:
            continue
        task_id, name, state = head.groups()
        summary = block.partition("Summary:\n")[2].split("\n(The full result")[0]
        error = block.partition("Error: ")[2].split("\n")[0]
        said = short(summary or error or "no summary", 160)
        label = f"{task_id} ({name})" if name else task_id
        lines.append(f"- {label} {state}: {said}")
    if len(lines) == 1:
        lines.append("- nothing I could read.")
    return "\n".join(lines)


def _task_number(block: str) -> int:
    head = _HEADLINE.search(block)
    return int(head.group(1)[1:]) if head else 0


def _call_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            names[call.get("id", "")] = function.get("name", "")
    return names

