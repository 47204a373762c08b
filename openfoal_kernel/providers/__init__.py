"""Model providers: OpenAI-compatible and Anthropic streaming clients, a fallback chain, config."""

from __future__ import annotations

from .anthropic import ANTHROPIC_VERSION, DEFAULT_ANTHROPIC_BASE_URL, AnthropicProvider
from .base import (
    Finish,
    ModelError,
    ModelProvider,
    StreamEvent,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    Usage,
)
from .config import (
    CONFIGURE_HELP,
    ModelNotConfigured,
    build_provider,
    parse_model_id,
    settings_from_env,
)
from .fallback import Failure, FallbackChain
from .openai import DEFAULT_OPENAI_BASE_URL, OpenAIProvider

__all__ = [
    "ANTHROPIC_VERSION",
    "CONFIGURE_HELP",
    "DEFAULT_ANTHROPIC_BASE_URL",
    "DEFAULT_OPENAI_BASE_URL",
    "AnthropicProvider",
    "Failure",
    "FallbackChain",
    "Finish",
    "ModelError",
    "ModelNotConfigured",
    "ModelProvider",
    "OpenAIProvider",
    "StreamEvent",
    "TextDelta",
    "ToolCallReady",
    "ToolSpec",
    "Usage",
    "build_provider",
    "parse_model_id",
    "settings_from_env",
]
