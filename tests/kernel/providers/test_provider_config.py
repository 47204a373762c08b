"""Model ids, settings from the environment, and the providers built from them."""

from __future__ import annotations

import pytest

from openfoal_kernel.protocol.kernel_wire import ModelSettings
from openfoal_kernel.protocol.transcript import ChatMessage
from openfoal_kernel.providers import (
    AnthropicProvider,
    FallbackChain,
    ModelError,
    ModelNotConfigured,
    OpenAIProvider,
    TextDelta,
    build_provider,
    parse_model_id,
    settings_from_env,
)
from openfoal_kernel.scripted import DEMO_LABEL, Reply, TextStep

HELLO = [ChatMessage(role="user", content="hello")]


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("openai:gpt-4.1-mini", ("openai", "gpt-4.1-mini")),
        ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        (" OpenAI:llama3.1:8b ", ("openai", "llama3.1:8b")),
        ("demo", ("demo", "demo")),
    ],
)
def test_parse_model_id(model_id, expected):
    assert parse_model_id(model_id) == expected


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("gpt-4.1-mini", "has no provider: write it as provider:model"),
        ("mistral:large", "unknown provider 'mistral'"),
        ("openai:", "has no model name"),
        ("", "has no provider"),
    ],
)
def test_bad_model_ids_say_what_is_wrong(model_id, message):
    with pytest.raises(ValueError, match=message):
        parse_model_id(model_id)


def test_settings_from_env_reads_every_variable():
    env = {
        "OPENFOAL_MODEL": "openai:gpt-4.1-mini",
        "OPENFOAL_FALLBACK_MODELS": " anthropic:claude-x , ,demo",
        "OPENAI_API_KEY": "sk-o",
        "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
        "ANTHROPIC_API_KEY": "sk-a",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
        "OPENFOAL_MODEL_TIMEOUT": "12.5",
    }
    settings = settings_from_env(env)
    assert settings.model == "openai:gpt-4.1-mini"
    assert settings.fallback == ["anthropic:claude-x", "demo"]
    assert (settings.openaiApiKey, settings.openaiBaseUrl) == ("sk-o", "http://127.0.0.1:11434/v1")
    assert (settings.anthropicApiKey, settings.anthropicBaseUrl) == ("sk-a", "http://127.0.0.1:9/")
    assert settings.timeoutSec == 12.5


def test_settings_defaults_and_empty_values():
    settings = settings_from_env({"OPENFOAL_MODEL": "  ", "OPENAI_API_KEY": ""})
    assert settings.model is None and settings.fallback == []
    assert settings.openaiApiKey is None
    assert settings.openaiBaseUrl == "https://api.openai.com/v1"
    assert settings.anthropicBaseUrl == "https://api.anthropic.com"
    assert settings.timeoutSec == ModelSettings().timeoutSec


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "nan"])
def test_a_bad_timeout_is_a_clear_configuration_error(raw):
    with pytest.raises(ModelNotConfigured, match="OPENFOAL_MODEL_TIMEOUT"):
        settings_from_env({"OPENFOAL_MODEL_TIMEOUT": raw})


def test_no_model_says_how_to_configure_one():
    with pytest.raises(ModelNotConfigured) as caught:
        build_provider(settings_from_env({}))
    error = caught.value
    assert isinstance(error, ModelError) and not error.retryable
    for hint in (
        "OPENFOAL_MODEL",
        "openai:gpt-4.1-mini",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENFOAL_MODEL=demo",
    ):
        assert hint in str(error)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENFOAL_MODEL": "gpt-4o"}, "has no provider"),
        ({"OPENFOAL_MODEL": "openai:gpt-4o"}, "needs OPENAI_API_KEY"),
        ({"OPENFOAL_MODEL": "anthropic:claude-x"}, "needs ANTHROPIC_API_KEY"),
        (
            {"OPENFOAL_MODEL": "demo", "OPENFOAL_FALLBACK_MODELS": "nope:x"},
            "unknown provider 'nope'",
        ),
    ],
)
def test_unusable_models_are_configuration_errors(env, message):
    with pytest.raises(ModelNotConfigured, match=message) as caught:
        build_provider(settings_from_env(env))
    assert "OPENFOAL_MODEL=demo" in str(caught.value)


def test_the_chain_holds_the_model_then_its_fallbacks():
    settings = settings_from_env(
        {
            "OPENFOAL_MODEL": "openai:llama3",
            "OPENFOAL_FALLBACK_MODELS": "anthropic:claude-x",
            "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
            "ANTHROPIC_API_KEY": "sk-a",
            "OPENFOAL_MODEL_TIMEOUT": "9",
        }
    )
    settings.maxRetries, settings.backoffCapSec = 4, 0.5
    chain = build_provider(settings)
    assert isinstance(chain, FallbackChain)
    assert [p.model_id for p in chain.providers] == ["openai:llama3", "anthropic:claude-x"]
    first, second = chain.providers
    assert isinstance(first, OpenAIProvider) and first.api_key is None
    assert first.base_url == "http://127.0.0.1:11434/v1" and first.timeout_s == 9
    assert isinstance(second, AnthropicProvider) and second.api_key == "sk-a"
    assert (chain.max_retries, chain.backoff_cap_s) == (4, 0.5)


@pytest.mark.asyncio
async def test_a_chain_built_from_the_environment_streams_from_its_servers(server):
    env = {
        "OPENFOAL_MODEL": "anthropic:claude-x",
        "OPENFOAL_FALLBACK_MODELS": "openai:gpt-x",
        "OPENAI_API_KEY": server.api_key,
        "OPENAI_BASE_URL": server.openai_base_url,
        "ANTHROPIC_API_KEY": server.api_key,
        "ANTHROPIC_BASE_URL": server.anthropic_base_url,
    }
    settings = settings_from_env(env)
    settings.backoffCapSec = 0.01
    chain = build_provider(settings)
    server.enqueue(Reply.of(TextStep(text="from claude")))
    texts = [e.text async for e in chain.stream(HELLO) if isinstance(e, TextDelta)]
    await chain.aclose()
    assert texts == ["from claude"]
    assert [(r.api, r.body["model"]) for r in server.requests] == [("anthropic", "claude-x")]


@pytest.mark.asyncio
async def test_demo_starts_one_in_process_server_labelled_in_every_answer():
    first = build_provider(settings_from_env({"OPENFOAL_MODEL": "demo"}))
    second = build_provider(settings_from_env({"OPENFOAL_MODEL": "demo"}))
    (demo,) = first.providers
    assert demo.model_id == "demo" and first.model_id == "demo"
    assert isinstance(demo, OpenAIProvider)
    assert demo.base_url == second.providers[0].base_url, "one demo server per process"
    assert demo.base_url.startswith("http://127.0.0.1:")
    text = "".join([e.text async for e in first.stream(HELLO) if isinstance(e, TextDelta)])
    await first.aclose()
    await second.aclose()
    assert text.startswith(DEMO_LABEL) and "hello" in text
