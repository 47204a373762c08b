"""The interface of an API's wire encoder: the SSE frames and JSON bodies one reply turns into.

An encoder is pure (strings and dicts out, no I/O) and holds the per-response state an API
needs, such as the index of the open content block; :mod:`.player` drives it.
"""

from __future__ import annotations

import json
import secrets
import string
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from .script import FinishReason

_ALPHABET = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    """An id shaped like the APIs' own (``call_...``, ``msg_...``)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def dumps(obj: Any) -> str:
    """Compact JSON, as the APIs send it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(data: str, event: str | None = None) -> str:
    """One server-sent event frame."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n"


@dataclass(kw_only=True)
class Collected:
    """What a non-streaming response carries, gathered while a reply plays."""

    text: str = ""
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)  # id, api name, json


@dataclass(frozen=True, kw_only=True)
class TokenCounts:
    """Usage reported at the end of a response."""

    input_tokens: int
    output_tokens: int


class WireEncoder(ABC):
    """Turns the steps of one reply into one API's frames."""

    #: Prefix of this API's tool call ids.
    tool_id_prefix: str

    def __init__(self, *, model: str, input_tokens: int, include_usage: bool) -> None:
        self.model = model
        self.input_tokens = input_tokens
        self.include_usage = include_usage

    @abstractmethod
    def error_body(self, status: int, message: str | None) -> dict[str, Any]:
        """The API's standard JSON error body for ``status``."""

    @abstractmethod
    def begin(self) -> str:
        """Frames that open the stream (sent with the first content)."""

    @abstractmethod
    def text(self, piece: str) -> str:
        """Frames for one text delta."""

    @abstractmethod
    def tool_start(self, call_id: str, name: str) -> str:
        """Frames that start a tool call named ``name`` (API name)."""

    @abstractmethod
    def tool_args(self, piece: str) -> str:
        """Frames for one piece of the current tool call's argument JSON."""

    @abstractmethod
    def burst(self, piece: str) -> tuple[str, str]:
        """``(prefix, frame)``: frames to send once, then one text delta frame to repeat."""

    @abstractmethod
    def error_event(self, body: dict[str, Any]) -> str:
        """An error reported inside an already started stream."""

    @abstractmethod
    def malformed(self, data: str) -> str:
        """A broken frame carrying ``data`` verbatim."""

    @abstractmethod
    def finish(self, reason: FinishReason, usage: TokenCounts) -> str:
        """Frames that end the stream normally."""

    @abstractmethod
    def complete(
        self, collected: Collected, reason: FinishReason, usage: TokenCounts
    ) -> dict[str, Any]:
        """The whole response body of a non-streaming request."""


def estimate_tokens(chars: int) -> int:
    """A stable stand-in for a tokenizer: about four characters per token."""
    return max(1, (chars + 3) // 4)


def input_chars(body: dict[str, Any]) -> int:
    """Size of the prompt (system, messages and tools), for the token estimate."""
    return sum(len(dumps(body.get(key) or "")) for key in ("system", "messages", "tools"))
