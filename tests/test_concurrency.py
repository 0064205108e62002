"""Many threads poking many streaming tasks at once: nothing lost, nothing stuck, no secret out."""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import hermes_jupyter as hj
from hermes_jupyter.testing import Fail, Reply

from .conftest import FAST_RETRY, SECRET


def test_threads_calling_check_steer_cancel_on_many_tasks(llm, tmp_path):
    llm.default = Reply(text="streaming words " * 30, chunk_size=6, delay=0.002)
    accepted: dict[str, list[str]] = {}
    lock = threading.Lock()
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], max_concurrent=8,
                    workspace=tmp_path) as s:
        tasks = [s.delegate(f"job {i}", name=f"job{i}") for i in range(32)]
        llm.wait_for_chunks(10)

        def poke(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(200):
                task = rng.choice(tasks)
                action = rng.random()
                try:
                    if action < 0.5:
                        s.check(task.name)
                    elif action < 0.8:
                        message = f"steer {seed}-{rng.random():.6f}"
                        s.steer(task, message)
                        with lock:
                            accepted.setdefault(task.id, []).append(message)
                    elif action < 0.85:
                        s.cancel(task)
                    else:
                        s.list_tasks()
                except hj.TaskFinishedError:
                    pass

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(poke, range(8)))
        results = [t.collect(30) for t in tasks]

    assert all(r.state.terminal for r in results)
    for result in results:
        if result.state is hj.TaskState.SUCCEEDED:
            # a task only finishes with an empty inbox: every accepted steer reached it
            delivered = [m["content"] for m in result.transcript if m["role"] == "user"]
            for message in accepted.get(result.id, []):
                assert f"[steer from parent] {message}" in delivered


def test_no_secret_in_anything_the_session_exposes(llm, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    llm.on("leaky 400", Fail(400, message=f"bad request for key {SECRET}"))
    llm.on("leaky 500", Fail(500, message=f"upstream said {SECRET}"))
    llm.on("fine", Reply(text="all good"))
    events: list[hj.Event] = []
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET, "sk-other-999999"],
                    retry=FAST_RETRY, workspace=tmp_path) as s:
        s.subscribe(events.append)
        tasks = [s.delegate(g) for g in ("leaky 400", "leaky 500", "fine")]
        results = [t.collect(10) for t in tasks]
        llm.key_rules["sk-other-999999"] = Fail(401, message="Incorrect API key sk-other-999999")
        results.append(s.delegate("fine again").collect(10))
        exposed = [
            repr(s), str(s.counts()), repr(s.usage), *map(repr, tasks),
            *(repr(st) + str(st.to_dict()) for st in s.list_tasks()),
            *(repr(r) + str(r.__dict__) + r._repr_markdown_() for r in results),
        ]
        s._bus.close()
    exposed += [repr(e) for e in events] + [caplog.text]
    assert results[0].state is hj.TaskState.FAILED and results[2].ok
    blob = "\n".join(exposed)
    assert "bad request for key" in blob  # the errors are there...
    assert SECRET not in blob and SECRET[-12:] not in blob  # ...without the key
    assert "sk-other-999999" not in blob
