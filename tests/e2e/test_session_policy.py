"""Session-scoped rules: "allow this tool for this session" opens it there and nowhere else."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def _next_of(c: GatewayClient, names: set[str], timeout: float = 30) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        e = await c.next_event(max(0.01, deadline - loop.time()))
        if e.get("event") in names:
            return e


async def _run_bash(c: GatewayClient, model, marker: Path, **params) -> tuple[dict, dict]:
    """Start a turn that appends to ``marker``; return its accept and first gate-or-end event."""
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": f"echo x >> {marker}"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    accepted = await c.request("agent.run", {"input": "run it", **params})
    first = await _next_of(c, {"policy-gate.requested", "agent.completed", "agent.failed"})
    return accepted, first


async def test_a_session_rule_opens_the_tool_in_that_session_only(
    shared_server: ServerProcess, model, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, first = await _run_bash(c, model, marker)
        assert first["event"] == "policy-gate.requested"
        session_id = accepted["sessionId"]
        gate = first["payload"]["gate"]
        await c.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "approve", "idempotencyKey": uuid.uuid4().hex},
        )
        [e async for e in c.run_events(accepted["runId"])]

        scope = f"session:{session_id}"
        updated = await c.request(
            "policy.update",
            {
                "idempotencyKey": uuid.uuid4().hex,
                "scopeKey": scope,
                "patch": {"tools": {"bash.exec": "allow"}},
            },
        )
        assert updated["policy"]["scopeKey"] == scope
        assert updated["policy"]["tools"] == {"bash.exec": "allow"}
        default = await c.request("policy.get", {})
        assert "bash.exec" not in default["policy"]["tools"]

        # the same session: no gate, the call runs
        again, first = await _run_bash(c, model, marker, sessionId=session_id)
        assert again["sessionId"] == session_id
        assert first["event"] == "agent.completed", first
        assert marker.read_text().count("x") == 2

        # another session still waits for a person
        other, first = await _run_bash(c, model, marker)
        assert other["sessionId"] != session_id
        assert first["event"] == "policy-gate.requested"
        await c.request("agent.abort", {"runId": other["runId"]})

        audit = await c.request("audit.query", {"action": "policy.update"})
        assert any(item["resource"] == f"policy:{scope}" for item in audit["items"])
