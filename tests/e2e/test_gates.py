"""The policy gate end to end: risky calls wait for a human; every decision is audited."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


def _bash(command: str) -> Reply:
    return Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": command})])


async def _wait_event(c: GatewayClient, name: str, timeout: float = 20) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        e = await c.next_event(max(0.01, deadline - loop.time()))
        if e.get("event") == name:
            return e


async def _gated_run(
    c: GatewayClient, model, command: str, marker: Path, **params
) -> tuple[dict, dict]:
    model.enqueue(_bash(f"{command} >> {marker}"), Reply(steps=[TextStep(text="done")]))
    accepted = await c.request("agent.run", {"input": "please run it", **params})
    requested = await _wait_event(c, "policy-gate.requested")
    return accepted, requested["payload"]["gate"]


async def test_approve_runs_the_call_once_and_the_run_goes_on(
    shared_server: ServerProcess, model, tmp_path
) -> None:
    marker = tmp_path / "approved.txt"
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, gate = await _gated_run(c, model, "echo ran", marker)
        assert gate["toolName"] == "bash.exec" and gate["status"] == "pending"
        assert gate["risk"].startswith("high risk") and gate["args"]["command"].startswith(
            "echo ran"
        )
        assert gate["runId"] == accepted["runId"] and gate["argsFingerprint"]
        got = await c.request("sessions.get", {"sessionId": accepted["sessionId"]})
        assert got["session"]["status"] == "waiting_gate"
        pending = await c.request("policy-gate.list", {"status": "pending"})
        assert gate["gateId"] in [g["gateId"] for g in pending["items"]]
        one = await c.request("policy-gate.list", {"gateId": gate["gateId"]})
        assert [g["gateId"] for g in one["items"]] == [gate["gateId"]]
        assert (await c.request("policy-gate.list", {"gateId": "gate_nosuch"}))["items"] == []
        assert not marker.exists()  # nothing ran before the decision
        key = uuid.uuid4().hex
        res = await c.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "approve", "idempotencyKey": key},
        )
        assert res["gate"]["status"] == "approved"
        events = [e async for e in c.run_events(accepted["runId"])]
        result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
        assert result["status"] == "success"
        assert events[-1]["event"] == "agent.completed"
        # a replayed approval (same key) returns the first answer and runs nothing again
        again = await c.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "approve", "idempotencyKey": key},
        )
        assert again == res
        audit = await c.request("audit.query", {"runId": accepted["runId"]})
        actions = [e["action"] for e in audit["items"]]
        assert "gate.requested" in actions and "gate.approved" in actions
        replay = await c.request("audit.replay", {"runId": accepted["runId"]})
        kinds = [(e.get("kind"), e.get("action") or e.get("event")) for e in replay["events"]]
        approved_at = next(i for i, k in enumerate(kinds) if k[1] == "gate.approved")
        result_at = next(i for i, k in enumerate(kinds) if k[1] == "agent.tool_result")
        assert approved_at < result_at  # audited before the call executed
    await asyncio.sleep(0.2)
    assert marker.read_text().splitlines() == ["ran"]


async def test_reject_returns_gate_rejected_to_the_model(
    shared_server: ServerProcess, model, tmp_path
) -> None:
    marker = tmp_path / "rejected.txt"
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, gate = await _gated_run(c, model, "echo nope", marker)
        await c.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "reject", "reason": "not today"},
        )
        events = [e async for e in c.run_events(accepted["runId"])]
    result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
    assert result["status"] == "rejected" and result["error"]["code"] == "GATE_REJECTED"
    assert events[-1]["event"] == "agent.completed"
    assert "GATE_REJECTED" in model.requests[-1].body["messages"][-1]["content"]
    assert not marker.exists()


async def test_two_clients_race_to_resolve(shared_server: ServerProcess, model, tmp_path) -> None:
    marker = tmp_path / "race.txt"
    async with (
        GatewayClient(shared_server.ws_url, token=shared_server.token) as c1,
        GatewayClient(shared_server.ws_url, token=shared_server.token) as c2,
    ):
        accepted, gate = await _gated_run(c1, model, "echo once", marker)
        results = await asyncio.gather(
            c1.request_frame(
                "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"}
            ),
            c2.request_frame(
                "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "reject"}
            ),
        )
        oks = [r for r in results if r["ok"]]
        losers = [r for r in results if not r["ok"]]
        assert len(oks) == 1 and len(losers) == 1
        assert losers[0]["error"]["code"] == "VERSION_CONFLICT"
        # the loser's answer carries the gate as the winner left it
        winner = oks[0]["payload"]["gate"]
        assert losers[0]["error"]["details"]["gate"]["status"] == winner["status"]
        assert losers[0]["error"]["details"]["gate"]["decision"] == winner["decision"]
        [e async for e in c1.run_events(accepted["runId"])]
    await asyncio.sleep(0.2)
    ran = marker.exists()
    assert ran == (oks[0]["payload"]["gate"]["decision"] == "approve")
    if ran:
        assert marker.read_text().splitlines() == ["once"]


async def test_gate_expires(shared_server: ServerProcess, model, tmp_path) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        policy = (await c.request("policy.get", {}))["policy"]
        await c.request(
            "policy.update", {"patch": {"gateTimeoutSec": 1}, "expectedVersion": policy["version"]}
        )
        try:
            accepted, gate = await _gated_run(c, model, "echo late", tmp_path / "late.txt")
            events = [e async for e in c.run_events(accepted["runId"])]
            resolved = next(e for e in events if e["event"] == "policy-gate.resolved")
            assert resolved["payload"]["gate"]["status"] == "expired"
            result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
            assert result["error"]["code"] == "GATE_EXPIRED"
            late = await c.request_frame(
                "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"}
            )
            assert late["error"]["code"] == "VERSION_CONFLICT"
        finally:
            now = (await c.request("policy.get", {}))["policy"]
            await c.request(
                "policy.update",
                {"patch": {"gateTimeoutSec": 900}, "expectedVersion": now["version"]},
            )
    assert not (tmp_path / "late.txt").exists()


async def test_denied_calls_never_reach_the_executor(
    shared_server: ServerProcess, model, tmp_path
) -> None:
    marker = tmp_path / "denied.txt"
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        v = (await c.request("policy.get", {}))["policy"]["version"]
        await c.request(
            "policy.update", {"patch": {"tools": {"bash.exec": "deny"}}, "expectedVersion": v}
        )
        try:
            model.enqueue(_bash(f"echo x >> {marker}"), Reply(steps=[TextStep(text="ok")]))
            _, events = await c.run("try")
            result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
            assert result["status"] == "denied" and result["error"]["code"] == "POLICY_DENIED"
            assert not [e for e in events if e["event"] == "policy-gate.requested"]
        finally:
            v = (await c.request("policy.get", {}))["policy"]["version"]
            await c.request("policy.update", {"patch": {"tools": {}}, "expectedVersion": v})
    assert not marker.exists()


async def test_policy_versions_and_conflicts(shared_server: ServerProcess) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        p = (await c.request("policy.get", {}))["policy"]
        assert p["toolDefault"] in ("allow", "deny", "gate") and p["highRisk"] == "gate"
        updated = (
            await c.request(
                "policy.update",
                {
                    "patch": {"network": {"allow": ["api.example.com"]}},
                    "expectedVersion": p["version"],
                },
            )
        )["policy"]
        assert updated["version"] == p["version"] + 1 and updated["network"]["allow"] == [
            "api.example.com"
        ]
        broadcast = await _wait_event(c, "policy.updated")
        assert broadcast["payload"]["policy"]["version"] == updated["version"]
        stale = await c.request_frame(
            "policy.update", {"patch": {"gateTimeoutSec": 5}, "expectedVersion": p["version"]}
        )
        assert stale["error"]["code"] == "VERSION_CONFLICT"
        bad = await c.request_frame("policy.update", {"patch": {"highRisk": "sometimes"}})
        assert bad["error"]["code"] == "INVALID_REQUEST"
        audit = await c.request("audit.query", {"action": "policy.update"})
        assert audit["items"] and audit["items"][0]["detail"]
        await c.request(
            "policy.update",
            {"patch": {"network": {"allow": []}}, "expectedVersion": updated["version"]},
        )


def _kernel_pids(kernel_id: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", kernel_id], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def test_gate_survives_a_kernel_crash_and_continues_once(
    server_factory, model, tmp_path
) -> None:
    server = server_factory()
    marker = tmp_path / "crash.txt"
    headers = {"Authorization": f"token {server.token}"}
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted, gate = await _gated_run(c, model, "echo continued", marker)
        kernels = httpx.get(server.url + "api/kernels", headers=headers).json()
        for k in kernels:
            if k["name"] == "openfoal":
                for pid in _kernel_pids(k["id"]):
                    os.kill(pid, signal.SIGKILL)
        events = [e async for e in c.run_events(accepted["runId"], timeout=30)]
        assert events[-1]["event"] == "agent.failed"
        assert events[-1]["payload"]["error"]["code"] == "RUNTIME_LOST"
        pending = await c.request("policy-gate.list", {"status": "pending"})
        assert gate["gateId"] in [g["gateId"] for g in pending["items"]]
        model.enqueue(Reply(steps=[TextStep(text="continued after approval")]))
        res = await c.request(
            "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"}
        )
        cont = res["continuedRunId"]
        events = [e async for e in c.run_events(cont, timeout=30)]
        results = [e for e in events if e["event"] == "agent.tool_result"]
        stored = await c.request(
            "sessions.get", {"sessionId": accepted["sessionId"], "includeMessages": True}
        )
        assert results, (
            [
                (m["role"], m.get("content", "")[:40], m.get("tool_calls"))
                for m in stored["messages"]
            ],
            [e["event"] for e in events],
        )
        result = results[0]["payload"]
        assert result["status"] == "success" and result["toolCallId"] == gate["toolCallId"]
        assert events[-1]["event"] == "agent.completed"
    await asyncio.sleep(0.2)
    assert marker.read_text().splitlines() == ["continued"]


async def test_gate_survives_a_server_restart(server_factory, model, tmp_path) -> None:
    server = server_factory()
    marker = tmp_path / "restart.txt"
    async with GatewayClient(server.ws_url, token=server.token) as c:
        _, gate = await _gated_run(c, model, "echo after-restart", marker)
    server.restart()
    async with GatewayClient(server.ws_url, token=server.token) as c:
        pending = await c.request("policy-gate.list", {"status": "pending"})
        assert gate["gateId"] in [g["gateId"] for g in pending["items"]]
        model.enqueue(Reply(steps=[TextStep(text="back")]))
        res = await c.request(
            "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"}
        )
        events = [e async for e in c.run_events(res["continuedRunId"], timeout=30)]
        assert events[-1]["event"] == "agent.completed"
        with pytest.raises(GatewayError) as err:
            await c.request(
                "policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"}
            )
        assert err.value.code.value == "VERSION_CONFLICT"
    await asyncio.sleep(0.2)
    assert marker.read_text().splitlines() == ["after-restart"]
