"""The tool ledger: audit entries and ``tool_runs`` rows for a run's tool calls."""

from __future__ import annotations

from typing import Any

from openfoal_kernel.protocol import utcnow
from openfoal_kernel.redact import redact

from ..store import StoreWorker, ToolRunRow
from .audit import AuditService
from .registry import ActiveRun
from .telemetry import TOOL_CALLS, TOOL_SECONDS

#: Longest tool output kept per call (characters, after redaction).
OUTPUT_LIMIT = 16384


class ToolLedger:
    """Records the start and the result of every tool call."""

    def __init__(self, worker: StoreWorker, audit: AuditService) -> None:
        self.worker = worker
        self.audit = audit

    def call(self, active: ActiveRun, payload: dict[str, Any]) -> None:
        """A tool call started: note when, audit its arguments."""
        active.tool_started[str(payload.get("toolCallId"))] = (utcnow(), payload)
        run = active.run
        self.audit.record(
            actor=run.owner,
            owner=run.owner,
            action="tool.call",
            resource=f"tool:{payload.get('toolName')}",
            trace_id=run.trace_id,
            session_id=run.session_id,
            run_id=run.id,
            detail={
                "toolCallId": payload.get("toolCallId"),
                "args": payload.get("args"),
                "runtimeMode": payload.get("runtimeMode"),
            },
        )

    def result(self, active: ActiveRun, payload: dict[str, Any]) -> None:
        """A tool call ended: store its row (redacted) and audit its outcome."""
        run = active.run
        call_id = str(payload.get("toolCallId"))
        started, call = active.tool_started.pop(call_id, (utcnow(), {}))
        tool = str(payload.get("toolName"))
        TOOL_CALLS.labels(tool, str(payload.get("status"))).inc()
        TOOL_SECONDS.labels(tool).observe(float(payload.get("durationMs") or 0) / 1000)
        self.worker.stage_tool_run(
            ToolRunRow(
                id=call_id,
                session_id=run.session_id,
                run_id=run.id,
                trace_id=run.trace_id,
                tool_name=tool,
                args=redact(call.get("args") or {}),
                status=str(payload.get("status")),
                duration_ms=float(payload.get("durationMs") or 0),
                runtime_mode=str(call.get("runtimeMode") or run.runtime_mode),
                started_at=started,
                ended_at=utcnow(),
                output=redact(str(payload.get("output", "")))[:OUTPUT_LIMIT],
                error=payload.get("error"),
            )
        )
        self.audit.record(
            actor=run.owner,
            owner=run.owner,
            action="tool.result",
            resource=f"tool:{payload.get('toolName')}",
            trace_id=run.trace_id,
            session_id=run.session_id,
            run_id=run.id,
            detail={
                "toolCallId": call_id,
                "status": payload.get("status"),
                "durationMs": payload.get("durationMs"),
                "error": payload.get("error"),
                "output": payload.get("output"),
            },
        )
