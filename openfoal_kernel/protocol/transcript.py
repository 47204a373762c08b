"""The transcript: provider-neutral chat messages, stored by the gateway, replayed to models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolCall(BaseModel):
    """A tool call requested by the model (wire tool name, e.g. ``bash.exec``)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(BaseModel):
    """One transcript entry.

    ``role="tool"`` carries the result of the call ``tool_call_id``; ``role="system"`` with
    ``kind="compaction"`` is a summary that replaces older context.
    """

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    kind: str | None = None
