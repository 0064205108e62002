"""A fan-out group shown in a notebook: one progress bar, updated in place by the session's
refresher (one comm message per tick at most, none once the group has ended).

In a real IPython shell (with the recording comm of test_dashboard.py) and in a real kernel
(jupyter_client, counting the comm messages on IOPub). No timing asserts: messages are
counted against the refresher's ticks and the engine's events.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.refresher import get_refresher
from hermes_jupyter.notebook.widgets.progress import GroupProgress, progress
from hermes_jupyter.testing import FakeLLM, Reply

from .conftest import FAST_RETRY, SECRET
from .kernel_frontend import KernelFrontend, is_idle, parent_id, running_kernel
from .test_dashboard import comm_of
from .test_dashboard import recording_comms as recording_comms  # the fixture

WIDGET = "application/vnd.jupyter.widget-view+json"
STREAM = Reply(text="word " * 40, chunk_size=5, delay=0.002)


class Events:
    """Counts the session's events (each a change a naive view would redraw on)."""

    def __init__(self, session: hj.Session) -> None:
        self.n = 0
        self._lock = threading.Lock()
        session.subscribe(self._on)

    def _on(self, _event: hj.Event) -> None:
        with self._lock:
            self.n += 1


@pytest.fixture
def shell_session(ip, llm, tmp_path) -> Iterator[hj.Session]:
    s = hj.Session(model="priced", base_url=llm.base_url, api_keys=[SECRET],
                   workspace=tmp_path, retry=FAST_RETRY, max_concurrent=8,
                   prices={"priced": (1.0, 2.0)})
    ip.user_ns["s"] = s
    yield s
    s.close()


def progress_updates(bar: GroupProgress) -> list[dict[str, Any]]:
    return [u["progress"] for u in comm_of(bar).updates() if "progress" in u]


def gated(llm: FakeLLM) -> threading.Event:
    """Every model call waits for the returned gate: opened, the tasks end in one burst."""
    gate = threading.Event()

    def answer(_request: Any) -> Reply:
        assert gate.wait(30)
        return STREAM

    llm.responder = answer
    return gate


def until_running(session: Any, group: Any, n: int) -> None:
    """Wait (on the session's events, no sleeps) until `n` of the group's tasks run."""
    changed = threading.Condition()

    def wake(_event: Any) -> None:
        with changed:
            changed.notify_all()

    stop = session.subscribe(wake)
    try:
        with changed:
            assert changed.wait_for(
                lambda: group.check().counts.get("running") == n, 30), group.check()
    finally:
        stop()


def test_a_group_as_a_cells_value_is_one_bar_updated_in_place(ip, shell_session, llm):
    gate = gated(llm)
    events = Events(shell_session)
    ip.run_cell("g = s.map('Say {item}', list(range(20)), name='numbers')")
    group = ip.user_ns["g"]
    data, _ = ip.display_formatter.format(group)  # what the cell `g` shows
    bar = progress(group)
    assert data[WIDGET]["model_id"] == bar.model_id
    assert data["text/plain"].startswith("group g1 'numbers': ")
    assert "<progress" in data["text/html"]
    assert ip.display_formatter.format(group)[0][WIDGET]["model_id"] == bar.model_id

    comm = comm_of(bar)
    until_running(shell_session, group, 8)
    gate.set()
    final = comm.wait_for(lambda u: u.get("progress", {}).get("ended") is True)["progress"]
    group.collect(20)
    assert (final["done"], final["total"], final["failed"]) == (20, 20, 0)
    assert final["tokens"] == sum(t.check().tokens for t in group.tasks)
    assert final["cost_usd"] == pytest.approx(group.check().usage.cost_usd)
    assert not bar.live

    updates = progress_updates(bar)
    assert updates[-1] == final and len(comm.sent) == len(updates), "nothing but the bar's line"
    assert len(updates) <= get_refresher(shell_session).ticks, "at most one message per tick"
    # A view redrawn per change would send one line per task that ended (20), and more per
    # event; ticks fold a burst of ends into a few messages.
    assert len(updates) < 20 and len(updates) < events.n / 10, "coalesced"
    assert all(a != b for a, b in itertools.pairwise(updates)), "only changes"
    dones = [u["done"] for u in updates]
    assert dones == sorted(dones)

    # Ended: later work in the session sends the bar nothing.
    llm.responder = None
    llm.default = Reply("later")
    ticked = threading.Event()
    stop = get_refresher(shell_session).add_sink(
        lambda changed, totals: ticked.set() if any(c.state.terminal for c in changed)
        else None)
    shell_session.delegate("after the group").collect(20)
    assert ticked.wait(10)
    stop()
    assert len(comm.sent) == len(updates)


def test_a_group_that_ended_before_it_is_shown_shows_its_end_and_never_listens(
        ip, shell_session, llm):
    llm.default = Reply("quick")
    group = shell_session.map("Say {item}", ["a", "b"])
    group.collect(20)
    data, _ = ip.display_formatter.format(group)
    bar = progress(group)
    assert bar.progress["ended"] and bar.progress["done"] == 2 and not bar.live
    assert "2/2 done" in data["text/plain"]


def test_a_cancelled_group_ends_its_bar(ip, shell_session, llm):
    llm.default = Reply(text="slow " * 2000, chunk_size=5, delay=0.01)
    group = shell_session.map("Say {item}", list(range(6)), max_concurrent=2)
    bar = progress(group)
    assert bar.live
    llm.wait_for_chunks(2)
    group.cancel()
    final = comm_of(bar).wait_for(lambda u: u.get("progress", {}).get("ended") is True)
    assert final["progress"]["counts"].get("cancelled") == 6 and not bar.live


# ---- a real kernel ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.mark.kernel
def test_in_a_kernel_the_bar_updates_then_stops(kernel_llm, tmp_path):
    gate = gated(kernel_llm)
    with running_kernel(str(tmp_path)) as kc:
        fe = KernelFrontend(kc)
        # No %load_ext: importing the package in a kernel registers the display.
        fe.stdout("import threading\n"
                  "import hermes_jupyter as hj\n"
                  "from hermes_jupyter.engine.refresher import get_refresher\n"
                  f"s = hj.Session(model='m', base_url={kernel_llm.base_url!r}, "
                  "api_keys=['sk-k'], max_concurrent=8)\n"
                  "events = []\n"
                  "_ = s.subscribe(events.append)")
        shown = fe.execute("g = s.map('Say {item}', list(range(16)), name='rows')\ng")
        [result] = [m for m in shown if m["msg_type"] == "execute_result"]
        model_id = result["content"]["data"][WIDGET]["model_id"]
        assert result["content"]["data"]["text/plain"].startswith("group g1 'rows': ")

        def line(msg: dict[str, Any]) -> dict[str, Any] | None:
            if msg["msg_type"] != "comm_msg" or msg["content"]["comm_id"] != model_id:
                return None
            state = msg["content"]["data"].get("state", {})
            return state.get("progress")

        fe.stdout("from typing import Any\n" + inspect.getsource(until_running)
                  + "until_running(s, g, 8)")
        gate.set()
        fe.wait(lambda m: (p := line(m)) is not None and p["ended"])
        out = fe.stdout("_ = g.collect(30)\n"
                        "bar = hj.notebook.widgets.progress.progress(g)\n"
                        "print(bar.live, get_refresher(s).ticks, len(events))")
        live, ticks, n_events = out.split()
        assert live == "False"
        # Later work: a tick goes out for it, and the bar's comm stays silent.
        after = fe.kc.execute(
            "seen = threading.Event()\n"
            "stop = get_refresher(s).add_sink(lambda c, t: seen.set() if any(\n"
            "    x.state.terminal for x in c) else None)\n"
            "_ = s.delegate('after').collect(30)\n"
            "assert seen.wait(10)\n"
            "s.close()")
        fe.wait(lambda m: is_idle(m, after))
        assert fe.kc.get_shell_msg(timeout=30)["content"]["status"] == "ok"
        lines = [p for m in fe.log if (p := line(m)) is not None]
        assert lines[-1]["ended"] and lines[-1]["done"] == 16
        assert sum(1 for p in lines if p["ended"]) == 1, "nothing after the end"
        assert len(lines) <= int(ticks) and len(lines) < 16 and len(lines) < int(n_events) / 10
        assert not [m for m in fe.log if parent_id(m) == after and line(m) is not None]
