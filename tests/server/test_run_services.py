"""Run and gate services on a real DuckDB store, with a fake agent kernel at the edge."""

from __future__ import annotations

import asyncio

import pytest
from runworld import WAIT_S, World, ctx

from openfoal_kernel.protocol import OpenFoalError, RunSpec
from openfoal_kernel.protocol.methods import AgentRunParams
from openfoal_kernel.protocol.results import AgentAbortResult, AgentRunResult

pytestmark = pytest.mark.asyncio


async def start(world: World, text: str = "hello") -> tuple[AgentRunResult, RunSpec]:
    session = await world.sessions.create("alice")
    accepted = await world.services.runs.start_run(
        ctx(), AgentRunParams(input=text, idempotencyKey="k1", sessionId=session.id)
    )
    await asyncio.wait_for(world.kernels.bridge.started.wait(), WAIT_S)
    return accepted, world.kernels.bridge.specs[-1]


async def test_a_run_goes_to_the_kernel_and_ends_once_with_its_transcript_stored(
    world: World,
) -> None:
    accepted, spec = await start(world)
    runs, ingest = world.services.runs, world.services.ingest
    assert accepted.status == "accepted" and spec.runId == accepted.runId
    assert runs.busy(spec.sessionId) and world.services.registry.get(spec.runId) is not None
    assert [m.content for m in spec.transcript] == []  # the turn's input goes as the code
    bridge = world.kernels.bridge
    await ingest.on_kernel_event(
        bridge,  # type: ignore[arg-type]
        world.event(spec, "agent.completed", {"status": "completed", "usage": {"inputTokens": 3}}),
    )
    await ingest.on_kernel_event(  # a second terminal event is ignored
        bridge,  # type: ignore[arg-type]
        world.event(spec, "agent.failed", {"error": {"code": "INTERNAL_ERROR"}}),
    )
    assert not runs.busy(spec.sessionId)
    assert len(world.events("agent.completed")) == 1 and world.events("agent.failed") == []
    await world.worker.commit()
    stored = world.worker.store.get_run(spec.runId)
    assert stored is not None and stored.status == "completed"
    assert stored.usage == {"inputTokens": 3}
    messages = world.worker.store.get_messages(spec.sessionId)
    assert [(m.message.role, m.message.content) for m in messages] == [("user", "hello")]
    assert world.sessions.peek(spec.sessionId).status == "idle"  # type: ignore[union-attr]


async def test_a_second_turn_in_a_busy_session_is_refused(world: World) -> None:
    _, spec = await start(world)
    with pytest.raises(OpenFoalError) as err:
        await world.services.runs.start_run(
            ctx(), AgentRunParams(input="again", idempotencyKey="k2", sessionId=spec.sessionId)
        )
    assert err.value.code.value == "SESSION_BUSY"


async def test_abort_forces_the_end_when_the_kernel_does_not_answer(world: World) -> None:
    _, spec = await start(world)
    with pytest.raises(OpenFoalError) as err:
        await world.services.runs.abort(ctx("mallory"), spec.runId)
    assert err.value.code.value == "FORBIDDEN"
    result = await world.services.runs.abort(ctx(), spec.runId)
    assert result == AgentAbortResult(runId=spec.runId, status="aborted")
    assert world.kernels.interrupted == 1
    failed = await world.wait_for("agent.failed")
    assert failed["payload"]["aborted"] is True
    assert failed["payload"]["error"]["code"] == "RUNTIME_LOST"
    again = await world.services.runs.abort(ctx(), spec.runId)  # now answered from the store
    assert again == AgentAbortResult(runId=spec.runId, status="aborted")


async def test_a_lost_kernel_fails_its_run(world: World) -> None:
    _, spec = await start(world)
    await world.services.ingest.on_kernel_lost(world.kernels.bridge, "the kernel died")  # type: ignore[arg-type]
    failed = await world.wait_for("agent.failed")
    assert failed["payload"]["error"] == {
        "code": "RUNTIME_LOST",
        "message": "the kernel died",
        "retryable": True,
        "traceId": spec.traceId,
    }
    assert not world.services.runs.busy(spec.sessionId)


async def test_tool_calls_are_stored_redacted(world: World) -> None:
    _, spec = await start(world)
    ingest, bridge = world.services.ingest, world.kernels.bridge
    call = {
        "toolCallId": "c1",
        "toolName": "bash.exec",
        "args": {"cmd": "ls", "password": "hunter2-secret"},
    }
    await ingest.on_kernel_event(bridge, world.event(spec, "agent.tool_call", call))  # type: ignore[arg-type]
    result = {
        "toolCallId": "c1",
        "toolName": "bash.exec",
        "status": "success",
        "durationMs": 5,
        "output": "ok",
    }
    await ingest.on_kernel_event(bridge, world.event(spec, "agent.tool_result", result))  # type: ignore[arg-type]
    await world.worker.commit()
    rows = world.worker.store.tool_runs_of(spec.runId)
    assert [(r.id, r.status, r.output) for r in rows] == [("c1", "success", "ok")]
    assert rows[0].args == {"cmd": "ls", "password": "[REDACTED]"}


async def test_set_mode_is_queued_while_a_run_goes_and_applied_when_it_ends(world: World) -> None:
    _, spec = await start(world)
    queued = await world.services.runs.set_mode(ctx(), spec.sessionId, "cloud")
    assert queued.status == "queued-change"
    await world.services.ingest.on_kernel_event(
        world.kernels.bridge,  # type: ignore[arg-type]
        world.event(spec, "agent.completed", {"status": "completed"}),
    )
    changed = await world.wait_for("runtime.mode_changed")
    assert changed["payload"]["runtimeMode"] == "cloud"
    assert world.sessions.peek(spec.sessionId).runtimeMode == "cloud"  # type: ignore[union-attr]


async def test_gate_approval_reaches_the_waiting_kernel_and_is_audited_first(world: World) -> None:
    _, spec = await start(world)
    gate = {
        "gateId": "g1",
        "toolCallId": "c1",
        "toolName": "bash.exec",
        "args": {"cmd": "rm -rf build"},
        "argsFingerprint": "f",
        "risk": "high",
    }
    await world.services.ingest.on_kernel_event(
        world.kernels.bridge,  # type: ignore[arg-type]
        world.event(spec, "policy-gate.requested", {"gate": gate}),
    )
    assert world.sessions.peek(spec.sessionId).status == "waiting_gate"  # type: ignore[union-attr]
    gates = world.services.gates
    with pytest.raises(OpenFoalError) as err:
        await gates.resolve(ctx("mallory"), "g1", "approve", None)
    assert err.value.code.value == "FORBIDDEN"
    answer = await gates.resolve(ctx(), "g1", "approve", "fine")
    assert answer.gate.status == "approved"
    assert world.kernels.bridge.replies == [("g1", "approve", "alice")]
    actions = [e.action for e in world.worker.store.query_audit(owner="alice", limit=50)]
    assert "gate.approved" in actions
    with pytest.raises(OpenFoalError) as err:
        await gates.resolve(ctx(), "g1", "reject", None)
    assert err.value.code.value == "VERSION_CONFLICT"


async def test_an_aborted_run_expires_its_pending_gates(world: World) -> None:
    _, spec = await start(world)
    gate = {
        "gateId": "g2",
        "toolCallId": "c2",
        "toolName": "bash.exec",
        "args": {},
        "argsFingerprint": "f",
        "risk": "high",
    }
    await world.services.ingest.on_kernel_event(
        world.kernels.bridge,  # type: ignore[arg-type]
        world.event(spec, "policy-gate.requested", {"gate": gate}),
    )
    await world.services.runs.abort(ctx(), spec.runId)
    resolved = await world.wait_for("policy-gate.resolved")
    assert resolved["payload"]["gate"]["status"] == "expired"
    order = [f["event"] for f in world.frames]
    assert order.index("policy-gate.resolved") < order.index("agent.failed")


async def test_a_gate_no_kernel_waits_for_continues_the_run_once(world: World) -> None:
    _, spec = await start(world)
    gate = {
        "gateId": "g3",
        "toolCallId": "c3",
        "toolName": "bash.exec",
        "args": {},
        "argsFingerprint": "f",
        "risk": "high",
    }
    ingest, bridge = world.services.ingest, world.kernels.bridge
    await ingest.on_kernel_event(bridge, world.event(spec, "policy-gate.requested", {"gate": gate}))  # type: ignore[arg-type]
    await ingest.on_kernel_lost(bridge, "the kernel died")  # type: ignore[arg-type]
    bridge.started.clear()
    answer = await world.services.gates.resolve(ctx(), "g3", "approve", None)
    assert answer.continuedRunId != spec.runId
    await asyncio.wait_for(bridge.started.wait(), WAIT_S)
    resumed = bridge.specs[-1]
    assert resumed.resume is True and resumed.runId == answer.continuedRunId
    assert resumed.gateDecision == {"toolCallId": "c3", "outcome": "approved"}
    assert bridge.replies == []
