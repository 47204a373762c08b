"""The OpenAI chat-completions wire: ``chat.completion.chunk`` SSE frames and error bodies."""

from __future__ import annotations

import time
from typing import Any

from .script import FinishReason
from .wire import Collected, TokenCounts, WireEncoder, dumps, random_id, sse

# (type, code, default message) of the API's error body per status.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(status: int, message: str | None) -> dict[str, Any]:
    """The chat-completions error body for ``status``."""
    default = ("invalid_request_error", None, "Request failed.")
    if status >= 500:
        default = ("server_error", None, "The server had an error processing your request.")
    kind, code, text = _ERRORS.get(status, default)
    return {"error": {"message": message or text, "type": kind, "param": None, "code": code}}


class OpenAIEncoder(WireEncoder):
    """Encodes a reply as the chat-completions API streams it."""

    tool_id_prefix = "call_"

    def __init__(self, *, model: str, input_tokens: int, include_usage: bool) -> None:
        super().__init__(model=model, input_tokens=input_tokens, include_usage=include_usage)
        self.id = random_id("chatcmpl-")
        self.created = int(time.time())
        self._tool_index = -1

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_scripted",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None  # the API sends null usage on every chunk but the last
        return sse(dumps(chunk))

    def _usage(self, usage: TokenCounts) -> dict[str, int]:
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
        }

    def error_body(self, status: int, message: str | None) -> dict[str, Any]:
        """The chat-completions error body for ``status``."""
        return error_body(status, message)

    def begin(self) -> str:
        """The first chunk announces the assistant role."""
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def text(self, piece: str) -> str:
        """A ``delta.content`` chunk."""
        return self._chunk({"content": piece})

    def tool_start(self, call_id: str, name: str) -> str:
        """The chunk carrying the call's index, id and name, with empty arguments."""
        self._tool_index += 1
        call = {
            "index": self._tool_index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def tool_args(self, piece: str) -> str:
        """A chunk with the next piece of ``function.arguments`` (index only, no id)."""
        call = {"index": self._tool_index, "function": {"arguments": piece}}
        return self._chunk({"tool_calls": [call]})

    def burst(self, piece: str) -> tuple[str, str]:
        """Text chunks need no opening frame here."""
        return "", self.text(piece)

    def error_event(self, body: dict[str, Any]) -> str:
        """The API reports a failure inside a stream as a data frame with an ``error`` key."""
        return sse(dumps(body))

    def malformed(self, data: str) -> str:
        """A data line that is not a valid chunk."""
        return sse(data)

    def finish(self, reason: FinishReason, usage: TokenCounts) -> str:
        """The finish_reason chunk, the usage chunk when asked for, then ``[DONE]``."""
        frames = self._chunk({}, reason)
        if self.include_usage:
            last = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_scripted",
                "choices": [],
                "usage": self._usage(usage),
            }
            frames += sse(dumps(last))
        return frames + sse("[DONE]")

    def complete(
        self, collected: Collected, reason: FinishReason, usage: TokenCounts
    ) -> dict[str, Any]:
        """A ``chat.completion`` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": collected.text or None,
            "refusal": None,
        }
        if collected.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                for cid, name, args in collected.tool_calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_scripted",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
            ],
            "usage": self._usage(usage),
        }
