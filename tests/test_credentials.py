"""The credential pool: 429 rotation with Retry-After, shared waiting, 401 removal."""

from __future__ import annotations

import threading

import hermes_jupyter as hj
from hermes_jupyter.testing import Fail, Reply

from .conftest import FAST_RETRY

KEYS = ["sk-pool-AAAA1111", "sk-pool-BBBB2222", "sk-pool-CCCC3333"]


def make_session(llm, **kw) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=KEYS, retry=FAST_RETRY, **kw)


def collect_events(session: hj.Session, kinds: set[str]) -> list[hj.Event]:
    seen: list[hj.Event] = []
    session.subscribe(lambda e: seen.append(e) if e.kind in kinds else None)
    return seen


def test_rate_limited_key_cools_down_and_the_call_goes_on_with_another(llm):
    llm.key_rules[KEYS[0]] = Fail(429, retry_after=30)
    with make_session(llm) as s:
        events = collect_events(s, {"key_cooldown"})
        results = [s.delegate(f"job {i}").collect(10) for i in range(4)]
        s._bus.close()
    assert all(r.state is hj.TaskState.SUCCEEDED for r in results)
    used = [r.api_key for r in llm.requests]
    assert used.count(KEYS[0]) == 1  # tried once, then cooling for 30 s
    assert events[0].data == {"key": "key 1 of 3", "seconds": 30.0}


def test_all_keys_cooling_wait_on_one_gate_then_succeed(llm):
    # every key answers 429 once with a short Retry-After, then works
    first = {k: True for k in KEYS}
    lock = threading.Lock()

    def responder(request):
        with lock:
            if first.get(request.api_key):
                first[request.api_key] = False
                return Fail(429, retry_after=1.0)  # outlasts three loopback 429s
        return Reply(text="ok")

    llm.responder = responder
    with make_session(llm) as s:
        waits = collect_events(s, {"waiting_for_key"})
        result = s.delegate("patient").collect(10)
        s._bus.close()
    assert result.state is hj.TaskState.SUCCEEDED
    assert len(llm.requests) == 4  # three 429s, no hammering while all cooled, one success
    assert waits, "the task should report that it waits for a key"


def test_rejected_key_leaves_the_pool_without_revealing_it(llm):
    llm.key_rules[KEYS[1]] = Fail(401, message=f"Incorrect API key provided: {KEYS[1]}")
    with make_session(llm) as s:
        removed = collect_events(s, {"key_removed"})
        results = [s.delegate(f"job {i}").collect(10) for i in range(4)]
        s._bus.close()
    assert all(r.ok for r in results)
    assert [e.data for e in removed] == [{"key": "key 2 of 3", "status": 401, "cause": "rejected"}]
    assert [r.api_key for r in llm.requests].count(KEYS[1]) == 1
    assert KEYS[1] not in repr(removed)


def test_every_key_rejected_fails_with_a_clear_line(llm):
    for key in KEYS:
        llm.key_rules[key] = Fail(401, message=f"Incorrect API key provided: {key}")
    with make_session(llm) as s:
        result = s.delegate("doomed").collect(10)
    assert result.state is hj.TaskState.FAILED
    assert "Every API key was rejected" in result.error
    assert not any(k in result.error for k in KEYS)


def test_cancel_while_waiting_out_a_rate_limit(llm):
    llm.default = Fail(429, retry_after=30)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[KEYS[0]]) as s:
        waiting = threading.Event()
        s.subscribe(lambda e: waiting.set() if e.kind == "key_cooldown" else None)
        task = s.delegate("rate limited")
        assert waiting.wait(5)
        s.cancel(task)
        assert task.collect(2).state is hj.TaskState.CANCELLED
    assert len(llm.requests) == 1  # nothing sent after the 429 or the cancel
