"""What the scripted model server answers: a :class:`Reply` made of steps, and the request it saw.

Every model here is JSON-serialisable, so a test in another process can send replies to a
server over ``POST /_scripted/enqueue`` and read back the :class:`ScriptedRequest` objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..protocol.transcript import ChatMessage
from . import conversation

Api = Literal["openai", "anthropic"]
FinishReason = Literal["stop", "tool_calls", "length"]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextStep(_Step):
    """Stream ``text`` in deltas of ``chunk_size`` characters, ``chunk_delay_s`` apart."""

    type: Literal["text"] = "text"
    text: str
    chunk_size: int = Field(default=16, ge=1)
    chunk_delay_s: float = Field(default=0.0, ge=0.0)


class ToolCallStep(_Step):
    """Call the tool ``name`` (wire name, ``bash.exec``); its argument JSON streams in chunks.

    ``raw_arguments`` is sent verbatim instead of the JSON of ``arguments`` (broken JSON tests).
    """

    type: Literal["tool_call"] = "tool_call"
    id: str | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = None
    chunk_size: int = Field(default=8, ge=1)
    chunk_delay_s: float = Field(default=0.0, ge=0.0)


class ErrorStep(_Step):
    """Fail with the API's error: an HTTP ``status`` before any stream byte, an error event after.

    ``body`` replaces the API's standard error body for that status; ``message`` only its text.
    """

    type: Literal["error"] = "error"
    status: int = Field(ge=400, le=599)
    message: str | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class DelayStep(_Step):
    """Send nothing for ``seconds`` (before the first byte it delays the response headers)."""

    type: Literal["delay"] = "delay"
    seconds: float = Field(ge=0.0)


class MalformedStep(_Step):
    """Send ``data`` as a raw SSE data line (or a non-streaming body): broken JSON by default."""

    type: Literal["malformed"] = "malformed"
    data: str = '{"choices": [{"delta": {"content": "unterminated'


class HangStep(_Step):
    """Stop sending but keep the connection open, for ``seconds`` or until the client leaves."""

    type: Literal["hang"] = "hang"
    seconds: float | None = Field(default=None, ge=0.0)


class DisconnectStep(_Step):
    """Drop the TCP connection at once, mid-stream."""

    type: Literal["disconnect"] = "disconnect"


class BurstStep(_Step):
    """Send ``count`` deltas of ``text`` as fast as the socket takes them (throughput tests)."""

    type: Literal["burst"] = "burst"
    count: int = Field(ge=1)
    text: str = "x"


Step = Annotated[
    TextStep
    | ToolCallStep
    | ErrorStep
    | DelayStep
    | MalformedStep
    | HangStep
    | DisconnectStep
    | BurstStep,
    Field(discriminator="type"),
]


class ScriptUsage(BaseModel):
    """Token counts to report instead of the server's estimate."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class Reply(BaseModel):
    """One scripted answer: the steps in order, and optionally usage, finish reason and model.

    ``finish_reason`` defaults to ``tool_calls`` when a step calls a tool, else ``stop`` (the
    Anthropic wire maps these to ``tool_use`` / ``end_turn`` / ``max_tokens``). ``finish=False``
    ends a stream cleanly but without its closing frames, like an answer cut off upstream.
    """

    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(default_factory=list)
    usage: ScriptUsage | None = None
    finish_reason: FinishReason | None = None
    model: str | None = None
    finish: bool = True

    @classmethod
    def of(cls, *steps: Step, **fields: Any) -> Reply:
        """Build a reply from steps given positionally (``Reply.of(TextStep(text="hi"))``)."""
        return cls(steps=list(steps), **fields)

    def resolved_finish_reason(self) -> FinishReason:
        """The finish reason to report, applying the default."""
        if self.finish_reason is not None:
            return self.finish_reason
        if any(isinstance(step, ToolCallStep) for step in self.steps):
            return "tool_calls"
        return "stop"


class ScriptedRequest(BaseModel):
    """A request the server received on a model endpoint, as the responder and tests see it."""

    api: Api
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] = Field(default_factory=dict)

    def tool_names(self) -> list[str]:
        """The tool names offered in the request, as the API saw them (``bash_exec``)."""
        return list(conversation.offered_tools(self.api, self.body))

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Offered tools by API name, each with its JSON Schema of parameters."""
        return conversation.offered_tools(self.api, self.body)

    def transcript(self) -> list[ChatMessage]:
        """The conversation in provider-neutral form (tool names stay as the API saw them)."""
        return conversation.transcript(self.api, self.body)


def api_tool_name(name: str) -> str:
    """The name a model API sees for the wire tool ``name``: dots are forbidden (``bash_exec``)."""
    return name.replace(".", "_")
