"""A 1.0 client on the 1.1 server: connect, a whole run and a read, in 1.0 frames only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from openfoal_kernel.scripted import Reply, TextStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def _connect(ws: Any, protocol: dict[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"client": {"name": "client-1.0", "version": "1.0.0"}}
    if protocol is not None:
        params["protocol"] = protocol
    await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


def _raw(server: ServerProcess) -> Any:
    return websockets.connect(
        server.ws_url, additional_headers={"Authorization": f"token {server.token}"}
    )


async def test_a_1_0_client_runs_a_turn_on_the_1_1_server(
    shared_server: ServerProcess, model
) -> None:
    model.enqueue(Reply(steps=[TextStep(text="spoken in one point oh", chunk_size=5)]))
    async with _raw(shared_server) as ws:
        hello = await _connect(ws, {"min": "1.0", "max": "1.0"})
        assert hello["ok"] is True and hello["payload"]["protocolVersion"] == "1.0.0"
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "r1",
                    "method": "agent.run",
                    "params": {"input": "hello", "idempotencyKey": "k-1.0"},
                }
            )
        )
        res: dict[str, Any] | None = None
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] not in ("agent.completed", "agent.failed"):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if frame["type"] == "res":
                res = frame
            else:
                events.append(frame)
        assert res is not None and res["ok"] is True and res["id"] == "r1"
        assert events[-1]["event"] == "agent.completed"
        text = "".join(e["payload"]["delta"] for e in events if e["event"] == "agent.delta")
        assert text == "spoken in one point oh"
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "r2",
                    "method": "sessions.get",
                    "params": {"sessionId": res["payload"]["sessionId"]},
                }
            )
        )
        got = json.loads(await asyncio.wait_for(ws.recv(), 30))
        while got.get("id") != "r2":  # events of the ended run may still come
            got = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert got["ok"] is True and got["payload"]["session"]["status"] in ("idle", "running")


@pytest.mark.parametrize(
    "protocol,version",
    [(None, "1.1.0"), ({"min": "1", "max": "1"}, "1.1.0"), ({"min": "1.0", "max": "1.1"}, "1.1.0")],
)
async def test_the_highest_common_version_is_spoken(
    shared_server: ServerProcess, protocol, version
) -> None:
    async with _raw(shared_server) as ws:
        hello = await _connect(ws, protocol)
    assert hello["ok"] is True and hello["payload"]["protocolVersion"] == version


@pytest.mark.parametrize("protocol", [{"min": "1.2", "max": "1.4"}, {"min": "0.1", "max": "0.9"}])
async def test_a_version_outside_the_window_is_refused(
    shared_server: ServerProcess, protocol
) -> None:
    async with _raw(shared_server) as ws:
        hello = await _connect(ws, protocol)
        assert hello["ok"] is False and hello["error"]["code"] == "INVALID_REQUEST"
        assert "1.0.0 to 1.1.0" in hello["error"]["message"]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
