"""The audit trail: full content with secrets redacted, ``traceId``/``runId`` on every entry.

Entries belong to an owner's trail (the owner of the session or, for server-wide actions,
the actor); only that owner reads them back.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from openfoal_kernel.protocol import AuditEntry, ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol.methods import AuditQueryParams
from openfoal_kernel.redact import redact

from ..store import StoreWorker


def _cursor(entry: AuditEntry) -> str:
    return base64.urlsafe_b64encode(json.dumps([entry.at.isoformat(), entry.id]).encode()).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        at, entry_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(entry_id)
    except Exception as exc:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, "cursor is not valid") from exc


class AuditService:
    """Writes and reads the audit trail."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker

    def record(self, *, actor: str, owner: str, action: str, resource: str, trace_id: str,
               session_id: str | None = None, run_id: str | None = None,
               detail: dict[str, Any] | None = None) -> AuditEntry:
        """Stage an entry (committed within the window, or with the next commit point)."""
        entry = AuditEntry(id=f"aud_{uuid.uuid4().hex}", at=utcnow(), actor=actor, action=action,
                           resource=resource, sessionId=session_id, runId=run_id,
                           traceId=trace_id, detail=redact(detail or {}))
        self.worker.stage_audit(entry, owner)
        self.worker.schedule_commit()
        return entry

    async def record_now(self, **kwargs: Any) -> AuditEntry:
        """Stage an entry and commit it before returning (durable before acting on it)."""
        entry = self.record(**kwargs)
        await self.worker.commit()
        return entry

    async def query(self, owner: str, p: AuditQueryParams) -> dict[str, Any]:
        """``audit.query``: filtered, newest first, paged by cursor."""
        await self.worker.commit()
        filters = {"from_": p.from_, "to": p.to, "actor": p.actor, "action": p.action,
                   "session_id": p.sessionId, "run_id": p.runId, "trace_id": p.traceId}
        before = _decode(p.cursor) if p.cursor else None
        items = await self.worker.call(self.worker.store.query_audit, owner=owner, filters=filters,
                                       limit=p.limit + 1, before=before)
        next_cursor = _cursor(items[p.limit - 1]) if len(items) > p.limit else None
        return {"items": [e.wire() for e in items[: p.limit]], "nextCursor": next_cursor}

    async def replay(self, owner: str, run_id: str) -> dict[str, Any]:
        """``audit.replay``: the run's whole timeline in order."""
        await self.worker.commit()
        store = self.worker.store
        run = await self.worker.call(store.get_run, run_id)
        if run is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no run {run_id!r}")
        if run.owner != owner:
            raise OpenFoalError(ErrorCode.FORBIDDEN, "this run belongs to another user")
        events = await self.worker.call(store.run_events, run_id)
        messages = [m for m in await self.worker.call(store.get_messages, run.session_id)
                    if m.run_id == run_id]
        audit = await self.worker.call(store.audit_for_run, run_id)
        timeline: list[tuple[datetime, int, dict[str, Any]]] = []
        timeline.append((run.created_at, 0, {
            "kind": "run", "at": run.created_at.isoformat(), "runId": run.id, "input": redact(run.input),
            "model": run.model, "runtimeMode": run.runtime_mode, "policyVersion": run.policy_version,
            "status": run.status, "traceId": run.trace_id}))
        for m in messages:
            timeline.append((m.at, 1, {"kind": "message", "at": m.at.isoformat(), "idx": m.idx,
                                       **redact(m.message.model_dump(mode="json", exclude_none=True))}))
        for e in events:
            timeline.append((e.at, 2, {"kind": "event", "at": e.at.isoformat(), "event": e.event,
                                       "seq": e.seq, "payload": redact(e.payload)}))
        for a in audit:
            timeline.append((a.at, 3, {"kind": "audit", **a.wire()}))
        timeline.sort(key=lambda t: (t[0], t[1]))
        return {"runId": run_id, "policyVersion": run.policy_version,
                "events": [entry for _, _, entry in timeline]}
