"""The dashboard model against a real Session and the loopback FakeLLM, over a recording comm.

As in ipywidgets' own tests, `comm.create_comm` is swapped for a class that records what the
kernel would send; the tests play the frontend by handing it messages the way ipykernel does.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import comm as comm_package
import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.refresher import get_refresher
from hermes_jupyter.notebook.widgets import Dashboard, dashboard
from hermes_jupyter.notebook.widgets.cards import FINISHED_TAIL_LINES, TAIL_LINES
from hermes_jupyter.testing import Reply, ToolCall

from .conftest import FAST_RETRY, SECRET

WAIT = 10.0


class RecordingComm:
    """Stands in for ipykernel's comm: records sends, plays the frontend's messages."""

    kernel = "a kernel"  # ipywidgets only sends when the comm has one
    _reqs = itertools.count(1)

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = uuid.uuid4().hex
        self.open_state: dict[str, Any] = kwargs["data"]["state"]
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self._cond = threading.Condition()
        self._handler: Callable[[dict[str, Any]], None] | None = None

    # ---- what ipywidgets calls
    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._handler = callback

    def send(self, data: dict[str, Any], metadata: Any = None, buffers: Any = None) -> None:
        with self._cond:
            self.sent.append(data)
            self._cond.notify_all()

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.closed = True

    def _reply_subshell_for(self, data: Any, default: str | None) -> str | None:
        return "main-shell"  # what ipykernel 7.4 answers after a send from a plain thread

    # ---- the frontend's side
    def frontend(self, data: dict[str, Any]) -> None:
        assert self._handler is not None
        self._handler({"content": {"comm_id": self.comm_id, "data": data}, "buffers": []})

    def click(self, **fields: Any) -> dict[str, Any]:
        """Send one action; handlers answer synchronously, so the reply is already here."""
        req = f"r{next(self._reqs)}"
        self.frontend({"method": "custom", "content": {"type": "action", "req": req, **fields}})
        [reply] = [m for m in self.customs("reply") if m["req"] == req]
        return reply

    def customs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Custom messages (button replies), oldest first."""
        with self._cond:
            return [m["content"] for m in self.sent if m["method"] == "custom"
                    and (kind is None or m["content"]["type"] == kind)]

    def updates(self) -> list[dict[str, Any]]:
        """The partial states the kernel sent (one per refresher tick), oldest first."""
        with self._cond:
            return [m["state"] for m in self.sent if m["method"] == "update"]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first state update satisfying predicate, waiting for it (no sleeps)."""
        with self._cond:
            found: list[dict[str, Any]] = []

            def ready() -> bool:
                found[:] = [m["state"] for m in self.sent
                            if m["method"] == "update" and predicate(m["state"])]
                return bool(found)

            assert self._cond.wait_for(ready, WAIT), f"no such update in {self.sent!r}"
            return found[0]


def cards_in(update: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in update.items() if k.startswith("task:")]


def has_card(update: dict[str, Any], task_id: str, state: str | None = None,
             check: Callable[[dict[str, Any]], bool] = lambda c: True) -> bool:
    c = update.get(f"task:{task_id}")
    return c is not None and (state is None or c["state"] == state) and check(c)


def replay(comm: RecordingComm) -> dict[str, dict[str, Any]]:
    """What the browser's model holds: the open state, then every update's keys set on it."""
    state = dict(comm.open_state)
    for update in comm.updates():
        state.update(update)
    return {task_id: state[f"task:{task_id}"] for task_id in state["_ids"]}


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    made: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(comm_package, "create_comm", create_comm)
    yield made


@pytest.fixture
def namespace() -> dict[str, Any]:
    return {}


@pytest.fixture
def dash(session: hj.Session, namespace: dict[str, Any]) -> Iterator[Dashboard]:
    d = Dashboard(session, namespace=namespace)
    yield d
    d.close()


def comm_of(d: Dashboard) -> RecordingComm:
    assert isinstance(d.comm, RecordingComm)
    return d.comm


@pytest.fixture
def long_task(session: hj.Session, llm) -> Iterator[hj.Task]:
    """A task that streams for a long while: running until the test cancels it."""
    llm.on("a long job", Reply(text="working on it\n" * 300, chunk_size=4, delay=0.01))
    task = session.delegate("a long job", name="long")
    llm.wait_for_chunks(2)
    yield task
    task.cancel()


# ---- the model and its snapshot -----------------------------------------------------------

def test_opens_with_a_snapshot_of_existing_tasks(session, llm, namespace):
    llm.default = Reply(text="line one\nline two\n" * 20 + "All done.")
    session.delegate("first job", name="first").collect(WAIT)
    d = Dashboard(session, namespace=namespace)
    state = comm_of(d).open_state
    assert state["_ids"] == ["t1"]
    c = state["task:t1"]
    assert c["id"] == "t1" and c["name"] == "first" and c["state"] == "succeeded"
    assert c["terminal"] and c["summary"].startswith("line one") and c["error"] is None
    assert len(c["tail"]) == FINISHED_TAIL_LINES and c["tokens"] > 0
    assert state["_totals"]["counts"]["succeeded"] == 1
    assert state["_esm"].lstrip().startswith("//") and ".hj-dash" in state["_css"]
    d.close()


def test_one_delta_per_tick_with_only_the_changed_tasks(session, llm, dash):
    comm = comm_of(dash)
    llm.on("quick", Reply(text="done quickly"))
    quick = session.delegate("quick")
    comm.wait_for(lambda m: has_card(m, quick.id, "succeeded"))
    llm.on("stream", Reply(text="x" * 3 + "\n" * 1 + "word " * 400, chunk_size=3, delay=0.005))
    streaming = session.delegate("stream a lot")
    comm.wait_for(lambda m: has_card(m, streaming.id, "succeeded"))

    updates = comm.updates()
    assert len(comm.sent) == len(updates), "no other message"
    assert len(updates) <= get_refresher(session).ticks, "at most one message per tick"
    assert len(updates) < llm.chunks_sent / 4, "coalesced, not one per chunk"
    after_quick = updates[next(i for i, u in enumerate(updates) if has_card(u, quick.id,
                                                                           "succeeded")) + 1:]
    assert not any(has_card(u, quick.id) for u in after_quick), "unchanged cards are not re-sent"
    assert [u["_ids"] for u in updates if "_ids" in u] == [["t1"], ["t1", "t2"]]
    assert all(len(c["tail"]) <= TAIL_LINES for u in updates for c in cards_in(u))
    versions = [u[f"task:{streaming.id}"]["version"] for u in updates if has_card(u, "t2")]
    assert versions == sorted(set(versions)), "each update carries a newer card"
    assert replay(comm) == {c["id"]: c for c in reversed(dash.cards())}


def test_nothing_is_sent_when_nothing_changed(session, llm, dash):
    comm = comm_of(dash)
    task = session.delegate("settle down")
    comm.wait_for(lambda m: has_card(m, task.id, "succeeded") and
                  m["_totals"]["counts"]["succeeded"] == 1)
    sent = len(comm.sent)
    ticked = threading.Event()
    refresher = get_refresher(session)
    remove = refresher.add_sink(lambda changed, totals: ticked.set())  # runs after the dashboard
    refresher.mark(task.id)  # a tick with the task "changed", though its card is the same
    assert ticked.wait(WAIT)
    remove()
    assert len(comm.sent) == sent


def test_request_state_returns_the_current_cards(session, llm, dash):
    comm = comm_of(dash)
    assert comm.open_state["_ids"] == [] and comm.open_state["_totals"]["tokens"] == 0
    first = session.delegate("after open")
    comm.wait_for(lambda m: has_card(m, first.id, "succeeded"))
    second = session.delegate("another")
    comm.wait_for(lambda m: has_card(m, second.id, "succeeded"))
    comm.frontend({"method": "request_state"})  # what a reloaded page asks
    full = comm.updates()[-1]
    assert full["_ids"] == [first.id, second.id]
    assert full[f"task:{first.id}"]["state"] == full[f"task:{second.id}"]["state"] == "succeeded"
    assert full["_totals"]["counts"]["succeeded"] == 2 and "_esm" in full


def test_clicks_are_kept_on_the_frontends_subshell(dash):
    # ipykernel 7.4 would route clicks to the main shell after a send from the refresher
    assert comm_of(dash)._reply_subshell_for({}, "comm-subshell") == "comm-subshell"


def test_long_strings_are_clipped(session, llm, dash):
    llm.default = Reply(text="y" * 2000)
    session.delegate("g" * 5000).collect(WAIT)
    task = comm_of(dash).wait_for(lambda m: has_card(m, "t1", "succeeded"))["task:t1"]
    assert len(task["goal"]) == 300 and task["goal"].endswith("…")
    assert len(task["summary"]) <= 800 and all(len(line) <= 300 for line in task["tail"])


def test_hundreds_of_tasks_stay_cheap(llm, tmp_path, namespace):
    llm.default = Reply(text="\n".join(f"line {i}" for i in range(30)))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    max_concurrent=32, retry=FAST_RETRY) as s:
        for task in [s.delegate(f"job {i}") for i in range(200)]:
            task.collect(WAIT)
        d = Dashboard(s, namespace=namespace)
        comm = comm_of(d)
        cards = cards_in(comm.open_state)
        assert len(cards) == 200 and all(len(c["tail"]) <= FINISHED_TAIL_LINES for c in cards)
        new = s.delegate("one more")
        comm.wait_for(lambda m: has_card(m, new.id, "succeeded"))
        assert {c["id"] for u in comm.updates() for c in cards_in(u)} == {new.id}
        d.close()


# ---- buttons -------------------------------------------------------------------------------

def test_steer_shows_queued_then_delivered(session, llm, dash):
    comm = comm_of(dash)
    gate = threading.Event()

    def wait_for_steer() -> str:
        """Block until the test has steered."""
        gate.wait(WAIT)
        return "waited"

    llm.on("steerable", Reply(tool_calls=[ToolCall("wait_for_steer")]), Reply(text="done"))
    task = session.delegate("steerable", tools=[wait_for_steer])
    comm.wait_for(lambda m: has_card(m, task.id, check=lambda c: c["last_tool"] is not None
                                     or c["activity"].startswith("tool")))
    reply = comm.click(action="steer", task=task.id, message="focus on Q3")
    assert reply["ok"] and reply["task"] == task.id and "next model call" in reply["text"]
    comm.wait_for(lambda m: has_card(m, task.id, check=lambda c: c["steering"] == [
        {"message": "focus on Q3", "delivered": False}]))
    gate.set()
    comm.wait_for(lambda m: has_card(m, task.id, "succeeded", lambda c: c["steering"] == [
        {"message": "focus on Q3", "delivered": True}]))
    late = comm.click(action="steer", task=task.id, message="too late")
    assert not late["ok"] and "already succeeded" in late["text"] and "\n" not in late["text"]
    empty = comm.click(action="steer", task=task.id, message="  ")
    assert not empty["ok"] and "empty" in empty["text"]


def test_cancel_turns_the_card_cancelled(session, dash, long_task):
    comm = comm_of(dash)
    reply = comm.click(action="cancel", task=long_task.id)
    assert reply["ok"] and reply["text"] == f"Cancelling {long_task.id}…"
    comm.wait_for(lambda m: has_card(m, long_task.id, "cancelled") and
                  m["_totals"]["counts"]["cancelled"] == 1)
    again = comm.click(action="cancel", task=long_task.id)
    assert again["ok"] is False
    assert again["text"] == f"Task {long_task.id} has already ended (cancelled): nothing to cancel."


def test_collect_creates_the_variable_now_or_when_the_task_ends(session, llm, dash, namespace,
                                                                long_task):
    done = session.delegate("quick one")
    done.collect(WAIT)
    reply = comm_of(dash).click(action="collect", task=done.id, variable="answer")
    assert reply["ok"] and reply["text"] == f"{done.id} succeeded: result stored in `answer`."
    assert namespace["answer"] is done.result

    later = comm_of(dash).click(action="collect", task=long_task.id, variable="")
    assert later["ok"] and "when it ends" in later["text"]
    assert f"result_{long_task.id}" not in namespace
    long_task.cancel()
    long_task.collect(WAIT)
    assert namespace[f"result_{long_task.id}"].state is hj.TaskState.CANCELLED


def test_collect_never_replaces_a_variable_without_confirmation(session, llm, dash, namespace):
    task = session.delegate("review it", name="review")
    namespace["review"] = task
    namespace["result_t1"] = "the user's"
    task.collect(WAIT)
    comm = comm_of(dash)
    refused = comm.click(action="collect", task=task.id, variable="review")
    assert refused["ok"] is False and refused["code"] == "variable_exists"
    assert refused["variable"] == "review" and refused["suggestion"] == "result_t1_2"
    assert namespace["review"] is task and namespace["result_t1"] == "the user's"
    # the offered name, left as it was, becomes a free variant
    offered = comm.click(action="collect", task=task.id, variable="result_t1", free=True)
    assert offered["ok"] and offered["text"].endswith("stored in `result_t1_2`.")
    assert namespace["result_t1"] == "the user's"
    confirmed = comm.click(action="collect", task=task.id, variable="review", overwrite=True)
    assert confirmed["ok"] and namespace["review"] is task.result


def test_bad_requests_answer_one_line_errors(session, dash):
    comm = comm_of(dash)
    session.delegate("anything").collect(WAIT)
    cases = [
        (dict(action="collect", task="t1", variable="not a name"), "Bad variable name"),
        (dict(action="cancel", task="t42"), "No task 't42'."),
        (dict(action="steer"), "names no task"),
        (dict(action="explode", task="t1"), "Unknown action 'explode'"),
    ]
    for fields, expected in cases:
        reply = comm.click(**fields)
        assert reply["ok"] is False and expected in reply["text"], reply
        assert "\n" not in reply["text"]
    comm.frontend({"method": "custom", "content": "not a dict"})  # ignored, no reply
    assert len(comm.customs("reply")) == len(cases)


def test_cancel_all(session, llm, dash, long_task):
    reply = comm_of(dash).click(action="cancel_all")
    assert reply == {**reply, "ok": True, "text": "Asked 1 task to stop."}
    long_task.collect(WAIT)
    assert comm_of(dash).click(action="cancel_all")["text"] == "No live task."


def test_collect_uses_the_ipython_namespace_by_default(session, monkeypatch):
    user_ns: dict[str, Any] = {}
    monkeypatch.setattr("IPython.get_ipython", lambda: SimpleNamespace(user_ns=user_ns))
    task = session.delegate("for ipython")
    task.collect(WAIT)
    d = Dashboard(session)
    assert comm_of(d).click(action="collect", task=task.id)["ok"]
    assert user_ns[f"result_{task.id}"] is task.result
    d.close()


# ---- threads -------------------------------------------------------------------------------

def test_clicks_from_many_threads_while_tasks_stream(llm, tmp_path, namespace, caplog):
    llm.default = Reply(text="streaming along\n" * 200, chunk_size=5, delay=0.005)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    max_concurrent=16, retry=FAST_RETRY) as s:
        tasks = [s.delegate(f"stream {i}") for i in range(16)]
        d = Dashboard(s, namespace=namespace)
        comm = comm_of(d)
        llm.wait_for_chunks(32)
        start = threading.Barrier(8)
        replies: list[dict[str, Any]] = []
        lock = threading.Lock()

        def clicker(n: int) -> None:
            start.wait()
            for i, task in enumerate(tasks):
                action = ("steer", "collect", "steer", "cancel")[(n + i) % 4] if n else "cancel"
                reply = comm.click(action=action, task=task.id, message=f"from {n}",
                                   variable=f"v{n}_{task.id}")
                with lock:
                    replies.append(reply)

        with caplog.at_level(logging.ERROR):
            threads = [threading.Thread(target=clicker, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(WAIT)
        assert len(replies) == 8 * 16 and all(isinstance(r["ok"], bool) for r in replies)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        for task in tasks:
            assert task.collect(WAIT).state is hj.TaskState.CANCELLED
        comm.wait_for(lambda m: "_totals" in m and m["_totals"]["counts"]["cancelled"] == 16)
        # every card went out in version order, and the browser ends where the kernel is
        for task in tasks:
            versions = [u[f"task:{task.id}"]["version"] for u in comm.updates()
                        if has_card(u, task.id)]
            assert versions == sorted(set(versions))
        comm.wait_for(lambda m: all(c["state"] == "cancelled" for c in replay(comm).values()))
        assert replay(comm) == {c["id"]: c for c in reversed(d.cards())}
        assert {k for k in namespace if k.startswith("v")} == {
            f"v{n}_{t.id}" for n in range(1, 8) for i, t in enumerate(tasks)
            if ("steer", "collect", "steer", "cancel")[(n + i) % 4] == "collect"}
        d.close()


# ---- one widget per session, display ----------------------------------------------------

def test_one_dashboard_per_session(session, llm, monkeypatch):
    first = dashboard(session)
    assert dashboard(session) is first
    monkeypatch.setitem(sys.modules, "hermes_jupyter.notebook.kernel",
                        SimpleNamespace(get_session=lambda: session))
    assert dashboard() is first
    first.close()
    assert first.closed
    second = dashboard(session)
    assert second is not first and not second.closed
    second.close()


def test_closed_dashboard_sends_nothing_more(session, llm, dash):
    comm = comm_of(dash)
    dash.close()
    assert comm.closed
    sent = len(comm.sent)
    session.delegate("after close").collect(WAIT)
    ticked = threading.Event()
    remove = get_refresher(session).add_sink(lambda changed, totals: ticked.set())
    get_refresher(session).mark("t1")
    assert ticked.wait(WAIT)
    remove()
    assert len(comm.sent) == sent


def test_mimebundle_has_a_static_table_for_frontends_without_widgets(session, llm, dash):
    llm.default = Reply(text="Found <b>three</b> issues.\nSecond line.")
    session.delegate("look <script>", name="audit").collect(WAIT)
    comm_of(dash).wait_for(lambda m: has_card(m, "t1", "succeeded"))
    data, _metadata = dash._repr_mimebundle_()
    view = data["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == comm_of(dash).comm_id
    page = data["text/html"]
    assert "<table" in page and "audit" in page and "succeeded" in page
    assert "Found &lt;b&gt;three&lt;/b&gt; issues." in page and "<b>three</b>" not in page
    text = data["text/plain"]
    assert text.splitlines()[0].startswith("Hermes tasks: 0 running · 0 queued · 1 succeeded")
    assert "t1 'audit'" in text and "Found <b>three</b> issues." in text


def test_the_static_table_is_labelled_a_snapshot_with_its_time(session, llm, dash):
    """A saved notebook shows it long after: "running" means running then, not now."""
    llm.default = Reply(text="slow " * 400, chunk_size=2, delay=0.01)
    task = session.delegate("still going", name="slow")
    llm.wait_for_chunks(1)
    comm_of(dash).wait_for(lambda m: has_card(m, "t1", "running"))
    data, _ = dash._repr_mimebundle_()
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    for kind in ("text/html", "text/plain"):
        assert f"Snapshot of {stamp}" in data[kind], kind
        assert "not live: run %hermes_dashboard (or hj.dashboard()) for a live one" in data[kind]
        assert "running then" in data[kind]
    task.cancel()


def test_a_view_learns_the_dashboard_is_live_from_a_ping(session, dash):
    """A reopened notebook's view pings; only a kernel that still has the dashboard answers."""
    comm = comm_of(dash)
    comm.frontend({"method": "custom", "content": {"type": "ping"}})
    assert comm.customs("pong") == [{"type": "pong", "req": None}]
    state = dash.get_state()
    assert abs(state["_totals"]["at"] - time.time()) < 60  # saved with the widget state
    dash.close()
    comm.frontend({"method": "custom", "content": {"type": "ping"}})
    assert len(comm.customs("pong")) == 1  # a closed dashboard is not live


def test_each_cell_end_flushes_what_changed(session, llm, monkeypatch):
    from IPython.core.events import EventManager, available_events

    events = EventManager(None, available_events)
    monkeypatch.setattr("IPython.get_ipython",
                        lambda: SimpleNamespace(user_ns={}, events=events))
    d = Dashboard(session)
    comm = comm_of(d)
    assert d._remove_sink is not None
    d._remove_sink()  # no refresher: only the end of a cell sends
    task = session.delegate("between cells")
    task.collect(WAIT)
    assert comm.updates() == []
    events.trigger("post_run_cell", None)
    [update] = comm.updates()
    assert update["_ids"] == [task.id] and update[f"task:{task.id}"]["state"] == "succeeded"
    assert update["_totals"]["counts"]["succeeded"] == 1
    events.trigger("post_run_cell", None)  # nothing new: nothing sent
    assert len(comm.updates()) == 1
    d.close()
    assert events.callbacks["post_run_cell"] == []
