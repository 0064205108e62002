"""What a task says when it cannot reach its endpoint, and base URLs refused up front
(real sockets: a closed loopback port, a host under .invalid, which never resolves)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx
import openai
import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.credentials import CredentialPool
from hermes_jupyter.engine.failures import ProviderError
from hermes_jupyter.engine.provider import Provider, _transport_line
from hermes_jupyter.testing import Fail

from .conftest import FAST_RETRY, SECRET

ENDPOINT_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "HERMES_API_KEYS")


def closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def failed_with(base_url: str, tmp_path) -> hj.TaskResult:
    with hj.Session(model="m", base_url=base_url, api_keys=[SECRET], workspace=tmp_path,
                    retry=FAST_RETRY) as session:
        return session.delegate("go").collect(60)


def test_a_refused_connection_is_said_so_not_called_a_timeout(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = failed_with(url, tmp_path)
    assert not result.ok and result.exit_reason.value == "provider_error"
    assert f"could not connect to {url} (connection refused)" in (result.error or "")
    assert "timed out" not in (result.error or "")


def test_a_host_that_does_not_resolve_is_said_so(tmp_path):
    url = "http://nonexistent.invalid/v1"
    result = failed_with(url, tmp_path)
    assert f"could not connect to {url} (its host name does not resolve)" in (result.error or "")
    assert "timed out" not in (result.error or "")


def wrapped(outer: BaseException, *causes: BaseException) -> BaseException:
    current = outer
    for cause in causes:
        current.__cause__ = cause
        current = cause
    return outer


REQUEST = httpx.Request("POST", "http://h/v1/chat/completions")


@pytest.mark.parametrize(("err", "said"), [
    (wrapped(openai.APITimeoutError(REQUEST), ConnectionRefusedError(111, "refused")),
     "could not connect to http://h/v1 (connection refused)"),
    (wrapped(openai.APIConnectionError(request=REQUEST), OSError("x"),
             socket.gaierror(-2, "Name or service not known")),
     "could not connect to http://h/v1 (its host name does not resolve)"),
    (wrapped(openai.APIConnectionError(request=REQUEST), ssl.SSLError(1, "bad handshake")),
     "could not connect to http://h/v1 (the TLS handshake failed)"),
    (openai.APITimeoutError(REQUEST), "the request timed out"),
    (wrapped(openai.APITimeoutError(REQUEST), TimeoutError()), "the request timed out"),
    (openai.APIConnectionError(request=REQUEST), "could not connect to http://h/v1"),
    (ConnectionResetError(104, "reset"), "the connection dropped before the reply was complete"),
])
def test_the_cause_chain_decides_the_line(err, said):
    assert _transport_line(err, "http://h/v1") == said
    assert _transport_line(err, "http://h/v1?token=abc#x") == said  # no query in the line


@pytest.mark.parametrize("url", ["http://user:pw-SECRET-9@127.0.0.1:9/v1",
                                 "https://only-a-user-SECRET-9@example.test/v1",
                                 "http://:pw-SECRET-9@127.0.0.1:9/v1"])
def test_credentials_in_base_url_are_refused_in_one_line_never_echoed(url, tmp_path):
    with pytest.raises(hj.InvalidArgument) as caught:
        hj.Session(model="m", base_url=url, api_keys=["k"], workspace=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "SECRET" not in message and "user:pass@" in message
    assert message.startswith("Bad base_url") and "api_keys" in message


def test_credentials_in_openai_base_url_are_refused_too(monkeypatch, tmp_path):
    for name in ENDPOINT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://me:pw-SECRET-9@127.0.0.1:9/v1")
    with pytest.raises(hj.InvalidArgument) as caught:
        hj.Session(model="m", api_keys=["k"], workspace=tmp_path)
    assert str(caught.value).startswith("Bad OPENAI_BASE_URL") and "SECRET" not in str(
        caught.value)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9/v1", "127.0.0.1:9/v1", "http:///v1"])
def test_a_wrong_scheme_or_no_host_is_refused_up_front(url, monkeypatch, tmp_path):
    with pytest.raises(hj.InvalidArgument, match="pass an http"):
        hj.Session(model="m", base_url=url, api_keys=["k"], workspace=tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(hj.InvalidArgument, match="Bad OPENAI_BASE_URL"):
        hj.Session(model="m", api_keys=["k"], workspace=tmp_path)


def test_a_parent_agent_whose_endpoint_is_down_says_so_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with hj.Session(model="m", base_url=url, api_keys=[SECRET], workspace=tmp_path,
                    retry=FAST_RETRY) as session:
        agent = hj.Agent(session)
        with pytest.raises(hj.HermesError) as caught:
            agent.ask("hi")
        message = str(caught.value)
        assert "\n" not in message and "'default'" in message
        assert f"could not connect to {url} (connection refused)" in message
        assert [m["role"] for m in agent.history] == ["system"]  # nothing half-done kept


def test_hermes_cell_whose_model_call_fails_says_so_in_one_line(live, llm, capsys):
    llm.default = Fail(400, "no such model: parent-model")  # refused at once, no retries
    result = live.run_cell("%hermes hi")
    out, err = capsys.readouterr()
    assert not result.success and "Traceback" not in out + err
    assert "UsageError: %hermes: The model call of agent 'default' failed: request refused: " \
        "400: no such model" in err
    assert SECRET not in out + err


def test_credentials_in_the_base_url_setting_are_refused_at_config(ip, capsys, caplog):
    ip.run_line_magic("config", "HermesJupyter.base_url = 'http://me:pw-SECRET-9@127.0.0.1:9/v1'")
    out, err = capsys.readouterr()
    said = out + err + caplog.text  # IPython's %config logs a setting's refusal
    assert "Bad HermesJupyter.base_url: it holds a user name or password" in said
    assert "SECRET" not in said
    from hermes_jupyter.notebook.kernel import get_config
    assert get_config().base_url is None


@pytest.mark.parametrize("url", ["http://user:pw-SECRET-9@127.0.0.1:9/v1",  # the transport's
                                 "http://[::1]:9/v1?x=1"])  # own refusals, and a plain one
def test_a_request_that_cannot_be_sent_fails_at_once_not_as_a_bad_reply(url):
    """Below Session's checks: an error raised before any reply is not retried, nor called
    a reply that is not a chat completion; the line holds no user info or query."""
    sent: list[int] = []
    provider = Provider(CredentialPool(["k-plain-1"]), url, FAST_RETRY)

    async def ask() -> None:
        try:
            await provider.complete("m", [{"role": "user", "content": "hi"}], None,
                                    on_text=lambda _: None, on_event=lambda *_: None,
                                    on_request=lambda: sent.append(1))
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as caught:
        asyncio.run(ask())
    line = str(caught.value)
    assert "not a chat completion" not in line and "SECRET" not in line and "x=1" not in line
    if "@" in url:
        assert line.startswith("request refused: the request could not be sent to "
                               "http://127.0.0.1:9/v1 (ValueError)") and len(sent) == 1
    else:
        assert "could not connect to http://[::1]:9/v1" in line


@pytest.mark.parametrize("key", ["sk-ключ-1234567890", "sk-tab\tinside-123", "sk-nul\x00-12345"])
def test_a_key_a_header_cannot_carry_is_refused_in_one_line_never_echoed(key, tmp_path):
    with pytest.raises(hj.ConfigurationError) as caught:
        hj.Session(model="m", base_url="http://127.0.0.1:9/v1", api_keys=["k-good-1", key],
                   workspace=tmp_path)
    message = str(caught.value)
    assert message.startswith("Bad API key #2:") and "\n" not in message
    assert key not in message and "ключ" not in message and "inside" not in message
