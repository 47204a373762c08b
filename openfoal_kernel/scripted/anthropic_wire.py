"""The Anthropic messages wire: typed SSE events (message_start ... message_stop), error bodies."""

from __future__ import annotations

import json
from typing import Any

from .script import FinishReason
from .wire import Collected, TokenCounts, WireEncoder, dumps, random_id, sse

_STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
}

# (error type, default message) per status; 529 is the API's own "overloaded".
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("overloaded_error", "Overloaded"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(status: int, message: str | None) -> dict[str, Any]:
    """The messages-API error body for ``status``."""
    default = (
        ("api_error", "Internal server error")
        if status >= 500
        else ("invalid_request_error", "Invalid request.")
    )
    kind, text = _ERRORS.get(status, default)
    return {
        "type": "error",
        "error": {"type": kind, "message": message or text},
        "request_id": random_id("req_"),
    }


class AnthropicEncoder(WireEncoder):
    """Encodes a reply as the messages API streams it: a content block per text run or tool use."""

    tool_id_prefix = "toolu_01"

    def __init__(self, *, model: str, input_tokens: int, include_usage: bool) -> None:
        super().__init__(model=model, input_tokens=input_tokens, include_usage=include_usage)
        self.id = random_id("msg_01")
        self._index = -1
        self._open: str | None = None  # type of the open content block

    def _event(self, event: str, data: dict[str, Any]) -> str:
        return sse(dumps({"type": event, **data}), event)

    def _close_block(self) -> str:
        if self._open is None:
            return ""
        self._open = None
        return self._event("content_block_stop", {"index": self._index})

    def _start_block(self, block: dict[str, Any]) -> str:
        frames = self._close_block()
        self._index += 1
        self._open = block["type"]
        return frames + self._event(
            "content_block_start", {"index": self._index, "content_block": block}
        )

    def _usage(self, usage: TokenCounts) -> dict[str, int]:
        return {
            "input_tokens": usage.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": usage.output_tokens,
        }

    def error_body(self, status: int, message: str | None) -> dict[str, Any]:
        """The messages-API error body for ``status``."""
        return error_body(status, message)

    def begin(self) -> str:
        """``message_start`` with the input usage, then a ``ping`` as the API sends."""
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(TokenCounts(input_tokens=self.input_tokens, output_tokens=1)),
        }
        return self._event("message_start", {"message": message}) + self._event("ping", {})

    def _text_block(self) -> str:
        return "" if self._open == "text" else self._start_block({"type": "text", "text": ""})

    def text(self, piece: str) -> str:
        """A ``text_delta``, opening a text block first when needed."""
        delta = {"type": "text_delta", "text": piece}
        return self._text_block() + self._event(
            "content_block_delta", {"index": self._index, "delta": delta}
        )

    def tool_start(self, call_id: str, name: str) -> str:
        """A ``tool_use`` content block with empty input."""
        return self._start_block({"type": "tool_use", "id": call_id, "name": name, "input": {}})

    def tool_args(self, piece: str) -> str:
        """An ``input_json_delta`` of the open tool_use block."""
        delta = {"type": "input_json_delta", "partial_json": piece}
        return self._event("content_block_delta", {"index": self._index, "delta": delta})

    def burst(self, piece: str) -> tuple[str, str]:
        """Open the text block once; every delta frame after it is identical."""
        prefix = self._text_block()
        delta = {"type": "text_delta", "text": piece}
        return prefix, self._event("content_block_delta", {"index": self._index, "delta": delta})

    def error_event(self, body: dict[str, Any]) -> str:
        """An ``event: error`` frame, as the API sends when it fails mid-stream."""
        return sse(dumps(body), "error")

    def malformed(self, data: str) -> str:
        """A content_block_delta whose data is not valid JSON."""
        return sse(data, "content_block_delta")

    def finish(self, reason: FinishReason, usage: TokenCounts) -> str:
        """Close the open block, then ``message_delta`` (stop reason, usage), ``message_stop``."""
        delta = {"stop_reason": _STOP_REASONS[reason], "stop_sequence": None}
        return (
            self._close_block()
            + self._event(
                "message_delta", {"delta": delta, "usage": {"output_tokens": usage.output_tokens}}
            )
            + self._event("message_stop", {})
        )

    def complete(
        self, collected: Collected, reason: FinishReason, usage: TokenCounts
    ) -> dict[str, Any]:
        """A whole ``message`` object."""
        content: list[dict[str, Any]] = []
        if collected.text:
            content.append({"type": "text", "text": collected.text})
        for call_id, name, args in collected.tool_calls:
            try:
                tool_input = json.loads(args)
            except json.JSONDecodeError:
                tool_input = args  # scripted broken arguments: sent as they are
            content.append({"type": "tool_use", "id": call_id, "name": name, "input": tool_input})
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": _STOP_REASONS[reason],
            "stop_sequence": None,
            "usage": self._usage(usage),
        }
