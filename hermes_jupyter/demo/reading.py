"""What the demo model reads: the conversation it is sent, and the goal's requests for tools.

Pure functions of the request, so the demo is deterministic: the same conversation always
gets the same reply, and everything it reports comes from tool results in the conversation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..engine.conversation import NOT_STARTED_CALL, UNAPPROVED_CALL
from ..engine.structured import OUTPUT_HEADING
from ..testing.records import RecordedRequest, content_text

__all__ = ["DRAFT", "Call", "Conversation", "Step", "plan"]

DRAFT = "\x00draft"  # a text argument the goal leaves open: filled with the work so far

STEER_PREFIX = "[steer from parent] "
FILE_TOOLS = {"list_files", "read_file", "write_file", "search_files"}
BUILTIN_TOOLS = FILE_TOOLS | {"run_python", "run_shell"}
_EXTENSIONS = "csv|tsv|txt|md|rst|json|jsonl|py|ipynb|ya?ml|toml|ini|cfg|log|xml|html?|sql|dat"
_PATH = re.compile(
    rf"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.(?:{_EXTENSIONS}))(?![\w/])", re.IGNORECASE
)
_FOLDER = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)+)(?=[\s,;:)]|$)")
_LIST_WORDS = re.compile(r"\b(list|files|folder|directory|workspace)\b", re.IGNORECASE)
_CODE = re.compile(r"`([^`\n]+)`")
_QUOTED = re.compile(r"\"([^\"\n]*)\"|“([^”\n]*)”|'([^'\n]{2,})'")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\w)")


@dataclass(frozen=True)
class Step:
    """One tool call the demo intends to make."""

    name: str
    args: dict[str, Any]

    @property
    def key(self) -> str:
        return self.name + json.dumps(self.args, sort_keys=True)


@dataclass(frozen=True)
class Call:
    """One tool call already made, with what came back."""

    name: str
    args: dict[str, Any]
    result: str

    @property
    def failed(self) -> bool:
        return self.result.startswith("Error:")


@dataclass
class Conversation:
    goal: str = ""
    context: str = ""
    steers: list[str] = field(default_factory=list)
    new_steers: list[str] = field(default_factory=list)  # arrived since the last answer
    calls: list[Call] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> parameters
    turns: int = 0  # assistant messages so far

    @classmethod
    def parse(cls, request: RecordedRequest) -> Conversation:
        convo = cls()
        for tool in request.tools or ():
            function = tool.get("function") or {}
            if isinstance(function.get("name"), str):
                convo.tools[function["name"]] = function.get("parameters") or {}
        first = request.first_user_text.split("\n\n" + OUTPUT_HEADING, 1)[0]
        body = first.removeprefix("Goal:\n")
        convo.goal, _, convo.context = body.partition("\n\nContext:\n")
        pending: dict[str, tuple[str, dict[str, Any]]] = {}
        for message in request.messages:
            role = message.get("role")
            text = content_text(message.get("content"))
            if role == "assistant":
                convo.turns += 1
                convo.new_steers = []
                for call in message.get("tool_calls") or ():
                    function = call.get("function") or {}
                    pending[call.get("id", "")] = (function.get("name", ""),
                                                   _json_object(function.get("arguments")))
            elif role == "tool":
                name, args = pending.pop(message.get("tool_call_id", ""), ("?", {}))
                if text not in (UNAPPROVED_CALL, NOT_STARTED_CALL):  # else: ask for it again
                    convo.calls.append(Call(name, args, text))
            elif role == "user" and text.startswith(STEER_PREFIX):
                steer = text[len(STEER_PREFIX):].strip()
                convo.steers.append(steer)
                convo.new_steers.append(steer)
        return convo


def plan(convo: Conversation) -> list[Step]:
    """Every tool call the goal and the steering messages ask for, in the order they ask."""
    steps: dict[str, Step] = {}
    for text in [convo.goal, *convo.steers]:
        for step in _steps_for(text, convo.tools):
            steps.setdefault(step.key, step)
    return list(steps.values())


def _steps_for(text: str, tools: dict[str, dict[str, Any]]) -> list[Step]:
    found: list[tuple[int, Step]] = []
    files = [(m.start(), m.group(1)) for m in _PATH.finditer(text)]
    if "list_files" in tools:
        folders = [(m.start(), m.group(1).rstrip("/")) for m in _FOLDER.finditer(text)]
        for pos, folder in folders:
            found.append((pos, Step("list_files", {"path": folder})))
        if "size" in text.lower():
            for pos, path in files:
                folder, _, name = path.rpartition("/")
                found.append((pos, Step("list_files", {"path": folder or ".", "pattern": name})))
        listing = _LIST_WORDS.search(text)
        if not folders and listing and not files:
            found.append((listing.start(), Step("list_files", {"path": "."})))
    if "read_file" in tools:
        found += [(pos + 1, Step("read_file", {"path": path})) for pos, path in files]
    if "run_shell" in tools:  # `a command` in backticks: the shell when offered
        found += [(m.start(), Step("run_shell", {"command": m.group(1)}))
                  for m in _CODE.finditer(text)]
    elif "run_python" in tools:
        found += [(m.start(), Step("run_python", {"code": _printing(m.group(1))}))
                  for m in _CODE.finditer(text)]
    for name, params in tools.items():
        if name in BUILTIN_TOOLS:
            continue
        mention = re.search(rf"\b{re.escape(name)}\b", text)
        if mention:
            found.append((mention.start(), Step(name, _arguments(text, params))))
    return [step for _, step in sorted(found, key=lambda pair: pair[0])]


def _arguments(text: str, params: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a notebook function: `name=value` in the text, else values in order."""
    properties: dict[str, Any] = params.get("properties") or {}
    required = set(params.get("required") or ())
    numbers = [m.group(0) for m in _NUMBER.finditer(text)]
    quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]
    args: dict[str, Any] = {}
    for name, schema in properties.items():
        kind = schema.get("type", "string")
        explicit = re.search(rf"\b{re.escape(name)}\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s,;]+)", text)
        if explicit:
            args[name] = _typed(explicit.group(1).strip("\"'"), kind)
        elif name not in required:
            continue
        elif kind in ("integer", "number") and numbers:
            args[name] = _typed(numbers.pop(0), kind)
        elif kind == "string":
            args[name] = quoted.pop(0) if quoted else DRAFT
        elif kind == "boolean":
            args[name] = True
        else:
            args[name] = [] if kind == "array" else {} if kind == "object" else None
    return args


def _typed(raw: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(float(raw))
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean":
        return raw.lower() in ("1", "true", "yes")
    return raw


def _printing(code: str) -> str:
    """An expression is wrapped in print() so its value shows; statements run as they are."""
    try:
        compile(code, "<demo>", "eval")
    except SyntaxError:
        return code
    return f"print({code})"


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
