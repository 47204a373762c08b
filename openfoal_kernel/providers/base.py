"""The model provider interface: a streaming chat completion with tool calls."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.transcript import ChatMessage, ToolCall


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A tool offered to the model; ``name`` is the wire name (``bash.exec``)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class TextDelta:
    """A piece of the answer text."""

    text: str


@dataclass(frozen=True, kw_only=True)
class ToolCallReady:
    """A complete tool call (arguments fully received and parsed)."""

    call: ToolCall


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Token usage reported by the provider for this request."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class Finish:
    """The stream ended normally; ``reason`` is ``stop``, ``tool_calls``, ``length`` ..."""

    reason: str = "stop"
    model: str = ""


StreamEvent = TextDelta | ToolCallReady | Usage | Finish


@dataclass(kw_only=True)
class ModelError(Exception):
    """A provider failure; ``retryable`` covers timeouts, 429 and 5xx."""

    message: str
    retryable: bool = False
    status: int | None = None
    provider: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class ModelProvider(ABC):
    """One configured model behind one API."""

    #: ``provider:model``, e.g. ``openai:gpt-4.1-mini``.
    model_id: str

    @abstractmethod
    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        max_output_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one completion; raises :class:`ModelError` on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
