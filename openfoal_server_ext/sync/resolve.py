"""Conflict resolutions, both sides: ``keep_local``, ``keep_cloud`` and ``fork``.

- ``keep_local``: the cloud's copy of the session's history (events, transcript) is replaced
  by the local one; the local side keeps its own. The session's runs, tool runs, gates and
  audit entries travel with it: while the session was in conflict the cloud held back every
  pushed row of it, and those the cloud lacks are added (append-only, as any push).
- ``keep_cloud``: the local copy is replaced by the cloud's; the local diverged history is
  dropped (its runs, tool runs and audit entries stay).
- ``fork``: the local diverged history becomes a new session (new id, pushed as any other),
  and the original session takes the cloud's history on the local side.

Each side writes an audit entry ``sync.resolve``; the conflict record is cleared.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import psycopg

from openfoal_kernel.protocol import ChatMessage, ErrorCode, OpenFoalError, Session, utcnow
from openfoal_kernel.protocol.sync import SyncHistory, SyncResolveRequest

from ..store import AuditRow, EventRow, MessageRow, Store, WriteBatch
from ..store.outbox_codec import encode_batch, encode_columns
from ..store.postgres import PostgresStore
from .intake import ORDER, _move, _stage, check_owned, check_version, decode
from .wire import wire_chunk, wire_chunks

#: Most events a session's history carries in one resolution.
HISTORY_LIMIT = 10_000_000
#: The kinds besides events and transcript that a ``keep_local`` history carries.
RECORDS = ("runs", "gates", "tool_runs", "audit")


def local_history(
    store: Store, session_id: str
) -> tuple[Session, list[EventRow], list[MessageRow]]:
    """A session's history in a store (call on the store thread)."""
    session = store.get_session(session_id)
    if session is None:
        raise OpenFoalError(ErrorCode.NOT_FOUND, f"no session {session_id!r}")
    events = store.get_events(session_id, after_seq=0, limit=HISTORY_LIMIT)
    return session, events, store.get_messages(session_id)


def session_records(store: Store, session: Session, events: list[EventRow]) -> WriteBatch:
    """A session's runs, tool runs, gates and audit entries (call on the store thread)."""
    records = WriteBatch()
    for run_id in dict.fromkeys(e.run_id for e in events if e.run_id):
        run = store.get_run(run_id)
        if run is not None and run.session_id == session.id:
            records.runs[run_id] = run
            records.tool_runs.extend(store.tool_runs_of(run_id))
    for gate in store.list_gates(owner=None, session_id=session.id, limit=HISTORY_LIMIT):
        found = store.get_gate(gate.gateId)
        if found is not None:
            records.gates[gate.gateId] = found
    entries = store.query_audit(owner=session.owner, session_id=session.id, limit=HISTORY_LIMIT)
    records.audit = [AuditRow(entry=e, owner=session.owner) for e in reversed(entries)]
    return records


def history_wire(
    session: Session,
    events: list[EventRow],
    messages: list[MessageRow],
    records: WriteBatch | None = None,
) -> SyncHistory:
    """A history as the chunks that travel (with ``records``: the session's runs, tool runs,
    gates and audit entries too)."""
    batch = records or WriteBatch()
    batch = WriteBatch(
        sessions={session.id: session},
        events=events,
        messages=messages,
        runs=batch.runs,
        gates=batch.gates,
        tool_runs=batch.tool_runs,
        audit=batch.audit,
    )
    return SyncHistory(session=session, chunks=wire_chunks(encode_batch(batch)))


def history_rows(history: SyncHistory) -> tuple[list[EventRow], list[MessageRow]]:
    """The events and transcript of a history that came over the wire."""
    decoded = decode(history.chunks)
    events: list[EventRow] = []
    for cols in decoded.get("events", []):
        for sid, seq, event, run_id, trace_id, sv, ts, payload in zip(
            *(
                cols[c]
                for c in (
                    "session_id",
                    "seq",
                    "event",
                    "run_id",
                    "trace_id",
                    "state_version",
                    "ts",
                    "payload",
                )
            ),
            strict=True,
        ):
            events.append(
                EventRow(
                    session_id=sid,
                    seq=int(seq),
                    event=event,
                    run_id=run_id,
                    trace_id=trace_id,
                    state_version=int(sv),
                    at=_time(ts),
                    payload=json.loads(payload),
                )
            )
    messages: list[MessageRow] = []
    for cols in decoded.get("messages", []):
        for sid, idx, run_id, ts, data in zip(
            *(cols[c] for c in ("session_id", "idx", "run_id", "ts", "data")), strict=True
        ):
            messages.append(
                MessageRow(
                    session_id=sid,
                    idx=int(idx),
                    run_id=run_id,
                    at=_time(ts),
                    message=ChatMessage.model_validate_json(data),
                )
            )
    return events, messages


def _time(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def forked_copy(
    session: Session, events: list[EventRow], messages: list[MessageRow]
) -> tuple[Session, list[EventRow], list[MessageRow]]:
    """The local diverged history under a new session id (and a thread key of its own)."""
    new_id = f"ses_{uuid.uuid4().hex[:24]}"
    fork = session.model_copy(
        update={
            "id": new_id,
            "sessionKey": f"{session.sessionKey}:thread:fork-{new_id[4:12]}",
            "title": f"{session.title or session.preview or 'Session'} (fork)",
            "syncState": "syncing",
            "updatedAt": utcnow(),
        }
    )
    ev = [EventRow(**{**e.__dict__, "session_id": new_id}) for e in events]
    ms = [MessageRow(**{**m.__dict__, "session_id": new_id}) for m in messages]
    return fork, ev, ms


class CloudResolver:
    """The cloud's side of a resolution (call on the store thread)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def resolve(self, owner: str, req: SyncResolveRequest) -> SyncHistory:
        """Apply a resolution for ``owner``; return the cloud's copy of the session after it."""
        check_version(req.schemaVersion)
        if req.user != owner:
            raise OpenFoalError(ErrorCode.FORBIDDEN, "a resolution for another user")
        sid = req.sessionId
        with self.store.transaction() as con:
            row = con.execute("SELECT owner FROM sessions WHERE id = %s", [sid]).fetchone()
            if row is None:
                raise OpenFoalError(ErrorCode.NOT_FOUND, f"the cloud has no session {sid!r}")
            if row[0] != owner:
                raise OpenFoalError(ErrorCode.FORBIDDEN, "this session belongs to another user")
            if req.resolution == "keep_local":
                if req.local is None:
                    raise OpenFoalError(
                        ErrorCode.INVALID_REQUEST, "keep_local needs the local history"
                    )
                self._replace(con, owner, req.local)
            con.execute("DELETE FROM sync_conflicts WHERE session_id = %s", [sid])
            con.execute(
                "UPDATE sessions SET data = jsonb_set(data, '{syncState}', '\"synced\"') "
                "WHERE id = %s",
                [sid],
            )
            con.execute(
                "INSERT INTO audit (id, ts, actor, action, resource, session_id, run_id, "
                "trace_id, detail, owner) VALUES (%s, %s, %s, 'sync.resolve', %s, %s, NULL, "
                "%s, %s, %s)",
                [
                    f"aud_{uuid.uuid4().hex[:24]}",
                    utcnow(),
                    owner,
                    f"session:{sid}",
                    sid,
                    uuid.uuid4().hex,
                    json.dumps({"resolution": req.resolution, "side": "cloud"}),
                    owner,
                ],
            )
            return self._history(con, sid)

    def _replace(self, con: psycopg.Connection, owner: str, local: SyncHistory) -> None:
        sid = local.session.id
        decoded = decode(local.chunks)
        check_owned(owner, decoded)
        for kind, columns in decoded.items():
            if kind == "sessions":
                continue
            if kind not in (*RECORDS, "events", "messages"):
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"{kind} rows in a history")
            if any(s != sid for c in columns for s in c["session_id"]):
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, "history of another session")
        for kind in ("events", "messages"):
            columns = decoded.get(kind, [])
            con.execute(f"DELETE FROM {kind} WHERE session_id = %s", [sid])
            if columns:
                _stage(con, kind, columns, owner)
                names = ", ".join(columns[0])
                con.execute(f"INSERT INTO {kind} ({names}) SELECT {names} FROM _sync_{kind}")
        for kind in ORDER:  # the rows the cloud held back while the session was in conflict
            if kind in RECORDS and decoded.get(kind):
                _stage(con, kind, decoded[kind], owner)
                _move(con, kind)

    def _history(self, con: psycopg.Connection, sid: str) -> SyncHistory:
        data = con.execute("SELECT data::text FROM sessions WHERE id = %s", [sid]).fetchone()
        assert data is not None
        session = Session.model_validate_json(data[0])
        ev = con.execute(
            "SELECT session_id, seq, event, run_id, trace_id, state_version, ts, payload::text "
            "FROM events WHERE session_id = %s ORDER BY seq",
            [sid],
        ).fetchall()
        ms = con.execute(
            "SELECT session_id, idx, run_id, ts, data::text FROM messages WHERE session_id = %s "
            "ORDER BY idx",
            [sid],
        ).fetchall()
        chunks = []
        if ev:
            cols = _columns(
                (
                    "session_id",
                    "seq",
                    "event",
                    "run_id",
                    "trace_id",
                    "state_version",
                    "ts",
                    "payload",
                ),
                ev,
            )
            chunks.append(wire_chunk(0, "events", len(ev), encode_columns(cols)))
        if ms:
            cols = _columns(("session_id", "idx", "run_id", "ts", "data"), ms)
            chunks.append(wire_chunk(1, "messages", len(ms), encode_columns(cols)))
        return SyncHistory(session=session, chunks=chunks)


def _columns(names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {n: [] for n in names}
    for row in rows:
        for name, value in zip(names, row, strict=True):
            out[name].append(value.isoformat() if hasattr(value, "isoformat") else value)
    return out
