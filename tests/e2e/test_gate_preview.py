"""A gated file.write carries the diff of what it changes; gates filter by tool."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def _wait_event(c: GatewayClient, name: str, timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        e = await c.next_event(max(0.01, deadline - loop.time()))
        if e.get("event") == name:
            return e


async def test_gated_file_write_shows_its_diff(shared_server: ServerProcess, model) -> None:
    target = shared_server.root / "notes.txt"
    target.write_text("alpha\nbeta\n")
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.request(
            "policy.update",
            {"patch": {"tools": {"file.write": "gate"}}, "idempotencyKey": uuid.uuid4().hex},
        )
        model.enqueue(
            Reply(
                steps=[
                    ToolCallStep(
                        name="file.write",
                        arguments={"path": "notes.txt", "content": "alpha\ngamma\n"},
                    )
                ]
            ),
            Reply(steps=[TextStep(text="done")]),
        )
        accepted = await c.request("agent.run", {"input": "edit the notes"})
        gate = (await _wait_event(c, "policy-gate.requested"))["payload"]["gate"]
        preview = gate["preview"]
        assert preview["kind"] == "file.diff" and preview["path"] == "notes.txt"
        assert preview["exists"] is True and (preview["added"], preview["removed"]) == (1, 1)
        assert "-beta\n+gamma\n" in preview["diff"]
        # the list carries the same preview, and filters by tool
        writes = await c.request(
            "policy-gate.list", {"status": "pending", "toolName": "file.write"}
        )
        assert [g["gateId"] for g in writes["items"]] == [gate["gateId"]]
        assert writes["items"][0]["preview"]["diff"] == preview["diff"]
        shells = await c.request("policy-gate.list", {"toolName": "bash.exec"})
        assert gate["gateId"] not in [g["gateId"] for g in shells["items"]]
        await c.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "approve", "idempotencyKey": uuid.uuid4().hex},
        )
        events = [e async for e in c.run_events(accepted["runId"])]
        assert events[-1]["event"] == "agent.completed"
    assert target.read_text() == "alpha\ngamma\n"
