"""What both HTTP providers share: the SSE request, error mapping, tool names, argument JSON."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse

from .base import ModelError, ToolSpec

_BODY_LIMIT = 2000  # characters of an error body kept in ModelError.details


def status_retryable(status: int) -> bool:
    """Rate limits, request timeouts and server errors may pass on retry; other 4xx will not."""
    return status in (408, 429) or status >= 500


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms``, ``retry-after`` seconds or date)."""
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def http_error(provider: str, response: httpx.Response, text: str) -> ModelError:
    """A ModelError for a non-2xx answer, with the API's own message when it sent one."""
    message, kind = text.strip()[:300] or response.reason_phrase, None
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        kind = error.get("type") or error.get("code")
    details: dict[str, Any] = {"type": kind, "body": text[:_BODY_LIMIT]}
    retry_after = _retry_after(response.headers)
    if retry_after is not None:
        details["retry_after_s"] = retry_after
    return ModelError(
        message=f"{provider}: HTTP {response.status_code}: {message}",
        retryable=status_retryable(response.status_code),
        status=response.status_code,
        provider=provider,
        details=details,
    )


def transport_error(provider: str, exc: httpx.HTTPError, timeout_s: float) -> ModelError:
    """A ModelError for a timeout or a failed/broken connection (all retryable)."""
    if isinstance(exc, httpx.TimeoutException):
        message = f"{provider}: no answer within {timeout_s:g}s ({type(exc).__name__})"
    else:
        message = f"{provider}: connection failed: {type(exc).__name__}: {exc}"
    return ModelError(
        message=message, retryable=True, provider=provider, details={"type": type(exc).__name__}
    )


def broken_stream(provider: str, problem: str) -> ModelError:
    """A ModelError for a stream that cannot be read to its end (retryable: resample)."""
    return ModelError(
        message=f"{provider}: broken stream: {problem}",
        retryable=True,
        provider=provider,
        details={"type": "broken_stream"},
    )


async def stream_sse(
    client: httpx.AsyncClient,
    url: str,
    *,
    provider: str,
    headers: dict[str, str],
    body: dict[str, Any],
    timeout_s: float,
) -> AsyncIterator[ServerSentEvent]:
    """POST ``body`` and yield the server-sent events; every failure is a :class:`ModelError`."""
    try:
        async with aconnect_sse(
            client, "POST", url, json=body, headers=headers, timeout=httpx.Timeout(timeout_s)
        ) as source:
            response = source.response
            if response.status_code >= 400:
                text = (await response.aread()).decode("utf-8", "replace")
                raise http_error(provider, response, text)
            try:
                async for event in source.aiter_sse():
                    yield event
            except SSEError as exc:  # a 2xx that is not an event stream: a misconfigured URL
                raise ModelError(
                    message=f"{provider}: expected an event stream from {url}: {exc}",
                    provider=provider,
                    status=response.status_code,
                ) from exc
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc, timeout_s) from exc


class ToolNames:
    """Maps wire tool names (``bash.exec``) to API names (``bash_exec``) and back."""

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        self._to_wire = {self.api(tool.name): tool.name for tool in tools}

    @staticmethod
    def api(name: str) -> str:
        """The API name of a wire name: the APIs forbid dots."""
        return name.replace(".", "_")

    def wire(self, api_name: str) -> str:
        """The wire name of an offered tool; an unknown name is returned as the model sent it."""
        return self._to_wire.get(api_name, api_name)


def parse_arguments(provider: str, tool: str, raw: str) -> dict[str, Any]:
    """Parse a tool call's assembled argument JSON (empty means no arguments)."""
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise broken_stream(provider, f"arguments of {tool} are not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise broken_stream(provider, f"arguments of {tool} are not a JSON object")
    return parsed


def load_event(provider: str, event: ServerSentEvent) -> dict[str, Any]:
    """Decode one event's JSON data, or fail as a broken stream."""
    try:
        data = json.loads(event.data)
    except json.JSONDecodeError as exc:
        raise broken_stream(provider, f"malformed event data {event.data[:120]!r}") from exc
    if not isinstance(data, dict):
        raise broken_stream(provider, f"event data is not an object: {event.data[:120]!r}")
    return data


class ClientHolder:
    """The provider's httpx client: the caller's, or one of its own per event loop."""

    def __init__(self, client: httpx.AsyncClient | None, *, trust_env: bool) -> None:
        self._given = client
        self._trust_env = trust_env
        self._own: httpx.AsyncClient | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        """The client to use on the running loop (pooled connections belong to one loop)."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._own is None or self._own_loop is not loop:
            self._own = httpx.AsyncClient(trust_env=self._trust_env)
            self._own_loop = loop
        return self._own

    async def aclose(self) -> None:
        """Close the client this holder created (never the caller's)."""
        if self._own is not None:
            await self._own.aclose()
            self._own = None
