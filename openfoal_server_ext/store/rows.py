"""Row-to-wire mappings that the DuckDB and Postgres stores share (same columns, same order)."""

from __future__ import annotations

import json
from typing import Any

from openfoal_kernel.protocol import AuditEntry

from .base import EventRow, RunRow


def audit_from_row(r: tuple[Any, ...]) -> AuditEntry:
    """An audit entry from ``id, at, actor, action, resource, session, run, trace, detail``."""
    return AuditEntry(
        id=r[0],
        at=r[1],
        actor=r[2],
        action=r[3],
        resource=r[4],
        sessionId=r[5],
        runId=r[6],
        traceId=r[7],
        detail=json.loads(r[8]),
    )


def metrics_from_counts(
    runs: tuple[Any, ...], tools: tuple[Any, ...], gates: tuple[Any, ...]
) -> dict[str, Any]:
    """The ``metrics.summary`` figures from the three aggregate rows both stores compute."""
    return {
        "runsTotal": runs[0],
        "runsCompleted": runs[1],
        "runsFailed": runs[2],
        "runsInterrupted": runs[3],
        "runsAborted": runs[4],
        "runsActive": runs[5],
        "p50LatencyMs": _ms(runs[6]),
        "p95LatencyMs": _ms(runs[7]),
        "toolCallsTotal": tools[0],
        "toolFailures": tools[1],
        "toolTimeouts": tools[2],
        "toolDenied": tools[3],
        "toolRejected": tools[4],
        "toolP95DurationMs": _ms(tools[5]),
        "gatesTotal": gates[0],
        "gatePending": gates[1],
        "gateApproved": gates[2],
        "gateRejected": gates[3],
        "gateExpired": gates[4],
        "gateMedianWaitMs": _ms(gates[5]),
    }


def _ms(value: float | None) -> float | None:
    return round(float(value), 1) if value is not None else None


def series_from_rows(
    runs: list[tuple[Any, ...]],
    tools: list[tuple[Any, ...]],
    gates: list[tuple[Any, ...]],
    by_tool: list[tuple[Any, ...]],
) -> dict[str, Any]:
    """Bucketed figures keyed by bucket index, from ``(bucket, ...)`` rows of both stores."""
    buckets: dict[int, dict[str, Any]] = {}

    def at(index: Any) -> dict[str, Any]:
        return buckets.setdefault(int(index), {})

    for b, total, failed, p95 in runs:
        at(b).update(runsTotal=total, runsFailed=failed, p95LatencyMs=_ms(p95))
    for b, total, failed in tools:
        at(b).update(toolCallsTotal=total, toolFailures=failed)
    for b, total, pending in gates:
        at(b).update(gatesTotal=total, gatePending=pending)
    return {
        "buckets": buckets,
        "byTool": [{"toolName": n, "calls": c, "failures": f} for n, c, f in by_tool],
    }


def event_from_row(r: tuple[Any, ...]) -> EventRow:
    """An event from ``session, seq, event, run, trace, state_version, ts, payload``."""
    return EventRow(
        session_id=r[0],
        seq=r[1],
        event=r[2],
        run_id=r[3],
        trace_id=r[4],
        state_version=r[5],
        at=r[6],
        payload=json.loads(r[7]),
    )


def run_from_row(r: tuple[Any, ...]) -> RunRow:
    """A run from ``id, session, owner, trace, status, created, ended, data``."""
    data = json.loads(r[7])
    return RunRow(
        id=r[0],
        session_id=r[1],
        owner=r[2],
        trace_id=r[3],
        status=r[4],
        created_at=r[5],
        ended_at=r[6],
        input=data.get("input", ""),
        model=data.get("model"),
        runtime_mode=data.get("runtimeMode", "local"),
        error=data.get("error"),
        usage=data.get("usage") or {},
        policy_version=data.get("policyVersion"),
    )
