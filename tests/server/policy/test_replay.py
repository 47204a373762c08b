"""audit.replay: a run's whole timeline in order, redacted, with the policy it ran under."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openfoal_kernel.protocol import AuditEntry, ChatMessage, ErrorCode, OpenFoalError, ToolCall
from openfoal_kernel.redact import MASK
from openfoal_server_ext.services.audit import AuditService
from openfoal_server_ext.services.policy import PolicyService
from openfoal_server_ext.store import EventRow, MessageRow, RunRow, StoreWorker

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def at(ms: int) -> datetime:
    """A time ``ms`` milliseconds after the run started."""
    return T0 + timedelta(milliseconds=ms)


def _event(
    seq: int, ms: int, event: str, payload: dict[str, Any], run_id: str = "run_1"
) -> EventRow:
    return EventRow(
        session_id="ses_1",
        seq=seq,
        event=event,
        payload=payload,
        state_version=seq,
        at=at(ms),
        run_id=run_id,
        trace_id="trace_1",
    )


def _audit(n: int, ms: int, action: str, actor: str = "alice", **detail: Any) -> AuditEntry:
    return AuditEntry(
        id=f"aud_{n}",
        at=at(ms),
        actor=actor,
        action=action,
        resource="r",
        sessionId="ses_1",
        runId="run_1",
        traceId="trace_1",
        detail=detail,
    )


async def _seed(worker: StoreWorker, policy_version: int) -> None:
    worker.stage_run(
        RunRow(
            id="run_1",
            session_id="ses_1",
            owner="alice",
            trace_id="trace_1",
            status="completed",
            created_at=T0,
            ended_at=at(900),
            input="deploy with OPENAI_API_KEY=sk-abc123def456ghi789jkl0",
            model="scripted",
            policy_version=policy_version,
            usage={"inputTokens": 10, "outputTokens": 5},
        )
    )
    worker.stage_run(
        RunRow(
            id="run_0",
            session_id="ses_1",
            owner="alice",
            trace_id="trace_0",
            status="completed",
            created_at=T0 - timedelta(minutes=5),
        )
    )
    call = ToolCall(
        id="call_1",
        name="bash.exec",
        arguments={"command": "curl -H 'Authorization: Bearer abc123xyz' https://x"},
    )
    for idx, ms, message, run_id in [
        (0, -60_000, ChatMessage(role="user", content="an earlier turn"), "run_0"),
        (
            1,
            1,
            ChatMessage(
                role="user", content="deploy with OPENAI_API_KEY=sk-abc123def456ghi789jkl0"
            ),
            "run_1",
        ),
        (2, 100, ChatMessage(role="assistant", content="", tool_calls=[call]), "run_1"),
        (3, 700, ChatMessage(role="tool", content="done", tool_call_id="call_1"), "run_1"),
        (4, 850, ChatMessage(role="assistant", content="Deployed."), "run_1"),
    ]:
        worker.stage_message(
            MessageRow(session_id="ses_1", idx=idx, message=message, at=at(ms), run_id=run_id)
        )
    for row in [
        _event(1, 2, "agent.accepted", {"runtimeMode": "local", "model": "scripted"}),
        _event(2, 50, "agent.delta", {"delta": "Let me "}),
        _event(
            3,
            110,
            "agent.tool_call",
            {
                "toolCallId": "call_1",
                "toolName": "bash.exec",
                "args": {"command": "echo", "password": "hunter2"},
            },
        ),
        _event(4, 120, "policy-gate.requested", {"gate": {"gateId": "g1"}}),
        _event(5, 600, "policy-gate.resolved", {"gate": {"gateId": "g1", "status": "approved"}}),
        _event(6, 690, "agent.tool_result", {"toolCallId": "call_1", "status": "success"}),
        _event(7, 800, "agent.delta", {"delta": "Deployed."}),
        _event(8, 900, "agent.completed", {"status": "completed"}),
        _event(9, 5, "agent.accepted", {}, run_id="run_0"),
    ]:
        worker.stage_event(row)
    for entry in [
        _audit(1, 3, "run.start", input="x"),
        _audit(2, 115, "tool.call"),
        _audit(3, 121, "gate.requested"),
        _audit(4, 590, "gate.approved", actor="carol", decision="approve"),
        _audit(5, 695, "tool.result"),
    ]:
        worker.stage_audit(entry, "alice")
    await worker.commit()


async def test_replay_orders_the_whole_timeline(
    audit: AuditService, worker: StoreWorker, policies: PolicyService
) -> None:
    policy = await policies.update(
        actor="alice",
        trace_id="t",
        scope_key="default",
        patch={"highRisk": "deny"},
        expected_version=1,
    )
    await _seed(worker, policy_version=policy.version)
    replay = (await audit.replay("alice", "run_1")).wire()
    assert replay["runId"] == "run_1" and replay["policyVersion"] == 2
    steps = [
        (e["kind"], e.get("event") or e.get("action") or e.get("message", {}).get("role"))
        for e in replay["events"]
    ]
    assert steps == [
        ("run", None),
        ("message", "user"),
        ("event", "agent.accepted"),
        ("audit", "run.start"),
        ("message", "assistant"),
        ("event", "agent.tool_call"),
        ("audit", "tool.call"),
        ("event", "policy-gate.requested"),
        ("audit", "gate.requested"),
        ("audit", "gate.approved"),
        ("event", "policy-gate.resolved"),
        ("event", "agent.tool_result"),
        ("audit", "tool.result"),
        ("message", "tool"),
        ("message", "assistant"),
        ("event", "agent.completed"),
    ]
    times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in replay["events"]]
    assert times == sorted(times)
    head = replay["events"][0]
    assert head["policy"] == policy.wire() and head["policyVersion"] == 2
    assert head["status"] == "completed" and head["usage"] == {"inputTokens": 10, "outputTokens": 5}
    # secrets are masked wherever they appear
    assert head["input"] == f"deploy with OPENAI_API_KEY={MASK}"
    assert replay["events"][1]["message"]["content"] == f"deploy with OPENAI_API_KEY={MASK}"
    assert replay["events"][5]["payload"]["args"] == {"command": "echo", "password": MASK}
    call = replay["events"][4]["message"]["tool_calls"][0]
    assert call["arguments"]["command"] == f"curl -H 'Authorization: Bearer {MASK}' https://x"
    decision = replay["events"][9]
    assert decision["actor"] == "carol" and decision["detail"] == {"decision": "approve"}
    assert decision["traceId"] == "trace_1" and decision["runId"] == "run_1"


async def test_replay_of_unknown_or_foreign_run(audit: AuditService, worker: StoreWorker) -> None:
    await _seed(worker, policy_version=1)
    with pytest.raises(OpenFoalError) as err:
        await audit.replay("alice", "run_missing")
    assert err.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(OpenFoalError) as err:
        await audit.replay("bob", "run_1")
    assert err.value.code is ErrorCode.FORBIDDEN
