"""What endpoints do when things go wrong, over real sockets (issue 11, kinds 4, 5, 6, 10):
errors inside streams, rate limits and credit, options servers refuse, silent streams."""

from __future__ import annotations

import email.utils
import time

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.failures import retry_after
from hermes_jupyter.testing import Fail, Raw, Reply

from .conftest import FAST_RETRY, SECRET
from .replays import body, chunk, sse, text, wait_until

KEYS = ["sk-pool-AAAA1111", "sk-pool-BBBB2222"]


def make_session(llm, keys=(SECRET,), **kw) -> hj.Session:
    return hj.Session(model="m", base_url=llm.base_url, api_keys=list(keys), retry=FAST_RETRY,
                      **kw)


def events_of(session: hj.Session, *kinds: str) -> list[hj.Event]:
    seen: list[hj.Event] = []
    session.subscribe(lambda e: seen.append(e) if e.kind in kinds else None)
    return seen


def error_json(message: str, type: str | None = None, code: object = None) -> dict:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


# -- kind 4: errors sent inside a stream ---------------------------------------------------------


def test_an_overloaded_error_inside_a_stream_is_retried(session, llm):
    llm.script(sse(text("Hel"), error_json("Overloaded", "overloaded_error"), done=False),
               Reply("Hello"))
    result = session.delegate("overloaded mid-stream").collect(10)
    assert result.ok and result.summary == "Hello" and len(llm.requests) == 2
    assert "".join(result.output) == "Hello"


def test_a_rate_limit_inside_a_stream_cools_the_key_down(llm):
    llm.script(sse(error_json("Rate limit reached", code=429), done=False), Reply("later"))
    with make_session(llm, keys=KEYS) as s:
        cooled = events_of(s, "key_cooldown")
        result = s.delegate("429 inside").collect(10)
        s._bus.close()
    assert result.ok and [e.data["key"] for e in cooled] == ["key 1 of 2"]


@pytest.mark.parametrize("payload", [
    error_json(f"Invalid schema for function 'f' (key {SECRET})", "invalid_request_error", 400),
    "event: error\ndata: {\"type\": \"invalid_request_error\", \"code\": 400, "
    f"\"message\": \"Invalid schema, key {SECRET}\"}}\n\n",
])
def test_a_refusal_inside_a_stream_fails_with_one_redacted_line(session, llm, payload):
    llm.script(sse(text("x"), payload, done=False))
    result = session.delegate("refused mid-stream").collect(10)
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "provider_error"
    assert "Invalid schema" in result.error and SECRET not in result.error
    assert "{" not in result.error and "\n" not in result.error
    assert len(llm.requests) == 1


# -- kind 5: rate limits and credit --------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "2"}, 2.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),
    ({"llm_provider-retry-after": "0.4"}, 0.4),  # LiteLLM passes the upstream's on so
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "-5"}, None),
    ({"Retry-After": "Wed, 99 Foo 2015 07:28:00 GMT"}, None),
    ({"Retry-After": "in 60 s, as an HTTP date"}, 60.0),
])
def test_retry_after_in_every_form(headers, expected):
    if headers.get("Retry-After", "").startswith("in 60 s"):
        headers = {"Retry-After": email.utils.formatdate(time.time() + 60, usegmt=True)}
    got = retry_after({k.lower(): v for k, v in headers.items()})
    assert got == expected if expected is None or expected < 10 else abs(got - expected) < 3


@pytest.mark.parametrize("value", ["soon", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_a_garbage_retry_after_means_backoff(session, llm, value):
    llm.script(body(error_json("slow down", "requests", "rate_limit_exceeded"), 429,
                    **{"Retry-After": value}), Reply("fine"))
    result = session.delegate("garbage header").collect(10)
    assert result.ok and result.summary == "fine", result.error


def test_retry_after_ms_is_honoured(llm):
    llm.script(body(error_json("slow down"), 429, **{"retry-after-ms": "20"}), Reply("ok"))
    with make_session(llm) as s:
        cooled = events_of(s, "key_cooldown")
        assert s.delegate("ms").collect(10).ok
        s._bus.close()
    assert cooled[0].data["seconds"] == 0.02


def test_a_cooldown_past_the_cap_fails_at_once_and_says_so(llm):
    llm.default = Fail(429, retry_after=86400)
    with make_session(llm, cooldown_cap=60) as s:
        capped = events_of(s, "rate_limit_cap")
        started = time.monotonic()
        result = s.delegate("a day").collect(10)
        took = time.monotonic() - started
        s._bus.close()
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "rate_limit_cap"
    assert "cooldown cap" in result.error and took < 10
    assert capped and capped[0].data["cap"] == 60


@pytest.mark.parametrize("failure", [
    Fail(429, message="You exceeded your current quota", type="insufficient_quota",
         code="insufficient_quota"),
    Fail(402, message="Insufficient credits"),
    # a gateway that rewrote the code keeps only the message (LiteLLM)
    Fail(429, message="litellm.RateLimitError: You exceeded your current quota, please check "
                      "your plan and billing details.", type="throttling_error", code="429"),
])
def test_out_of_credit_keys_leave_the_pool_and_the_task_fails_fast(llm, failure):
    llm.default = failure
    with make_session(llm, keys=KEYS) as s:
        removed = events_of(s, "key_removed")
        result = s.delegate("broke").collect(10)
        s._bus.close()
    assert result.state is hj.TaskState.FAILED and result.exit_reason == "quota_exhausted"
    assert "out of quota or credit" in result.error
    assert len(llm.requests) == 2  # each key tried once, never retried as a rate limit
    assert [e.data["cause"] for e in removed] == ["quota", "quota"]


def test_a_per_minute_quota_is_a_rate_limit_not_lost_credit(session, llm):
    gemini = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
                        "Quota exceeded for metric: generate_content_free_tier_requests"}}
    llm.script(body(gemini, 429, **{"Retry-After": "0.05"}), Reply("after a minute"))
    result = session.delegate("free tier").collect(10)
    assert result.ok and result.summary == "after a minute"


def test_one_key_out_of_credit_the_other_goes_on(llm):
    llm.key_rules[KEYS[0]] = Fail(402, message="Insufficient credits")
    with make_session(llm, keys=KEYS) as s:
        results = [s.delegate(f"job {i}").collect(10) for i in range(3)]
    assert all(r.ok for r in results)
    assert [r.api_key for r in llm.requests].count(KEYS[0]) == 1


def test_every_key_rejected_is_auth_failed(llm):
    llm.default = Fail(401, message="Incorrect API key")
    with make_session(llm, keys=KEYS) as s:
        result = s.delegate("nope").collect(10)
    assert result.exit_reason == "auth_failed" and "rejected" in result.error


@pytest.mark.parametrize("status", [503, 529])
def test_overloaded_statuses_retry(session, llm, status):
    llm.script(Fail(status, message="Overloaded"), Reply("back"))
    assert session.delegate("busy").collect(10).summary == "back"


# -- kind 6: request options servers refuse ------------------------------------------------------


@pytest.mark.parametrize("message", [
    "Unrecognized request argument supplied: stream_options",
    "1 validation error: Extra inputs are not permitted",
])
def test_a_refused_optional_field_is_dropped_once_and_remembered(session, llm, message):
    def responder(request):
        if "stream_options" in request.body:
            return Fail(400, message=message)
        return Reply("no usage here")

    llm.responder = responder
    calls = events_of(session, "model_call", "fields_dropped")
    first = session.delegate("one").collect(10)
    second = session.delegate("two").collect(10)
    assert first.ok and second.ok, first.error
    assert ["stream_options" in r.body for r in llm.requests] == [True, False, False]
    session._bus.close()
    kinds = [(e.kind, e.data.get("usage")) for e in calls]
    assert kinds == [("fields_dropped", None), ("model_call", "estimated"),
                     ("model_call", "estimated")]


def test_a_400_about_something_else_is_not_retried(session, llm):
    llm.default = Fail(400, message="model 'x' does not exist")
    result = session.delegate("bad model").collect(10)
    assert result.exit_reason == "provider_error" and len(llm.requests) == 1


# -- kind 10: stalls -----------------------------------------------------------------------------


def test_a_silent_stream_is_abandoned_and_retried(llm):
    llm.script(sse(text("waiting"), done=False, end="hang"), Reply("answered"))
    with make_session(llm, stall_timeout=0.4) as s:
        retries = events_of(s, "retry")
        result = s.delegate("stalls").collect(20)
        s._bus.close()
    assert result.ok and result.summary == "answered" and len(llm.requests) == 2
    assert "stall_timeout" in retries[0].data["reason"]


def test_keep_alive_comments_keep_a_slow_stream_alive(llm):
    beats = [": keep-alive\n\n", 0.1] * 12  # ~1.2 s of comments only, stall_timeout 0.5 s
    llm.script(sse(*beats, text("slow but alive"), chunk(finish="stop")))
    with make_session(llm, stall_timeout=0.5) as s:
        result = s.delegate("thinking hard").collect(20)
    assert result.ok and result.summary == "slow but alive" and len(llm.requests) == 1


def test_a_server_that_never_answers_headers_is_a_stall_too(llm):
    llm.script(Fail(500, delay=60), Reply("second try"))  # silent for a minute before headers
    with make_session(llm, stall_timeout=0.4) as s:
        result = s.delegate("no headers").collect(20)
    assert result.ok and len(llm.requests) == 2


def test_stall_timeout_and_cooldown_cap_are_settings(llm):
    from hermes_jupyter.notebook.settings import HermesJupyter, resolve

    with pytest.raises(hj.ConfigurationError, match="stall_timeout"):
        make_session(llm, stall_timeout=0)
    with make_session(llm) as s:
        assert (s.stall_timeout, s.cooldown_cap) == (120.0, 300.0)
        s.stall_timeout, s.cooldown_cap = None, 5
        assert s.stall_timeout is None and s.cooldown_cap == 5.0
        with pytest.raises(hj.ConfigurationError, match="cooldown_cap"):
            s.cooldown_cap = None
    config = HermesJupyter(stall_timeout=30, cooldown_cap=60)
    kwargs = resolve(config, environ={"OPENAI_API_KEY": SECRET}).session_kwargs()
    assert (kwargs["stall_timeout"], kwargs["cooldown_cap"]) == (30.0, 60.0)


def test_a_proxy_error_page_fails_with_one_line(session, llm):
    llm.default = Raw(["<html>\n<body>Bad gateway</body>\n</html>"], status=404,
                      headers={"Content-Type": "text/html"}, chunked=False)
    result = session.delegate("html").collect(10)
    assert result.exit_reason == "provider_error" and "\n" not in result.error
    assert result.error.startswith("request refused: HTTP 404")


def test_a_cooldown_within_the_cap_shows_in_the_activity(session, llm):
    llm.script(Fail(429, retry_after=1.5), Reply("after the wait"))
    task = session.delegate("patient")
    wait_until(lambda: task.check().activity.startswith("rate limited: waiting"),
               what="the cooldown in the activity")
    assert task.collect(10).summary == "after the wait"
