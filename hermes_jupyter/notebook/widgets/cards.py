"""The dashboard's wire format: one JSON "card" per task, plus the header totals.

Cards are what the browser view renders, what a saved notebook keeps as widget state and what
the static HTML table is drawn from. They are bounded: a running task carries its last
`TAIL_LINES` lines of output, a finished one `FINISHED_TAIL_LINES`, every string is clipped, so
a tick's message stays small whatever the task printed.
"""

from __future__ import annotations

from typing import Any

from ...core.models import TaskState, TaskStatus

__all__ = [
    "FINISHED_TAIL_LINES",
    "STATES",
    "TAIL_LINES",
    "card",
    "clip",
    "layout",
    "newest_first",
    "totals_card",
]

TAIL_LINES = 10
"""Lines of recent output a live task's card carries."""
FINISHED_TAIL_LINES = 5
"""Lines kept on a finished task's card (it shows its summary or error instead)."""
SUMMARY_LINES = 6
STATES = tuple(s.value for s in sorted(
    TaskState, key=lambda s: (s.terminal, s is not TaskState.RUNNING)))
"""Every state, from `core.models.TaskState` (running first, live before ended): the header
counts, the filter and the static table follow it; dashboard.js reads it from `_totals`."""
_LINE = 300
_TEXT = 800


def card(status: TaskStatus) -> dict[str, Any]:
    """The JSON card of one task snapshot; equal snapshots give equal cards."""
    terminal = status.state.terminal
    tail = status.recent_output[-(FINISHED_TAIL_LINES if terminal else TAIL_LINES):]
    return {
        "id": status.id,
        "name": status.name,
        "state": status.state.value,
        "terminal": terminal,
        "model": status.model,
        "goal": clip(status.goal, _LINE),
        "elapsed_s": round(status.elapsed_s, 1),
        "api_calls": status.api_calls,
        "tokens": status.tokens,
        "activity": clip(status.activity, 120),
        "last_tool": status.last_tool,
        "tail": [clip(line, _LINE) for line in tail],
        "steering": [
            {"message": clip(s.message, _LINE), "delivered": s.delivered}
            for s in status.steering
        ],
        "summary": _head(status.summary) if terminal else None,
        "error": clip(status.error, _TEXT) if status.error else None,
        "version": status.version,
        "cost_usd": status.cost_usd,
        "owner": status.owner,
        "parent_id": status.parent_id,
        "depth": status.depth,
        "group_id": status.group_id,
        "pending": [
            {"call_id": p.call_id, "tool": p.tool, "arguments": clip(p.arguments, _TEXT),
             "reason": clip(p.reason, _LINE)}
            for p in status.pending_approvals
        ],
    }


def totals_card(totals: dict[str, Any]) -> dict[str, Any]:
    """The header (from `refresher.session_totals`): counts by state, token and call totals,
    `cost_usd` (known cost, USD, or None) and `cost_unknown` (tasks without a price), the
    fan-out `groups`, the parent `agents` and `waiting` (results queued for all parents)."""
    agents = [{"name": clip(str(a["name"]), 80), "owner": a["owner"], "waiting": a["waiting"],
               "children": a["children"], "live": a["live"]} for a in totals.get("agents", [])]
    groups = [{**g, "name": clip(g["name"], 80) if g.get("name") else g.get("name"),
               "goal": clip(str(g.get("goal", "")), _LINE)} for g in totals.get("groups", [])]
    return {
        "counts": {s: int(totals.get("counts", {}).get(s, 0)) for s in STATES},
        "tokens": int(totals.get("total_tokens", 0)),
        "api_calls": int(totals.get("api_calls", 0)),
        "cost_usd": totals.get("cost_usd"),
        "cost_unknown": int(totals.get("cost_unknown", 0)),
        "groups": groups,
        "agents": agents,
        "waiting": sum(int(a["waiting"]) for a in agents),
    }


def newest_first(cards: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards ordered as the view shows them: the newest task (highest id number) first."""
    return sorted(cards.values(), key=lambda c: _number(c["id"]), reverse=True)


def layout(cards: dict[str, dict[str, Any]], header: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the views show, in order: the tree rule of every face (FACES.md).

    Top level: one `{"kind": "agent", "id": owner}` row per parent agent (those of
    `header["agents"]`, then any other "agent:NAME" owner seen on a task), then the user's
    tasks newest first. An agent's tasks follow it, a task's children (`parent_id`) follow
    that task, each row with its `depth` (0 at the top). The tasks of a fan-out group are one
    `{"kind": "group", "id": "g1", "tasks": [ids, oldest first]}` row, placed where its first
    task would be; children of a group's tasks follow the group row.
    """
    owners = [a["owner"] for a in header.get("agents", [])]
    owners += sorted({o for c in cards.values() if (o := c.get("owner") or "")
                      .startswith("agent:")} - set(owners))
    groups: dict[str, list[str]] = {}
    for c in sorted(cards.values(), key=lambda c: _number(c["id"])):
        if c.get("group_id"):
            groups.setdefault(c["group_id"], []).append(c["id"])
    home = {tid: ("group", gid) for gid, ids in groups.items() for tid in ids}
    under: dict[tuple[str, str] | None, list[tuple[int, tuple[str, str]]]] = {}
    for c in cards.values():
        node = home.get(c["id"], ("task", c["id"]))
        if node[0] == "group" and groups[node[1]][0] != c["id"]:
            continue  # a group is placed once, by its first task
        parent_id, owner = c.get("parent_id"), c.get("owner") or ""
        parent: tuple[str, str] | None = None
        if parent_id in cards:
            parent = home.get(parent_id, ("task", parent_id))
        elif owner.startswith("agent:"):
            parent = ("agent", owner)
        under.setdefault(parent, []).append((_number(c["id"]), node))
    rows: list[dict[str, Any]] = []

    def visit(node: tuple[str, str], depth: int) -> None:
        row: dict[str, Any] = {"kind": node[0], "id": node[1], "depth": depth}
        if node[0] == "group":
            row["tasks"] = groups[node[1]]
        rows.append(row)
        for _, child in sorted(under.get(node, []), key=lambda n: -n[0]):
            visit(child, depth + 1)

    for owner in owners:
        visit(("agent", owner), 0)
    for _, node in sorted(under.get(None, []), key=lambda n: -n[0]):
        visit(node, 0)
    return rows


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _head(summary: str | None) -> str | None:
    if not summary:
        return summary
    lines = summary.strip().splitlines()
    head = "\n".join(lines[:SUMMARY_LINES])
    if len(lines) > SUMMARY_LINES:
        head += "\n…"
    return clip(head, _TEXT)


def _number(task_id: str) -> int:
    digits = task_id[1:]
    return int(digits) if digits.isdigit() else -1
