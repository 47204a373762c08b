"""A provider for the OpenAI chat-completions API and every server compatible with it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass
class _PartialCall:
    """A tool call being assembled from chunks (keyed by its ``index``)."""

    id: str = ""
    name: str = ""
    arguments: str = ""


def openai_messages(messages: Sequence[ChatMessage], names: ToolNames) -> list[dict[str, Any]]:
    """Transcript entries as chat-completions messages."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "assistant" and msg.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": msg.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": names.api(call.name),
                                "arguments": json.dumps(call.arguments),
                            },
                        }
                        for call in msg.tool_calls
                    ],
                }
            )
        elif msg.role == "tool":
            out.append({"role": "tool", "tool_call_id": msg.tool_call_id, "content": msg.content})
        else:
            out.append({"role": msg.role, "content": msg.content})
    return out


def openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs as chat-completions function tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": ToolNames.api(tool.name),
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


class OpenAIProvider(ModelProvider):
    """Streams chat completions with tool calls over httpx (OpenAI, vLLM, Ollama, llama.cpp ...)."""

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str = DEFAULT_OPENAI_BASE_URL,
        timeout_s: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
        *,
        model_id: str | None = None,
        trust_env: bool = True,
    ) -> None:
        self.model = model
        self.model_id = model_id or f"openai:{model}"
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._clients = ClientHolder(http_client, trust_env=trust_env)
        # OpenAI itself renamed max_tokens; compatible servers mostly know only the old name.
        host = urlsplit(self.base_url).hostname or ""
        self._max_tokens_field = (
            "max_completion_tokens" if host == "api.openai.com" else "max_tokens"
        )

    def request_body(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        max_output_tokens: int | None = None,
    ) -> dict[str, Any]:
        """The streaming chat-completions request body for this conversation."""
        names = ToolNames(tools)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(messages, names),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = openai_tools(tools)
        if max_output_tokens is not None:
            body[self._max_tokens_field] = max_output_tokens
        return body

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        max_output_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one completion: text deltas, then complete tool calls, usage and the finish."""
        names = ToolNames(tools)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        calls: dict[int, _PartialCall] = {}
        finish_reason: str | None = None
        done = False
        events = stream_sse(
            self._clients.get(),
            f"{self.base_url}/chat/completions",
            provider=self.model_id,
            headers=headers,
            body=self.request_body(messages, tools, max_output_tokens),
            timeout_s=self.timeout_s,
        )
        async for event in events:
            if event.data.strip() == "[DONE]":
                done = True
                break
            chunk = load_event(self.model_id, event)
            if "error" in chunk:
                raise self._stream_error(chunk["error"])
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield TextDelta(text=delta["content"])
                for part in delta.get("tool_calls") or []:
                    call = calls.setdefault(int(part.get("index", len(calls))), _PartialCall())
                    function = part.get("function") or {}
                    call.id = part.get("id") or call.id
                    call.name = function.get("name") or call.name
                    call.arguments += function.get("arguments") or ""
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
                    for ready in self._ready_calls(calls, names):
                        yield ready
                    calls.clear()
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                yield Usage(
                    input_tokens=int(usage.get("prompt_tokens") or 0),
                    output_tokens=int(usage.get("completion_tokens") or 0),
                )
        # Some compatible servers omit [DONE]; a finish_reason is still a complete answer.
        if finish_reason is None:
            problem = "[DONE] without a finish_reason" if done else "ended before finishing"
            raise broken_stream(self.model_id, problem)
        yield Finish(reason=finish_reason, model=self.model_id)

    def _ready_calls(self, calls: dict[int, _PartialCall], names: ToolNames) -> list[ToolCallReady]:
        """The assembled calls, in index order, with wire names and parsed arguments."""
        ready = []
        for _, call in sorted(calls.items()):
            name = names.wire(call.name)
            arguments = parse_arguments(self.model_id, name, call.arguments)
            call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
            ready.append(ToolCallReady(call=ToolCall(id=call_id, name=name, arguments=arguments)))
        return ready

    def _stream_error(self, error: Any) -> ModelError:
        """An error object sent inside the stream."""
        error = error if isinstance(error, dict) else {"message": str(error)}
        kind = str(error.get("type") or error.get("code") or "")
        retryable = kind in ("server_error", "rate_limit_exceeded", "requests", "tokens", "")
        return ModelError(
            message=f"{self.model_id}: error in stream: {error.get('message', kind)}",
            retryable=retryable,
            provider=self.model_id,
            details={"type": kind},
        )

    async def aclose(self) -> None:
        """Close the connections this provider opened."""
        await self._clients.aclose()
