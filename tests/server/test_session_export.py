"""``sessions.export`` on a real DuckDB store: ownership errors, and how calls that did not
run (a rejected gate) and secrets come out in the notebook."""

from __future__ import annotations

import nbformat
import pytest
from runworld import World

from openfoal_kernel.protocol import AuditEntry, ChatMessage, GateItem, OpenFoalError, utcnow
from openfoal_kernel.protocol.transcript import ToolCall
from openfoal_server_ext.services.export import SessionExporter, audit_hash, build_notebook

pytestmark = pytest.mark.asyncio


async def test_unknown_and_foreign_sessions_are_refused(world: World) -> None:
    exporter = SessionExporter(world.worker, world.sessions)
    session = await world.sessions.create("alice")
    with pytest.raises(OpenFoalError) as err:
        await exporter.export("alice", "ses_missing")
    assert err.value.code.value == "NOT_FOUND"
    with pytest.raises(OpenFoalError) as err:
        await exporter.export("mallory", session.id)
    assert err.value.code.value == "FORBIDDEN"
    res = await exporter.export("alice", session.id)
    nbformat.validate(nbformat.from_dict(res.notebook))
    assert res.notebook["cells"] == [] and res.auditHash == audit_hash([])


async def test_a_rejected_call_is_a_note_not_code_and_secrets_are_masked() -> None:
    secret = "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"
    call = ToolCall(id="call_1", name="bash.exec", arguments={"command": f"curl -H {secret}"})
    entries = [
        AuditEntry(
            id="aud_1",
            at=utcnow(),
            actor="alice",
            action="run.start",
            resource="run:run_1",
            sessionId="ses_1",
            runId="run_1",
            traceId="t" * 32,
            detail={"model": "scripted", "policyVersion": 3},
        ),
        AuditEntry(
            id="aud_2",
            at=utcnow(),
            actor="alice",
            action="tool.result",
            resource="tool:bash.exec",
            sessionId="ses_1",
            runId="run_1",
            traceId="t" * 32,
            detail={"toolCallId": "call_1", "status": "rejected"},
        ),
    ]
    gate = GateItem(
        gateId="gate_1",
        sessionId="ses_1",
        runId="run_1",
        toolCallId="call_1",
        toolName="bash.exec",
        args=call.arguments,
        argsFingerprint="f",
        risk="high risk: runs a command",
        status="rejected",
        reason="not now",
        requestedBy="alice",
        resolvedBy="bob",
    )
    nb = build_notebook(
        session_id="ses_1",
        session_key="k",
        title="",
        messages=[
            ("run_1", ChatMessage(role="user", content=f"my key is {secret}")),
            ("run_1", ChatMessage(role="assistant", tool_calls=[call])),
            ("run_1", ChatMessage(role="tool", tool_call_id="call_1", content="rejected")),
        ],
        entries=entries,
        gates=[gate],
    )
    nbformat.validate(nbformat.from_dict(nb))
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown"] * 3  # nothing to re-run
    note, tool = nb["cells"][1], nb["cells"][2]
    assert "gate_1" in note["source"] and "rejected by bob: not now" in note["source"]
    assert tool["metadata"]["openfoal"]["auditEntryId"] == "aud_2"
    assert tool["metadata"]["openfoal"]["policyVersion"] == 3
    assert secret not in str(nb)
    assert nb["metadata"]["openfoal"]["model"] == "scripted"
