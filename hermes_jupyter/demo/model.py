"""The offline demo model: a small, honest, deterministic agent behind the OpenAI wire format.

With no API key and no endpoint, the notebook experience still works end to end: tasks stream,
call tools, take steering and return summaries, all labelled `demo` and starting with
"[demo model]". It is a `FakeLLM` (hermes_jupyter.testing) on loopback whose `responder` is a
`DemoAgent`, so the engine runs exactly as it does against a real endpoint.

What the demo does, from the conversation alone (it never reads the disk itself):
- lists the folders and reads the files the goal names, with the `files` toolset, and reports
  line counts, sizes, and per-column statistics of CSV files from the tool results;
- runs `code in backticks` with the `python` toolset, or as a shell command with the `shell`
  toolset (which waits for approval: `%approve_task`);
- calls a notebook function given with `-t` / `tools=` when the goal names it;
- acknowledges `[steer from parent]` messages, acts on files or functions they name, and
  quotes the data rows they mention in its summary;
- with `output_type=`, answers a JSON object matching the schema (`typed.py`: fields named
  like the fan-out item's keys take its values, the rest are made up, deterministically).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigurationError
from ..core.text import short
from ..engine.session import Session
from ..engine.task import Task
from ..testing import FakeLLM, RecordedRequest, Reply, ToolCall
from .parent import is_parent_request, parent_reply
from .reading import DRAFT, Call, Conversation, Step, plan
from .typed import typed_answer

__all__ = ["DEMO_MODEL", "DemoAgent", "DemoSession", "demo_session"]

DEMO_MODEL = "demo"
_NOT_FOR_DEMO = ("model", "subagent_model", "base_url", "api_keys")
_STOPWORDS = frozenset({
    "the", "and", "for", "with", "about", "also", "that", "this", "then", "than", "from",
    "into", "onto", "what", "which", "please", "focus", "mention", "more", "less", "only",
    "just", "your", "you", "our", "their", "them", "they", "its", "are", "was", "were",
    "will", "would", "should", "could", "can", "not", "but", "all", "any", "each", "per",
})


@dataclass(frozen=True)
class DemoAgent:
    """`FakeLLM.responder` that acts like a small agent. `pace` scales its streaming delays:
    1.0 makes a task take about 1-3 s with visible streaming; 0 answers at full speed."""

    pace: float = 1.0

    def __call__(self, request: RecordedRequest) -> Reply:
        try:
            if is_parent_request(request):
                text, calls = parent_reply(request)
                return self._stream(text, calls, chunk=24)
            return self._reply(request, Conversation.parse(request))
        except Exception as err:  # a bug in the demo must read as an answer, not a 500 loop
            return Reply(text=f"[demo model] I could not follow this conversation "
                              f"({type(err).__name__}: {err}).")

    def _reply(self, request: RecordedRequest, convo: Conversation) -> Reply:
        steps = plan(convo)
        lines = self._thoughts(convo, steps)
        if len(convo.calls) < len(steps):
            step = _fill_drafts(steps[len(convo.calls)], convo)
            lines.append(f"Next: {_call_text(step)}")
            return self._stream("\n".join(lines) + "\n",
                                [ToolCall(step.name, step.args)], chunk=12)
        typed = typed_answer(request, convo.goal, convo.context)
        return self._stream(typed if typed is not None else summarise(convo), [], chunk=24)

    def _thoughts(self, convo: Conversation, steps: list[Step]) -> list[str]:
        lines: list[str] = []
        if convo.turns == 0:
            lines.append(f"Reading the goal: {short(convo.goal, 70)}")
            if not steps:
                lines.append("No tool the goal asks for is available, so I answer at once.")
        for steer in convo.new_steers:
            lines.append(f"Steer received: “{short(steer, 70)}”. Adjusting my plan.")
        if convo.calls:
            last = convo.calls[-1]
            first = last.result.splitlines()[0] if last.result else "(empty)"
            lines.append(f"{last.name} gave: {short(first, 60)}")
        return lines

    def _stream(self, text: str, calls: list[ToolCall], chunk: int) -> Reply:
        return Reply(text=text, tool_calls=calls, chunk_size=chunk,
                     delay=0.04 * self.pace, first_delay=0.15 * self.pace)


class DemoSession(Session):
    """A `Session` on the built-in demo model; it owns the loopback server it talks to.

    Every task runs on "demo": a `model=` given to `delegate` is ignored, so no result ever
    claims to come from a model that did not produce it.
    """

    is_demo = True

    def __init__(self, *, pace: float = 1.0, **kwargs: Any) -> None:
        clash = [name for name in _NOT_FOR_DEMO if kwargs.get(name) is not None]
        if clash:
            raise ConfigurationError(
                f"demo_session() takes no {clash[0]}: the demo model needs no endpoint, key or "
                "model name. Use hj.Session(...) for a real model."
            )
        for name in _NOT_FOR_DEMO:
            kwargs.pop(name, None)
        self._demo_llm = FakeLLM()
        self._demo_llm.responder = DemoAgent(pace)
        self._demo_llm.start()
        try:
            super().__init__(model=DEMO_MODEL, base_url=self._demo_llm.base_url,
                             api_keys=["demo-needs-no-key"], **kwargs)
        except BaseException:
            self._demo_llm.stop()
            raise

    @property
    def pace(self) -> float:
        """Scale of the demo's streaming delays; settable while tasks run."""
        responder = self._demo_llm.responder
        return responder.pace if isinstance(responder, DemoAgent) else 0.0

    @pace.setter
    def pace(self, value: float) -> None:
        self._demo_llm.responder = DemoAgent(float(value))

    def delegate(self, goal: str, context: str = "", *, model: str | None = None,
                 **kwargs: Any) -> Task:
        """As `Session.delegate`, always on the demo model."""
        return super().delegate(goal, context, **kwargs)

    def close(self, timeout: float = 2.0) -> None:
        super().close(timeout)
        self._demo_llm.stop()


def demo_session(**kwargs: Any) -> DemoSession:
    """A Session on the offline demo model, for trying every feature without a key.

    Takes Session's keyword arguments except model, subagent_model, base_url and api_keys,
    plus `pace` (1.0: about 1-3 s a task; 0: instant).
    """
    return DemoSession(**kwargs)


def _fill_drafts(step: Step, convo: Conversation) -> Step:
    """Text arguments the goal left open get what the demo has so far (or the goal)."""
    if DRAFT not in step.args.values():
        return step
    draft = summarise(convo) if convo.calls else convo.goal
    return Step(step.name, {k: draft if v == DRAFT else v for k, v in step.args.items()})


# ---- the final answer ----------------------------------------------------------------------
def summarise(convo: Conversation) -> str:
    """What the demo did, built only from the conversation: tool results, steers, context."""
    parts: list[str] = []
    sizes = _sizes(convo.calls)
    tables: list[list[dict[str, str]]] = []
    read = {c.args.get("path") for c in convo.calls if c.name == "read_file" and not c.failed}
    for call in convo.calls:
        if call.name == "list_files" and call.args.get("pattern") and _only_file(call) in read:
            continue  # its size is told with the file's line count
        sentence, table = _describe(call, sizes)
        parts.append(sentence)
        if table:
            tables.append(table)
    if convo.context:
        parts.append(_describe_context(convo.context))
    for steer in convo.steers:
        parts.append(_reflect_steer(steer, tables))
    if not convo.calls:
        offered = ", ".join(convo.tools) or "none"
        parts.append(
            f"I am a scripted stand-in for a language model, so I did not work on "
            f"“{short(convo.goal, 80)}” itself. Tools offered: {offered}. Name a file with "
            "--toolsets files, put `code` in backticks with --toolsets python (or a "
            "command with --toolsets shell), or name a "
            "function passed with -t, and I will use them."
        )
    return "[demo model] " + " ".join(parts)


def _describe(call: Call, sizes: dict[str, int]) -> tuple[str, list[dict[str, str]]]:
    if call.failed:
        return f"{call.name} failed: {short(call.result[6:].strip(), 120)}.", []
    if call.name == "list_files":
        return _describe_listing(call), []
    if call.name == "read_file":
        return _describe_read(call, sizes)
    if call.name in ("run_python", "run_shell"):
        output = call.result.strip().splitlines()
        shown = output[0] if output else "(no output)"
        code = call.args.get("code" if call.name == "run_python" else "command", "")
        return f"Ran `{short(code, 60)}`: {short(shown, 80)}.", []
    return f"Called {_call_text(Step(call.name, call.args))}, which returned "\
           f"{short(call.result, 100)!r}.", []


def _only_file(call: Call) -> str | None:
    rows = [line.split("\t")[0] for line in call.result.splitlines() if "\t" in line]
    return rows[0] if len(rows) == 1 else None


def _describe_listing(call: Call) -> str:
    rows = [line.split("\t") for line in call.result.splitlines() if "\t" in line]
    where = call.args.get("path", ".")
    if not rows:
        return f"{where} holds no matching files."
    if call.args.get("pattern") and len(rows) == 1:
        return f"{rows[0][0]} is {_bytes(rows[0][1])}."
    shown = ", ".join(f"{name} ({_bytes(size)})" for name, size in rows[:6])
    more = f" and {len(rows) - 6} more" if len(rows) > 6 else ""
    return f"{where} holds {len(rows)} file{'s' if len(rows) != 1 else ''}: {shown}{more}."


def _describe_read(call: Call, sizes: dict[str, int]) -> tuple[str, list[dict[str, str]]]:
    header, _, body = call.result.partition("\n")
    path = call.args.get("path", "?")
    count = header.split(": ", 1)[-1].split(" lines", 1)[0]
    size = f" ({_bytes(sizes[path])})" if path in sizes else ""
    sentence = f"{path}{size} has {count} lines."
    if not path.lower().endswith((".csv", ".tsv")):
        return sentence, []
    rows = list(csv.DictReader(body.splitlines(), delimiter="\t" if path.endswith("tsv") else ","))
    if not rows:
        return sentence, []
    columns = list(rows[0])
    stats = [s for s in (_column_stats(c, rows) for c in columns) if s]
    sentence += (f" As a table: {len(rows)} rows by {len(columns)} columns "
                 f"({', '.join(columns)}).")
    if stats:
        sentence += " " + " ".join(stats[:4])
    return sentence, rows


def _column_stats(column: str, rows: list[dict[str, str]]) -> str | None:
    values: list[tuple[float, int]] = []
    for i, row in enumerate(rows):
        try:
            values.append((float((row.get(column) or "").replace(",", "")), i))
        except ValueError:
            return None
    if not values:
        return None
    numbers = [v for v, _ in values]
    low, high = min(values), max(values)
    label = next(iter(rows[0]))

    def where(index: int) -> str:
        return "" if label == column else f" ({rows[index][label]})"

    return (f"{column}: total {_num(sum(numbers))}, mean {_num(statistics.fmean(numbers))}, "
            f"min {_num(low[0])}{where(low[1])}, max {_num(high[0])}{where(high[1])}.")


def _describe_context(context: str) -> str:
    names = [line[4:].split(" (", 1)[0] for line in context.splitlines()
             if line.startswith("### ")]
    what = f" (variables: {', '.join(names)})" if names else ""
    return f"I was handed {len(context)} characters of context{what}."


def _reflect_steer(steer: str, tables: list[list[dict[str, str]]]) -> str:
    words = [w for w in _words(steer) if w not in _STOPWORDS]
    hits: list[str] = []
    for rows in tables:
        for row in rows:
            cells = [str(v).lower() for v in row.values()]
            if any(_matches(word, cell) for word in words for cell in cells):
                hits.append(", ".join(f"{k}={v}" for k, v in row.items()))
    if hits:
        more = f" (and {len(hits) - 3} more)" if len(hits) > 3 else ""
        return f"As steered (“{short(steer, 60)}”), the rows it points at: " \
               f"{'; '.join(hits[:3])}{more}."
    return f"Steer “{short(steer, 60)}” acknowledged; it named nothing in the data I read."


def _sizes(calls: list[Call]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for call in calls:
        if call.name == "list_files" and not call.failed:
            for line in call.result.splitlines():
                name, _, size = line.partition("\t")
                if size.isdigit():
                    sizes[name] = int(size)
    return sizes


def _matches(word: str, cell: str) -> bool:
    return len(cell) >= 3 and (word.startswith(cell) or cell.startswith(word))


def _words(text: str) -> list[str]:
    return ["".join(ch for ch in w if ch.isalnum()).lower() for w in text.split()
            if len("".join(ch for ch in w if ch.isalnum())) >= 3]


def _call_text(step: Step) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in step.args.items())
    return f"{step.name}({short(args, 80)})"


def _bytes(size: str | int) -> str:
    n = int(size)
    return f"{n} bytes" if n < 10_000 else f"{n / 1024:.1f} KiB"


def _num(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"

