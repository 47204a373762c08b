"""A small asyncio client of the gateway protocol (used by the CLI, tests and benchmarks)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .protocol.errors import OpenFoalError
from .protocol.events import TERMINAL_EVENTS
from .protocol.methods import is_side_effect


class GatewayError(OpenFoalError):
    """An error ``res`` from the gateway."""


class GatewayClient:
    """One WebSocket connection: requests by id, events on a queue."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        client_name: str = "openfoal-cli",
        origin: str | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.client_name = client_name
        self.origin = origin
        self.ws: ClientConnection | None = None
        self.hello: dict[str, Any] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, **connect_params: Any) -> dict[str, Any]:
        """Open the socket and send ``connect``; return its payload."""
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        self.ws = await websockets.connect(
            self.url,
            additional_headers=headers,
            origin=self.origin,  # type: ignore[arg-type]
            max_size=None,
        )
        self._reader = asyncio.create_task(self._read())
        params = {"client": {"name": self.client_name, "version": "1"}, **connect_params}
        self.hello = await self.request("connect", params)
        return self.hello

    async def close(self) -> None:
        """Close the socket."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                frame = json.loads(text)
                if frame.get("type") == "res":
                    fut = self._pending.pop(frame.get("id", ""), None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
                    else:
                        await self.events.put(frame)  # an unsolicited error (e.g. bad frame)
                else:
                    await self.events.put(frame)
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("gateway connection closed"))

    async def send_raw(self, text: str) -> None:
        """Send a raw text frame (for tests of bad input)."""
        assert self.ws is not None
        await self.ws.send(text)

    async def request_frame(
        self, method: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a request and return the whole ``res`` frame."""
        assert self.ws is not None
        params = dict(params or {})
        if is_side_effect(method) and "idempotencyKey" not in params:
            params["idempotencyKey"] = uuid.uuid4().hex
        req_id = f"r{next(self._ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        await self.ws.send(
            json.dumps({"type": "req", "id": req_id, "method": method, "params": params})
        )
        return await fut

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request; return its payload or raise :class:`GatewayError`."""
        frame = await self.request_frame(method, params)
        if not frame.get("ok"):
            err = frame.get("error") or {}
            raise GatewayError(
                err.get("code", "INTERNAL_ERROR"),
                err.get("message", ""),
                retryable=err.get("retryable"),
                details=err,
            )
        return dict(frame["payload"])

    async def next_event(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for the next event frame."""
        return await asyncio.wait_for(self.events.get(), timeout)

    async def run_events(self, run_id: str, timeout: float = 60.0) -> AsyncIterator[dict[str, Any]]:
        """Yield the events of one run, ending after its terminal event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.next_event(max(0.01, deadline - loop.time()))
            if frame.get("type") != "event" or frame["payload"].get("runId") != run_id:
                continue
            yield frame
            if frame["event"] in TERMINAL_EVENTS:
                return

    async def run(self, text: str, **params: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Start a run and collect its events until it ends."""
        accepted = await self.request("agent.run", {"input": text, **params})
        events = [e async for e in self.run_events(accepted["runId"])]
        return accepted, events
