"""The dashboard in a real kernel: comm traffic counted on IOPub, clicks over a subshell.

A `BlockingKernelClient` plays the frontend, the loopback FakeLLM runs in this process (so the
kernel spends its CPU on the engine, not on serving chunks). Rates are measured over wall-clock
windows and written to test-artifacts/dashboard-rates.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hermes_jupyter.testing import FakeLLM, Reply

from .kernel_frontend import ROOT, KernelFrontend, is_idle, running_kernel

WINDOW = 3.0  # seconds of streaming counted
IDLE_WINDOW = 2.0  # seconds of silence required after the tasks end
MAX_HZ = 10
RATES: dict[str, dict[str, float]] = {}

pytestmark = pytest.mark.kernel


class Frontend(KernelFrontend):
    """The widget manager's side of one dashboard's comm."""

    def update(self, predicate: Callable[[dict[str, Any]], bool],
               timeout: float = 60) -> dict[str, Any]:
        """The first state update of the dashboard satisfying predicate (on its state)."""
        msg = self.wait(lambda m: (state := update_of(m, self.comm_id)) is not None
                        and predicate(state), timeout)
        state = update_of(msg, self.comm_id)
        assert state is not None
        return state

    def reply(self, req: str, timeout: float = 60) -> dict[str, Any]:
        """The dashboard's answer to one click."""
        def match(m: dict[str, Any]) -> bool:
            return is_comm_msg(m, self.comm_id) and m["content"]["data"].get("method") == (
                "custom") and m["content"]["data"]["content"].get("req") == req

        reply: dict[str, Any] = self.wait(match, timeout)["content"]["data"]["content"]
        return reply

    def click(self, subshell_id: str | None = None, **fields: Any) -> str:
        """Send one button's action the way the widget manager does; returns its req id."""
        req = self.next_request_id()
        self.send_shell("comm_msg", {"comm_id": self.comm_id, "data": {
            "method": "custom", "content": {"type": "action", "req": req, **fields}}},
            subshell_id)
        return req


def is_comm_msg(msg: dict[str, Any], comm_id: str) -> bool:
    return msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id


def update_of(msg: dict[str, Any], comm_id: str) -> dict[str, Any] | None:
    """The state a dashboard update carries (`task:<id>` cards, `_ids`, `_totals`), else None."""
    if not is_comm_msg(msg, comm_id):
        return None
    data = msg["content"]["data"]
    return data.get("state") if data.get("method") == "update" else None


def cards_in(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in state.items() if k.startswith("task:")]


def counts(state: dict[str, Any], name: str) -> int | None:
    return state["_totals"]["counts"][name] if "_totals" in state else None


@pytest.fixture(scope="module")
def rate_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frontend]:
    try:
        with running_kernel(str(tmp_path_factory.mktemp("kernel"))) as kc:
            fe = Frontend(kc)
            fe.stdout("import hermes_jupyter as hj\n"
                      "from hermes_jupyter.notebook.widgets import dashboard\n")
            yield fe
    finally:
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        (artifacts / "dashboard-rates.json").write_text(json.dumps(RATES, indent=2))


def open_dashboard(fe: Frontend, llm: FakeLLM, max_concurrent: int = 8) -> None:
    """A fresh session `s` and its dashboard `d` in the kernel; the frontend learns its comm."""
    fe.comm_id = fe.stdout(
        f"s = hj.Session(model='m', base_url={llm.base_url!r}, api_keys=['sk-k'], "
        f"max_concurrent={max_concurrent})\n"
        "d = dashboard(s)\n"
        "assert dashboard(s) is d\n"
        "print(d.model_id, end='')"
    )
    assert fe.comm_id


@pytest.mark.parametrize("n_tasks", [1, 16, 64])
def test_comm_traffic_is_bounded_while_streaming_and_zero_when_idle(frontend, rate_llm,
                                                                    n_tasks):
    fe, llm = frontend, rate_llm
    # 100 chunks/s per task asked of the server, for far longer than the window
    stream = Reply(text="streaming words here\n" * 2000, chunk_size=5, delay=0.01)
    llm.on(f"stream{n_tasks} ", *[stream] * n_tasks)  # one scripted reply per request
    open_dashboard(fe, llm, max_concurrent=n_tasks)
    fe.stdout(f"ts = [s.delegate('stream{n_tasks} ' + str(i)) for i in range({n_tasks})]")
    fe.update(lambda u: counts(merged(fe), "running") == n_tasks
              and all(c["tail"] for c in cards_in(merged(fe))))

    chunks_before, start = llm.chunks_sent, time.monotonic()
    window = [m for m in iter_window(fe, start + WINDOW) if is_comm_msg(m, fe.comm_id)]
    elapsed = time.monotonic() - start
    chunks = llm.chunks_sent - chunks_before
    updates = [update_of(m, fe.comm_id) for m in window]
    assert all(u is not None for u in updates), "only state updates while nobody clicks"
    assert all(c["state"] == "running" for c in cards_in(updates[-1])), "still streaming"
    assert chunks > n_tasks * elapsed * 5, "the tasks really streamed during the window"
    assert len(window) <= MAX_HZ * elapsed + 2

    fe.stdout("s.cancel_all()")
    fe.update(lambda u: counts(merged(fe), "cancelled") == n_tasks)
    fe.stdout("for t in ts: t.collect(timeout=30)")
    # The refresher's last tick carries the last change; after it, silence.
    fe.update(lambda u: all_cards_final(fe, n_tasks))
    idle_start = time.monotonic()
    idle = [m for m in iter_window(fe, idle_start + IDLE_WINDOW) if is_comm_msg(m, fe.comm_id)]
    assert idle == []

    RATES[f"{n_tasks} tasks"] = {
        "comm_msgs_per_s": round(len(window) / elapsed, 2),
        "tasks_per_update": round(sum(len(cards_in(u)) for u in updates) / len(updates), 1),
        "bytes_per_s": round(sum(len(json.dumps(u)) for u in updates) / elapsed),
        "chunks_per_s_per_task": round(chunks / elapsed / n_tasks, 1),
        "idle_comm_msgs": len(idle),
        "window_s": round(elapsed, 2),
    }
    print(f"\n{n_tasks} tasks: {RATES[f'{n_tasks} tasks']}")
    fe.stdout("s.close()")


def iter_window(fe: Frontend, deadline: float) -> Iterator[dict[str, Any]]:
    """Every IOPub message arriving until deadline (a measured window, not a sleep)."""
    while (msg := fe.next_msg(deadline)) is not None:
        yield msg


def merged(fe: Frontend) -> dict[str, Any]:
    """The model state the frontend has: every update's keys set in turn (as nbclient does)."""
    state: dict[str, Any] = {}
    for msg in fe.log:
        update = update_of(msg, fe.comm_id)
        if update:
            state.update(update)
    return state


def all_cards_final(fe: Frontend, n_tasks: int) -> bool:
    """Every card the frontend has, replayed from the deltas seen so far, is terminal."""
    cards = cards_in(merged(fe))
    return len(cards) == n_tasks and all(c["terminal"] for c in cards)


def test_buttons_work_while_a_cell_is_busy(frontend, rate_llm):
    fe, llm = frontend, rate_llm
    llm.on("busy job", Reply(text="working hard\n" * 1000, chunk_size=4, delay=0.01))
    open_dashboard(fe, llm)
    subshell = fe.create_subshell()  # JupyterLab ≥ 4.4 sends comm messages on one of these
    busy = fe.kc.execute("t = s.delegate('busy job')\nr = t.collect(timeout=60)")
    fe.update(lambda u: "task:t1" in u and u["task:t1"]["state"] == "running"
              and bool(u["task:t1"]["tail"]))

    reply = fe.reply(fe.click(subshell, action="steer", task="t1", message="wrap up"))
    assert reply["ok"], reply["text"]
    reply = fe.reply(fe.click(subshell, action="cancel", task="t1"))
    assert reply["ok"] and reply["text"] == "Cancelling t1…"
    assert not any(is_idle(m, busy) for m in fe.log), "answered while the cell was busy"
    fe.update(lambda u: "task:t1" in u and u["task:t1"]["state"] == "cancelled")
    fe.wait(lambda m: is_idle(m, busy))
    assert fe.kc.get_shell_msg(timeout=30)["content"]["status"] == "ok"

    reply = fe.reply(fe.click(action="collect", task="t1", variable="result_t1"))
    assert reply["ok"] and "stored in `result_t1`" in reply["text"]
    out = fe.stdout("print(type(result_t1).__name__, result_t1.state.value, result_t1 is r)")
    assert out.split() == ["TaskResult", "cancelled", "True"]
    fe.stdout("s.close()")
