"""The audit trail: full content with secrets redacted, ``traceId`` (and ``runId``) on every entry.

Each entry belongs to one owner's trail, the only user who reads it back: the owner of the
session for anything that happens in a session or run (tool calls, gate decisions, runs),
else the actor (a policy change). ``audit.replay`` rebuilds a run's timeline from the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any

from openfoal_kernel.protocol import AuditEntry, ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol.events import DELTA_EVENTS
from openfoal_kernel.protocol.methods import AuditQueryParams
from openfoal_kernel.protocol.results import AuditQueryResult, AuditReplayResult
from openfoal_kernel.redact import redact

from ..store import StoreWorker
from . import otel
from .roles import CrossUserRefusal
from .sessions import new_id

#: Longest string kept in an entry's ``detail`` (a whole file written by a tool is cut there).
DETAIL_STRING_LIMIT = 65_536


#: The window ``from``/``to`` may name: the stores keep times from 1900 to 9998 (UTC).
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC time (a time without a zone is taken as UTC).

    A time outside the range the stores keep is bad input (``INVALID_REQUEST``).
    """
    if value is None:
        return None
    try:
        utc = (
            value.replace(tzinfo=timezone.utc)
            if value.tzinfo is None
            else value.astimezone(timezone.utc)
        )
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"time {value.isoformat()} is out of range: from 1900-01-01 to 9998-12-31 (UTC)",
        )
    return utc


def iso(value: datetime) -> str:
    """The wire form of a time (as the protocol types write it: UTC, ``Z``)."""
    return (as_utc(value) or value).isoformat().replace("+00:00", "Z")


def encode_cursor(entry: AuditEntry) -> str:
    """Opaque keyset cursor: the (time, id) of the last entry of a page."""
    raw = json.dumps([iso(entry.at), entry.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) inside a cursor; INVALID_REQUEST for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, entry_id = json.loads(raw)
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        if when.tzinfo is None or not isinstance(entry_id, str):
            raise ValueError("cursor without a zone or an id")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, "cursor is not valid") from exc
    return when, entry_id


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > DETAIL_STRING_LIMIT:
        cut = len(value) - DETAIL_STRING_LIMIT
        return value[:DETAIL_STRING_LIMIT] + f"... [{cut} more characters not kept]"
    if isinstance(value, dict):
        return {k: _bounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded(v) for v in value]
    return value


class AuditService:
    """Writes the audit trail (redacted, staged in the store's batch) and reads it back."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker

    def record(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        trace_id: str,
        owner: str,
        session_id: str | None = None,
        run_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Stage an entry; it is committed within the store's window or with the next commit."""
        entry = AuditEntry(
            id=new_id("aud"),
            at=utcnow(),
            actor=actor,
            action=action,
            resource=resource,
            sessionId=session_id,
            runId=run_id,
            traceId=trace_id,
            detail=_bounded(redact(detail or {})),
        )
        self.worker.stage_audit(entry, owner)
        self.worker.schedule_commit()
        otel.audit(entry.id, action, resource, trace_id, run_id, detail)
        return entry

    async def record_now(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        trace_id: str,
        owner: str,
        session_id: str | None = None,
        run_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Stage an entry and commit it (with everything staged before it) before returning:
        for decisions that must be on record before they take effect."""
        entry = self.record(
            actor=actor,
            action=action,
            resource=resource,
            trace_id=trace_id,
            owner=owner,
            session_id=session_id,
            run_id=run_id,
            detail=detail,
        )
        await self.worker.commit()
        return entry

    async def query(self, owner: str | None, params: AuditQueryParams) -> AuditQueryResult:
        """``audit.query``: the owner's entries (``None``: everyone's, for a team admin)
        matching the filters, newest first, by pages."""
        from_, to = as_utc(params.from_), as_utc(params.to)
        if from_ is not None and to is not None and from_ > to:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, "from is after to")
        before = decode_cursor(params.cursor) if params.cursor else None
        await self.worker.commit()  # entries still in the write window are part of the answer
        rows = await self.worker.call(
            self.worker.store.query_audit,
            owner=owner,
            from_=from_,
            to=to,
            actor=params.actor,
            action=params.action,
            session_id=params.sessionId,
            run_id=params.runId,
            trace_id=params.traceId,
            limit=params.limit + 1,  # one more tells whether another page follows
            before=before,
        )
        page = rows[: params.limit]
        more = len(rows) > params.limit
        return AuditQueryResult(items=page, nextCursor=encode_cursor(page[-1]) if more else None)

    async def replay(self, owner: str, run_id: str) -> AuditReplayResult:
        """``audit.replay``: the run's whole timeline in order (see docs/policy.md, "Replay")."""
        await self.worker.commit()
        store = self.worker.store
        run = await self.worker.call(store.get_run, run_id)
        if run is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no run {run_id!r}")
        if run.owner != owner:
            raise CrossUserRefusal(
                "this run belongs to another user", owner=run.owner, resource=f"run:{run_id}"
            )
        events = await self.worker.call(store.run_events, run_id)
        messages = await self.worker.call(store.get_messages, run.session_id)
        audit = await self.worker.call(store.audit_for_run, run_id)
        policy = None
        if run.policy_version is not None:
            versions = await self.worker.call(store.policy_versions, "default")
            policy = next((p for p in versions if p.version == run.policy_version), None)
        head: dict[str, Any] = {
            "runId": run.id,
            "sessionId": run.session_id,
            "traceId": run.trace_id,
            "owner": run.owner,
            "status": run.status,
            "input": redact(run.input),
            "model": run.model,
            "runtimeMode": run.runtime_mode,
            "policyVersion": run.policy_version,
            "policy": policy.wire() if policy is not None else None,
            "endedAt": iso(run.ended_at) if run.ended_at is not None else None,
            "usage": run.usage,
            "error": redact(run.error),
        }
        # (time, rank, position): a stable order when two sources share a timestamp
        timeline: list[tuple[datetime, int, int, dict[str, Any]]] = [
            (run.created_at, 0, 0, {"at": iso(run.created_at), "kind": "run", **head})
        ]
        for m in messages:
            if m.run_id != run_id:
                continue
            data = redact(m.message.model_dump(mode="json", exclude_none=True))
            timeline.append(
                (
                    m.at,
                    1,
                    m.idx,
                    {"at": iso(m.at), "kind": "message", "idx": m.idx, "message": data},
                )
            )
        for e in events:
            if e.event in DELTA_EVENTS:
                continue  # the streamed text is in the assistant message
            timeline.append(
                (
                    e.at,
                    2,
                    e.seq,
                    {
                        "at": iso(e.at),
                        "kind": "event",
                        "event": e.event,
                        "seq": e.seq,
                        "payload": redact(e.payload),
                    },
                )
            )
        for n, a in enumerate(audit):
            timeline.append((a.at, 3, n, {**a.wire(), "at": iso(a.at), "kind": "audit"}))
        timeline.sort(key=lambda t: (as_utc(t[0]), t[1], t[2]))
        return AuditReplayResult(
            runId=run_id,
            policyVersion=run.policy_version,
            events=[entry for *_, entry in timeline],
        )
