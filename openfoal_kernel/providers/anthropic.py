"""A provider for the Anthropic messages API (streaming, tool use)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..protocol.transcript import ChatMessage, ToolCall
from ._http import ClientHolder, ToolNames, broken_stream, load_event, parse_arguments, stream_sse
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

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
#: The API requires max_tokens; this is used when the caller sets no limit.
DEFAULT_MAX_TOKENS = 4096

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}
_RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


@dataclass
class _PartialCall:
    """A tool_use block being assembled from input_json_delta events."""

    id: str
    name: str
    arguments: str = ""


def _blocks_of(msg: ChatMessage, names: ToolNames) -> tuple[str, list[dict[str, Any]]]:
    """The role and content blocks one transcript entry becomes (tool results go in user turns)."""
    text = [{"type": "text", "text": msg.content}] if msg.content.strip() else []
    if msg.role == "assistant":
        uses = [
            {"type": "tool_use", "id": c.id, "name": names.api(c.name), "input": c.arguments}
            for c in msg.tool_calls
        ]
        return "assistant", text + uses
    if msg.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg.tool_call_id}
        if msg.content:
            result["content"] = msg.content
        return "user", [result]
    return "user", text


def anthropic_messages(
    messages: Sequence[ChatMessage], names: ToolNames
) -> tuple[str, list[dict[str, Any]]]:
    """Transcript entries as ``(system, messages)``, merging same-role neighbours."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "system":
            if msg.content.strip():
                system.append(msg.content)
            continue
        role, blocks = _blocks_of(msg, names)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for message in out:
        # The API wants tool results first in a user turn, before any text.
        message["content"].sort(key=lambda block: block["type"] != "tool_result")
    return "\n\n".join(system), out


def anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs as messages-API tools."""
    return [
        {
            "name": ToolNames.api(tool.name),
            "description": tool.description,
            "input_schema": tool.parameters,
        }
        for tool in tools
    ]


class AnthropicProvider(ModelProvider):
    """Streams Anthropic messages with tool use over httpx."""

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str = DEFAULT_ANTHROPIC_BASE_URL,
        timeout_s: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
        *,
        model_id: str | None = None,
        trust_env: bool = True,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.model = model
        self.model_id = model_id or f"anthropic:{model}"
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.default_max_tokens = default_max_tokens
        self._clients = ClientHolder(http_client, trust_env=trust_env)

    def request_body(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        max_output_tokens: int | None = None,
    ) -> dict[str, Any]:
        """The streaming messages-API request body for this conversation."""
        names = ToolNames(tools)
        system, wire_messages = anthropic_messages(messages, names)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_output_tokens or self.default_max_tokens,
            "messages": wire_messages,
            "stream": True,
        }
        if system:
            body["system"] = system
        if tools:
            body["tools"] = anthropic_tools(tools)
        return body

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        max_output_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one message: text deltas, each tool call when its block closes, usage, finish."""
        names = ToolNames(tools)
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        calls: dict[int, _PartialCall] = {}
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        stopped = False
        events = stream_sse(
            self._clients.get(),
            f"{self.base_url}/v1/messages",
            provider=self.model_id,
            headers=headers,
            body=self.request_body(messages, tools, max_output_tokens),
            timeout_s=self.timeout_s,
        )
        async for event in events:
            data = load_event(self.model_id, event)
            kind = data.get("type") or event.event
            if kind == "error":
                raise self._stream_error(data.get("error"))
            if kind == "message_start":
                usage = (data.get("message") or {}).get("usage") or {}
                input_tokens = _input_tokens(usage)
                output_tokens = int(usage.get("output_tokens") or 0)
            elif kind == "content_block_start":
                block = data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    started = _PartialCall(
                        id=str(block.get("id", "")), name=str(block.get("name", ""))
                    )
                    calls[int(data.get("index", 0))] = started
                elif block.get("type") == "text" and block.get("text"):
                    yield TextDelta(text=block["text"])
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield TextDelta(text=delta["text"])
                elif delta.get("type") == "input_json_delta":
                    partial = calls.get(int(data.get("index", 0)))
                    if partial is None:
                        raise broken_stream(self.model_id, "input_json_delta outside a tool_use")
                    partial.arguments += delta.get("partial_json") or ""
            elif kind == "content_block_stop":
                done = calls.pop(int(data.get("index", 0)), None)
                if done is not None:
                    yield self._ready(done, names)
            elif kind == "message_delta":
                stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                usage = data.get("usage") or {}
                output_tokens = int(usage.get("output_tokens") or output_tokens)
                input_tokens = _input_tokens(usage) or input_tokens
            elif kind == "message_stop":
                stopped = True
                break
            # ping and event types added later by the API are ignored, as it asks clients to.
        if not stopped:
            raise broken_stream(self.model_id, "ended before message_stop")
        yield Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        reason = stop_reason or "end_turn"
        yield Finish(reason=_STOP_REASONS.get(reason, reason), model=self.model_id)

    def _ready(self, call: _PartialCall, names: ToolNames) -> ToolCallReady:
        name = names.wire(call.name)
        arguments = parse_arguments(self.model_id, name, call.arguments)
        return ToolCallReady(call=ToolCall(id=call.id, name=name, arguments=arguments))

    def _stream_error(self, error: Any) -> ModelError:
        """An ``event: error`` sent inside the stream (overloaded and server errors retry)."""
        error = error if isinstance(error, dict) else {"message": str(error)}
        kind = str(error.get("type") or "")
        return ModelError(
            message=f"{self.model_id}: error in stream: {kind}: {error.get('message', '')}",
            retryable=kind in _RETRYABLE_TYPES,
            provider=self.model_id,
            details={"type": kind, "body": json.dumps(error)[:2000]},
        )

    async def aclose(self) -> None:
        """Close the connections this provider opened."""
        await self._clients.aclose()


def _input_tokens(usage: dict[str, Any]) -> int:
    """All prompt tokens, cached or not."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(int(usage.get(key) or 0) for key in keys)
