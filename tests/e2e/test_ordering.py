"""End to end over the WebSocket: the ``res`` of ``agent.run`` precedes every event of its run,
and live answers and events are what the wire models describe."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.protocol.events import TERMINAL_EVENTS
from openfoal_kernel.protocol.payloads import EVENT_PAYLOADS
from openfoal_kernel.protocol.results import METHOD_RESULTS, AgentRunResult
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio

ROUNDS = 5


async def _frames_of_run(
    ws: websockets.ClientConnection, req_id: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Send one ``agent.run`` and return every frame of it, in arrival order, up to its end."""
    await ws.send(
        json.dumps(
            {
                "type": "req",
                "id": req_id,
                "method": "agent.run",
                "params": {"idempotencyKey": uuid.uuid4().hex, **params},
            }
        )
    )
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if frame["type"] == "res" and frame.get("id") == req_id:
            assert frame["ok"], frame
        elif frame["type"] != "event" or not frame["event"].startswith("agent."):
            continue
        frames.append(frame)
        res = [f for f in frames if f["type"] == "res"]
        if res and any(
            f["type"] == "event"
            and f["event"] in TERMINAL_EVENTS
            and f["payload"]["runId"] == res[0]["payload"]["runId"]
            for f in frames
        ):
            return frames


def _order(frames: list[dict[str, Any]]) -> list[str]:
    return ["res" if f["type"] == "res" else f["event"] for f in frames]


async def test_res_precedes_events_on_new_and_existing_sessions(
    shared_server: ServerProcess, model
) -> None:
    for _ in range(2 * ROUNDS):
        model.enqueue(Reply(steps=[TextStep(text="one two three four five", chunk_size=4)]))
    headers = {"Authorization": f"token {shared_server.token}"}
    async with websockets.connect(shared_server.ws_url, additional_headers=headers) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "c",
                    "method": "connect",
                    "params": {"client": {"name": "ordering-test"}},
                }
            )
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["ok"]
        for i in range(ROUNDS):
            new = await _frames_of_run(ws, f"new{i}", {"input": f"hello {i}"})
            session_id = new[0]["payload"]["sessionId"]
            again = await _frames_of_run(
                ws, f"again{i}", {"input": f"more {i}", "sessionId": session_id}
            )
            for frames in (new, again):
                order = _order(frames)
                assert order[0] == "res", order
                assert order[1] == "agent.accepted", order
                assert order[-1] == "agent.completed", order
                assert order.count("agent.delta") == 6, order
                run_id = next(f for f in frames if f["type"] == "res")["payload"]["runId"]
                assert all(f["payload"]["runId"] == run_id for f in frames[1:])
                # the live frames are what the wire models describe
                AgentRunResult.model_validate(frames[0]["payload"])
                for f in frames[1:]:
                    EVENT_PAYLOADS[f["event"]].model_validate(f["payload"])


async def test_live_payloads_are_what_the_models_describe(
    shared_server: ServerProcess, model, tmp_path
) -> None:
    """A gated tool call, approved: every event and answer of it validates against its model."""
    marker = tmp_path / "ran.txt"
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": f"echo hi > {marker}"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted = await c.request("agent.run", {"input": "run it"})
        METHOD_RESULTS["agent.run"].model_validate(accepted)
        seen: list[dict[str, Any]] = []
        while not any(e["event"] == "policy-gate.requested" for e in seen):
            seen.append(await c.next_event(30))
        gate = next(e for e in seen if e["event"] == "policy-gate.requested")["payload"]["gate"]
        answers = {
            "policy-gate.list": await c.request("policy-gate.list", {"status": "pending"}),
            "policy-gate.resolve": await c.request(
                "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"}
            ),
        }
        seen += [e async for e in c.run_events(accepted["runId"])]
        session_id = accepted["sessionId"]
        answers["sessions.get"] = await c.request(
            "sessions.get", {"sessionId": session_id, "includeMessages": True, "afterSeq": 0}
        )
        answers["sessions.list"] = await c.request("sessions.list", {"limit": 5})
        answers["audit.query"] = await c.request("audit.query", {"runId": accepted["runId"]})
        answers["audit.replay"] = await c.request("audit.replay", {"runId": accepted["runId"]})
        answers["metrics.summary"] = await c.request("metrics.summary", {})
        answers["policy.get"] = await c.request("policy.get", {})
    assert marker.exists()
    for method, payload in answers.items():
        METHOD_RESULTS[method].model_validate(payload)
    stored = answers["sessions.get"]["events"]
    names = {e["event"] for e in [*seen, *stored]}
    assert {"agent.tool_call", "agent.tool_result", "policy-gate.resolved"} <= names
    assert "session.updated" in names
    for frame in [*seen, *stored]:
        EVENT_PAYLOADS[frame["event"]].model_validate(frame["payload"])
