"""The gateway connection without sockets: frame rules, one answer per request, slow clients."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from runworld import WAIT_S, World

from openfoal_server_ext.gateway.connection import (
    CLOSE_POLICY,
    CLOSE_SLOW,
    CLOSE_TOO_BIG,
    GatewayConnection,
)
from openfoal_server_ext.gateway.methods import Gateway
from openfoal_server_ext.services.container import GatewayConfig, Services
from openfoal_server_ext.services.idempotency import IdempotencyService
from openfoal_server_ext.services.metrics import MetricsService
from openfoal_server_ext.services.policy import PolicyService

pytestmark = pytest.mark.asyncio

CLIENT: dict[str, Any] = {"client": {"name": "unit-test"}}


class Client:
    """The socket side of one connection: what was sent to it and how it was closed."""

    def __init__(self, world: World, *, queue_frames: int = 1000) -> None:
        config = GatewayConfig(send_queue_frames=queue_frames, pre_connect_max_bytes=1024)
        policies = PolicyService(world.worker, world.hub, world.audit)
        self.services = Services(
            config=config,
            worker=world.worker,
            hub=world.hub,
            sessions=world.sessions,
            runs=world.services.runs,
            idempotency=IdempotencyService(world.worker, ttl=timedelta(hours=1)),
            kernels=world.kernels,  # type: ignore[arg-type]
            memory=world.memory,
            policies=policies,
            gates=world.services.gates,
            audit=world.audit,
            metrics=MetricsService(world.worker),
            sandboxes=world.sandboxes,
        )
        self.services.ready.set()
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.conn = GatewayConnection(
            services=self.services,
            gateway=Gateway(self.services),
            user="alice",
            send=lambda text: self.frames.append(json.loads(text)),
            close=self._on_close,
        )

    def _on_close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def send(self, frame: dict[str, Any] | str) -> None:
        self.conn.on_message(frame if isinstance(frame, str) else json.dumps(frame))

    async def answer(self, req_id: str) -> dict[str, Any]:
        async def until() -> dict[str, Any]:
            while True:
                for f in self.frames:
                    if f.get("type") == "res" and f.get("id") == req_id:
                        return f
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(until(), WAIT_S)

    async def wait_closed(self) -> tuple[int, str]:
        async def until() -> tuple[int, str]:
            while self.closed is None:
                await asyncio.sleep(0.01)
            return self.closed

        return await asyncio.wait_for(until(), WAIT_S)

    async def connect(self) -> dict[str, Any]:
        self.send({"type": "req", "id": "c", "method": "connect", "params": CLIENT})
        return await self.answer("c")


async def test_the_first_frame_must_be_connect(world: World) -> None:
    client = Client(world)
    client.send({"type": "req", "id": "1", "method": "sessions.list", "params": {}})
    res = await client.answer("1")
    assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST"
    assert (await client.wait_closed())[0] == CLOSE_POLICY


async def test_bad_frames_get_a_structured_error_and_the_connection_stays(world: World) -> None:
    client = Client(world)
    assert (await client.connect())["ok"] is True
    client.send("{not json")
    client.send({"type": "req", "id": "2", "method": "agent.run", "params": {"input": "x"}})
    res = await client.answer("2")
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert "idempotencyKey" in res["error"]["message"]
    errors = [f for f in client.frames if f.get("ok") is False]
    assert len(errors) == 2 and client.closed is None
    client.send({"type": "req", "id": "3", "method": "sessions.list", "params": {}})
    assert (await client.answer("3"))["ok"] is True


async def test_an_oversized_frame_before_connect_closes_the_connection(world: World) -> None:
    client = Client(world)
    client.send(
        {"type": "req", "id": "1", "method": "connect", "params": {"client": {"name": "x" * 2048}}}
    )
    assert (await client.wait_closed())[0] == CLOSE_TOO_BIG
    assert client.frames[0]["error"]["code"] == "INVALID_REQUEST"


async def test_a_protocol_the_server_does_not_speak_is_refused(world: World) -> None:
    client = Client(world)
    params = {**CLIENT, "protocol": {"min": "2.0", "max": "3.0"}}
    client.send({"type": "req", "id": "c", "method": "connect", "params": params})
    res = await client.answer("c")
    assert res["ok"] is False and "1.x" in res["error"]["message"]
    assert (await client.wait_closed())[0] == CLOSE_POLICY


async def test_a_run_started_on_the_connection_streams_its_events_to_it(world: World) -> None:
    client = Client(world)
    await client.connect()
    session = await world.sessions.create("alice")
    params = {"input": "hi", "idempotencyKey": "k", "sessionId": session.id}
    client.send({"type": "req", "id": "r", "method": "agent.run", "params": params})
    res = await client.answer("r")
    assert res["ok"] is True and res["payload"]["status"] == "accepted"
    events = [f for f in client.frames if f.get("type") == "event"]
    assert any(f["event"] == "agent.accepted" for f in events)


async def test_a_client_that_does_not_keep_up_is_disconnected(world: World) -> None:
    client = Client(world, queue_frames=4)
    for i in range(20):
        client.conn.push({"type": "event", "event": "agent.delta", "seq": i})
    assert (await client.wait_closed())[0] == CLOSE_SLOW
