"""Fixtures for the scripted model server tests: a running server and an SSE reader."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from openfoal_kernel.scripted import ScriptedModelServer


@dataclass
class Streamed:
    """What a streaming POST returned: status, headers, and the events (name, decoded data)."""

    status: int
    headers: httpx.Headers
    events: list[tuple[str, Any]] = field(default_factory=list)
    body: Any = None

    def data(self) -> list[Any]:
        """The decoded data of every event."""
        return [data for _, data in self.events]


PostStream = Callable[..., Streamed]


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    """A scripted server that accepts any key."""
    with ScriptedModelServer() as running:
        yield running


@pytest.fixture
def post_stream() -> Iterator[PostStream]:
    """POST a JSON body and read the answer as server-sent events (or a JSON error body)."""
    client = httpx.Client(timeout=10, trust_env=False)

    def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Streamed:
        with connect_sse(client, "POST", url, json=body, headers=headers or {}) as source:
            response = source.response
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()
                return Streamed(response.status_code, response.headers, body=response.json())
            result = Streamed(response.status_code, response.headers)
            for event in source.iter_sse():
                data = event.data if event.data == "[DONE]" else json.loads(event.data)
                result.events.append((event.event, data))
            return result

    yield post
    client.close()
