"""Model configuration: ``provider:model`` ids, settings from the environment, the providers."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ..protocol.kernel_wire import ModelSettings
from .anthropic import DEFAULT_ANTHROPIC_BASE_URL, AnthropicProvider
from .base import ModelError, ModelProvider
from .fallback import FallbackChain
from .openai import DEFAULT_OPENAI_BASE_URL, OpenAIProvider

if TYPE_CHECKING:
    from ..scripted import ScriptedModelServer

PROVIDERS = ("openai", "anthropic", "demo")

CONFIGURE_HELP = (
    "Set OPENFOAL_MODEL to a model id: openai:<model> (for example openai:gpt-4.1-mini) with "
    "OPENAI_API_KEY, plus OPENAI_BASE_URL for any OpenAI-compatible server (Ollama, vLLM, "
    "llama.cpp); or anthropic:<model> with ANTHROPIC_API_KEY (ANTHROPIC_BASE_URL optional). "
    "OPENFOAL_FALLBACK_MODELS adds comma-separated fallback models and OPENFOAL_MODEL_TIMEOUT "
    "the timeout in seconds. OPENFOAL_MODEL=demo starts the scripted demo model instead."
)


@dataclass(kw_only=True)
class ModelNotConfigured(ModelError):
    """No usable model is configured; the message says how to configure one."""

    message: str = "No model is configured. " + CONFIGURE_HELP
    retryable: bool = False


def parse_model_id(model_id: str) -> tuple[str, str]:
    """Split ``"openai:gpt-4.1-mini"`` into ``("openai", "gpt-4.1-mini")``; bare ``demo`` is fine.

    Only the first colon splits, so ``openai:llama3.1:8b`` names the model ``llama3.1:8b``.
    """
    text = model_id.strip()
    if text == "demo":
        return "demo", "demo"
    provider, sep, model = text.partition(":")
    provider, model = provider.strip().lower(), model.strip()
    if not sep:
        raise ValueError(
            f"model id {model_id!r} has no provider: write it as provider:model, for example "
            f"openai:{text or 'gpt-4.1-mini'} or anthropic:{text or 'claude-sonnet-4-5'} "
            "(or demo)"
        )
    if provider not in PROVIDERS:
        raise ValueError(
            f"model id {model_id!r} names an unknown provider {provider!r}: "
            f"use one of {', '.join(PROVIDERS)}"
        )
    if not model:
        raise ValueError(f"model id {model_id!r} has no model name after {provider}:")
    return provider, model


def _timeout(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return ModelSettings().timeoutSec
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:  # also refuses nan
        raise ModelNotConfigured(
            message=f"OPENFOAL_MODEL_TIMEOUT={raw!r} must be a positive number of seconds"
        )
    return value


def settings_from_env(env: Mapping[str, str] = os.environ) -> ModelSettings:
    """Read the model settings from environment variables (empty values count as unset).

    A malformed ``OPENFOAL_MODEL_TIMEOUT`` raises :class:`ModelNotConfigured`; model ids are
    checked by :func:`build_provider`.
    """

    def get(name: str) -> str | None:
        """The variable's stripped value, or None when unset or blank."""
        value = env.get(name, "").strip()
        return value or None

    fallback = [item.strip() for item in (get("OPENFOAL_FALLBACK_MODELS") or "").split(",")]
    return ModelSettings(
        model=get("OPENFOAL_MODEL"),
        fallback=[item for item in fallback if item],
        openaiApiKey=get("OPENAI_API_KEY"),
        openaiBaseUrl=get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
        anthropicApiKey=get("ANTHROPIC_API_KEY"),
        anthropicBaseUrl=get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL,
        timeoutSec=_timeout(env.get("OPENFOAL_MODEL_TIMEOUT")),
    )


class _DemoServer:
    """The in-process scripted server behind ``demo``, started on first use and kept for good."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ScriptedModelServer | None = None

    def get(self) -> tuple[str, str]:
        """``(openai_base_url, api_key)`` of the running demo server."""
        # Imported here: only the demo needs the server (and tornado) in the kernel process.
        from ..scripted import ScriptedModelServer, demo_responder

        with self._lock:
            if self._server is None:
                # A per-process key: other local users cannot script this process's demo model.
                key = secrets.token_urlsafe(24)
                self._server = ScriptedModelServer(demo_responder, api_key=key).start()
            return self._server.openai_base_url, str(self._server.api_key)


_demo = _DemoServer()


def _one_provider(
    model_id: str, settings: ModelSettings, http_client: httpx.AsyncClient | None = None
) -> ModelProvider:
    try:
        provider, model = parse_model_id(model_id)
    except ValueError as exc:
        raise ModelNotConfigured(message=f"{exc}. {CONFIGURE_HELP}") from exc
    timeout = settings.timeoutSec
    if provider == "demo":
        base_url, key = _demo.get()
        return OpenAIProvider("demo", key, base_url, timeout, model_id="demo", trust_env=False)
    if provider == "openai":
        base_url = settings.openaiBaseUrl or DEFAULT_OPENAI_BASE_URL
        # A self-hosted compatible server may need no key; the public API always does.
        if not settings.openaiApiKey and base_url.rstrip("/") == DEFAULT_OPENAI_BASE_URL:
            raise ModelNotConfigured(
                message=f"{model_id} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a "
                f"compatible server). {CONFIGURE_HELP}"
            )
        return OpenAIProvider(model, settings.openaiApiKey, base_url, timeout, http_client)
    base_url = settings.anthropicBaseUrl or DEFAULT_ANTHROPIC_BASE_URL
    if not settings.anthropicApiKey and base_url.rstrip("/") == DEFAULT_ANTHROPIC_BASE_URL:
        raise ModelNotConfigured(message=f"{model_id} needs ANTHROPIC_API_KEY. {CONFIGURE_HELP}")
    return AnthropicProvider(model, settings.anthropicApiKey, base_url, timeout, http_client)


def build_provider(
    settings: ModelSettings, *, http_client: httpx.AsyncClient | None = None
) -> FallbackChain:
    """A FallbackChain over ``settings.model`` then ``settings.fallback``.

    ``http_client``, when given, is shared by the providers (and never closed by them): a
    long-lived process reuses its connections and TLS setup across runs that way.
    Raises :class:`ModelNotConfigured` when no model is set or one of them cannot be used.
    """
    if not settings.model:
        raise ModelNotConfigured()
    providers = [
        _one_provider(m, settings, http_client) for m in [settings.model, *settings.fallback]
    ]
    return FallbackChain(
        providers, max_retries=settings.maxRetries, backoff_cap_s=settings.backoffCapSec
    )
