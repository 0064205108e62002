"""Settings: traits with help, precedence (config > environment > defaults), keys never shown."""

from __future__ import annotations

import pytest
from traitlets import TraitError
from traitlets.config import Config

from hermes_jupyter.notebook.settings import DEFAULT_MODEL, HermesJupyter, resolve, safe_url

SECRET = "sk-test-SECRET-0123456789abcdef"


def test_every_setting_is_a_configurable_trait_with_help():
    traits = HermesJupyter.class_traits(config=True)
    expected = {"model", "subagent_model", "base_url", "api_keys", "max_concurrent",
                "max_iterations", "task_timeout", "workspace", "toolsets"}
    assert expected <= set(traits)
    assert all(trait.help for trait in traits.values())


def test_no_key_and_no_endpoint_means_the_demo():
    settings = resolve(HermesJupyter(), environ={})
    assert settings.demo and settings.model == "demo"
    assert settings.demo_reason == "no API key or endpoint configured"
    assert "pace" in settings.session_kwargs() and "api_keys" not in settings.session_kwargs()


def test_environment_is_used_when_nothing_is_configured():
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "http://localhost:1/v1",
           "HERMES_MODEL": "env-model", "HERMES_SUBAGENT_MODEL": "env-cheap"}
    settings = resolve(HermesJupyter(), environ=env)
    assert not settings.demo
    assert (settings.model, settings.subagent_model, settings.base_url) == (
        "env-model", "env-cheap", "http://localhost:1/v1")
    assert settings.api_keys == (SECRET,)
    assert settings.sources["api_keys"] == "env OPENAI_API_KEY"


def test_hermes_api_keys_is_a_pool_and_wins_over_openai_api_key():
    env = {"HERMES_API_KEYS": "sk-a-111111, sk-b-222222,sk-a-111111", "OPENAI_API_KEY": SECRET}
    settings = resolve(HermesJupyter(), environ=env)
    assert settings.api_keys == ("sk-a-111111", "sk-b-222222")
    assert settings.model == DEFAULT_MODEL and settings.sources.get("model") is None


def test_configuration_wins_over_environment():
    config = Config()
    config.HermesJupyter.model = "cfg-model"
    config.HermesJupyter.api_keys = ["sk-cfg-0000000"]
    env = {"HERMES_MODEL": "env-model", "OPENAI_API_KEY": SECRET}
    settings = resolve(HermesJupyter(config=config), environ=env)
    assert settings.model == "cfg-model" and settings.api_keys == ("sk-cfg-0000000",)
    assert settings.sources["model"] == settings.sources["api_keys"] == "config"


def test_model_demo_forces_the_demo_even_with_a_key():
    settings = resolve(HermesJupyter(model="demo"), environ={"OPENAI_API_KEY": SECRET})
    assert settings.demo and settings.api_keys == ()


def test_a_base_url_without_key_is_a_real_endpoint():
    settings = resolve(HermesJupyter(base_url="http://localhost:11434/v1"), environ={})
    assert not settings.demo and settings.session_kwargs()["api_keys"] == []


@pytest.mark.parametrize(("name", "value"), [
    ("max_concurrent", 0), ("max_iterations", -1), ("task_timeout", 0.0),
    ("toolsets", ["files", "terminal"]), ("wait_notice_after", -1.0), ("context_limit", 0),
])
def test_bad_values_are_refused_with_the_setting_named(name, value):
    with pytest.raises(TraitError, match=name if name != "toolsets" else "terminal"):
        HermesJupyter(**{name: value})


def test_keys_are_shown_only_as_a_count():
    config = HermesJupyter(api_keys=[SECRET, "sk-test-OTHER-999999"])
    assert repr(config.api_keys) == "<2 API keys set>" == str(config.api_keys)
    help_text = HermesJupyter.class_get_help(config)  # what `%config HermesJupyter` prints
    rows = resolve(config, environ={}).rows()
    for shown in (help_text, repr(resolve(config, environ={})), str(rows)):
        assert "SECRET" not in shown and "OTHER" not in shown
    assert ("api_keys", "2 set", "config") in rows


def test_urls_lose_their_credentials_for_display():
    assert safe_url("https://user:pw@example.com:8443/v1") == "https://example.com:8443/v1"
    assert safe_url("http://localhost:1/v1") == "http://localhost:1/v1"


def test_cluster_setting_reaches_the_session_and_needs_a_new_one():
    env = {"OPENAI_API_KEY": SECRET}
    here = resolve(HermesJupyter(), environ=env)
    there = resolve(HermesJupyter(cluster="tcp://127.0.0.1:8786"), environ=env)
    assert here.session_kwargs()["cluster"] is None
    assert there.session_kwargs()["cluster"] == "tcp://127.0.0.1:8786"
    assert there.sources["cluster"] == "config"
    assert here.endpoint != there.endpoint  # a running session cannot move to a cluster
    assert ("cluster", "tcp://127.0.0.1:8786", "config") in there.rows()


def test_detach_timeout_setting_reaches_the_session_and_is_checked():
    env = {"OPENAI_API_KEY": SECRET}
    default = resolve(HermesJupyter(cluster="tcp://127.0.0.1:8786"), environ=env)
    assert default.session_kwargs()["detach_timeout"] == 3600.0
    short = resolve(HermesJupyter(cluster="tcp://127.0.0.1:8786", detach_timeout=60),
                    environ=env)
    assert short.session_kwargs()["detach_timeout"] == 60.0
    assert ("detach_timeout", "60s", "config") in short.rows()
    assert default.endpoint != short.endpoint  # it is given to a session when it is built
    never = resolve(HermesJupyter(cluster="tcp://127.0.0.1:8786", detach_timeout=None),
                    environ=env)
    assert ("detach_timeout", "never", "config") in never.rows()
    with pytest.raises(TraitError, match="detach_timeout must be positive or None"):
        HermesJupyter(detach_timeout=0)
