"""The DuckDB store: one file per Jupyter user server, written only by the server process.

Batches go in with one statement per table (``INSERT ... SELECT unnest(...)`` for small
batches, a registered Arrow table for large ones), never row by row.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from openfoal_kernel.protocol import ChatMessage, Session, utcnow

from .base import EventRow, IdempotencyRow, MessageRow, RunRow, Store, WriteBatch
from .duckdb_governance import GovernanceTables
from .outbox import OutboxTables
from .rows import event_from_row, run_from_row
from .schema import DDL, SCHEMA_VERSION

log = logging.getLogger(__name__)

#: Batches at least this large go through Arrow; smaller ones through unnest parameters.
ARROW_THRESHOLD = 512


#: One encoder for every row (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def open_duckdb(path: Path) -> tuple[duckdb.DuckDBPyConnection, Path | None]:
    """Open (creating) the database; a file that fails to open is moved aside, not retried.

    Returns the connection and, when recovery happened, where the broken file now lies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path)), None
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise  # another process holds it: moving it aside would be wrong
        broken = _move_aside(path, exc)
    except duckdb.Error as exc:
        broken = _move_aside(path, exc)
    return duckdb.connect(str(path)), broken


def _move_aside(path: Path, exc: Exception) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    log.error("OpenFoal store %s failed to open (%s); moved aside to %s", path, exc, target)
    os.replace(path, target)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    return target


class DuckDBStore(GovernanceTables, OutboxTables, Store):
    """:class:`Store` on a DuckDB file (governance and outbox tables in mixins)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.con, self.recovered_from = open_duckdb(self.path)
        # this store runs many small statements from one writer thread: DuckDB's default of
        # a worker per core only adds scheduling to each, and competes with the server
        self.con.execute("SET threads = 1")
        # ids of sessions and runs known to be stored: those are updated in place, a third of
        # the cost of INSERT OR REPLACE (a delete and an insert through the key index)
        self._stored_sessions: set[str] = set()
        self._stored_runs: set[str] = set()
        for stmt in DDL:
            self.con.execute(stmt)
        self.con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
            [str(SCHEMA_VERSION)],
        )
        row = self.con.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
        self._next_outbox_id = (int(row[0]) if row else 0) + 1

    def close(self) -> None:
        """Checkpoint and close the connection."""
        try:
            self.con.execute("CHECKPOINT")
        finally:
            self.con.close()

    def write_batch(self, batch: WriteBatch) -> None:
        """Write everything in ``batch`` and its outbox entry in one transaction."""
        first_outbox_id = self._next_outbox_id
        self.con.execute("BEGIN TRANSACTION")
        try:
            for session in batch.sessions.values():
                self.upsert_session(session)
            for run in batch.runs.values():
                self.upsert_run(run)
            if batch.messages:
                self.append_messages(batch.messages)
            if batch.events:
                self.append_events(batch.events)
            if batch.audit:
                self.append_audit(batch.audit)
            if batch.policies:
                self.append_policies(batch.policies)
            if batch.gates:
                self.upsert_gates(list(batch.gates.values()))
            if batch.tool_runs:
                self.append_tool_runs(batch.tool_runs)
            self.append_outbox(batch, utcnow())
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            self._next_outbox_id = first_outbox_id
            # rows first written by this batch are gone again: upsert them next time
            self._stored_sessions.clear()
            self._stored_runs.clear()
            for run in batch.runs.values():
                run.new = False  # the retry must not fail on a row this batch may have written
            raise

    # -- helpers --------------------------------------------------------------------------

    def _sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the connection (in the open transaction, if any)."""
        return self.con.execute(sql, list(params)).fetchall()

    def _atomic(self, fn: Callable[[], None]) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            fn()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            self._stored_sessions.clear()
            raise

    def _outbox_ids(self, n: int) -> list[int]:
        first = self._next_outbox_id
        self._next_outbox_id += n
        return list(range(first, first + n))

    def _insert(
        self,
        table: str,
        columns: dict[str, list[Any]],
        types: dict[str, str],
        *,
        or_replace: bool = False,
    ) -> None:
        """Insert a column batch with a single statement (``or_replace``: upsert by key)."""
        n = len(next(iter(columns.values())))
        if n == 0:
            return
        names = ", ".join(columns)
        verb = "INSERT OR REPLACE INTO" if or_replace else "INSERT INTO"
        if n >= ARROW_THRESHOLD:
            batch = pa.table(columns)
            casts = ", ".join(f"CAST({c} AS {types[c]})" for c in columns)
            self.con.register("_openfoal_batch", batch)
            try:
                self.con.execute(f"{verb} {table} ({names}) SELECT {casts} FROM _openfoal_batch")
            finally:
                self.con.unregister("_openfoal_batch")
            return
        selects = ", ".join(f"CAST(unnest(${i + 1}) AS {types[c]})" for i, c in enumerate(columns))
        self.con.execute(f"{verb} {table} ({names}) SELECT {selects}", list(columns.values()))

    # -- sessions -------------------------------------------------------------------------

    def upsert_session(self, session: Session) -> None:
        """Insert or replace a session."""
        values = [session.owner, session.sessionKey, session.updatedAt, session.model_dump_json()]
        if session.id in self._stored_sessions and self._updated(
            "UPDATE sessions SET owner = ?, session_key = ?, updated_at = ?, data = ? WHERE id = ?",
            [*values, session.id],
        ):
            return
        self.con.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)", [session.id, *values]
        )
        self._stored_sessions.add(session.id)

    def _updated(self, sql: str, params: list[Any]) -> bool:
        """Run an UPDATE; whether it changed a row."""
        row = self.con.execute(sql, params).fetchone()
        return bool(row and row[0])

    def delete_session(self, session_id: str) -> None:
        """Delete a session, its events and its transcript in one transaction."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table, column in (
                ("events", "session_id"),
                ("messages", "session_id"),
                ("sessions", "id"),
            ):
                self.con.execute(f"DELETE FROM {table} WHERE {column} = ?", [session_id])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self._stored_sessions.discard(session_id)

    def get_session(self, session_id: str) -> Session | None:
        """Return a session by id."""
        row = self.con.execute("SELECT data FROM sessions WHERE id = ?", [session_id]).fetchone()
        return Session.model_validate_json(row[0]) if row else None

    def get_session_by_key(self, owner: str, session_key: str) -> Session | None:
        """Return the owner's session with this canonical key."""
        row = self.con.execute(
            "SELECT data FROM sessions WHERE owner = ? AND session_key = ? "
            "ORDER BY updated_at DESC LIMIT 1",
            [owner, session_key],
        ).fetchone()
        return Session.model_validate_json(row[0]) if row else None

    def list_sessions(
        self, *, owner: str, limit: int, before: tuple[datetime, str] | None, query: str | None
    ) -> list[Session]:
        """Return the owner's sessions, newest update first, after the cursor position."""
        sql = "SELECT data FROM sessions WHERE owner = ?"
        args: list[Any] = [owner]
        if before is not None:
            sql += " AND (updated_at < ? OR (updated_at = ? AND id < ?))"
            args += [before[0], before[0], before[1]]
        if query:
            sql += (
                " AND (data->>'title' ILIKE ? OR data->>'preview' ILIKE ? OR session_key ILIKE ?)"
            )
            like = f"%{query}%"
            args += [like, like, like]
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return [Session.model_validate_json(r[0]) for r in self.con.execute(sql, args).fetchall()]

    def all_sessions(self) -> list[Session]:
        """Return every session."""
        rows = self.con.execute("SELECT data FROM sessions").fetchall()
        sessions = [Session.model_validate_json(r[0]) for r in rows]
        self._stored_sessions.update(s.id for s in sessions)
        return sessions

    # -- runs -----------------------------------------------------------------------------

    def upsert_run(self, run: RunRow) -> None:
        """Insert or replace a run."""
        data = {
            "input": run.input,
            "model": run.model,
            "runtimeMode": run.runtime_mode,
            "error": run.error,
            "usage": run.usage,
            "policyVersion": run.policy_version,
        }
        values = [
            run.session_id,
            run.owner,
            run.trace_id,
            run.status,
            run.created_at,
            run.ended_at,
            _dumps(data),
        ]
        if run.id in self._stored_runs and self._updated(
            "UPDATE runs SET session_id = ?, owner = ?, trace_id = ?, status = ?, created_at = ?, "
            "ended_at = ?, data = ? WHERE id = ?",
            [*values, run.id],
        ):
            return
        verb = "INSERT" if run.new else "INSERT OR REPLACE"
        self.con.execute(f"{verb} INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [run.id, *values])
        self._stored_runs.add(run.id)

    def get_run(self, run_id: str) -> RunRow | None:
        """Return a run by id."""
        row = self.con.execute("SELECT * FROM runs WHERE id = ?", [run_id]).fetchone()
        return run_from_row(row) if row else None

    def unfinished_runs(self) -> list[RunRow]:
        """Runs that were accepted or running."""
        rows = self.con.execute(
            "SELECT * FROM runs WHERE status IN ('accepted', 'running') ORDER BY created_at"
        ).fetchall()
        return [run_from_row(r) for r in rows]

    # -- events ---------------------------------------------------------------------------

    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Append events in one statement."""
        self._insert(
            "events",
            {
                "session_id": [r.session_id for r in rows],
                "seq": [r.seq for r in rows],
                "event": [r.event for r in rows],
                "run_id": [r.run_id for r in rows],
                "trace_id": [r.trace_id for r in rows],
                "state_version": [r.state_version for r in rows],
                "ts": [r.at for r in rows],
                "payload": [_dumps(r.payload) for r in rows],
            },
            _EVENT_TYPES,
        )

    def get_events(self, session_id: str, *, after_seq: int, limit: int) -> list[EventRow]:
        """Return a session's events with ``seq > after_seq`` in order."""
        rows = self.con.execute(
            f"SELECT {_EVENT_COLS} FROM events WHERE session_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            [session_id, after_seq, limit],
        ).fetchall()
        return [event_from_row(r) for r in rows]

    def run_events(self, run_id: str) -> list[EventRow]:
        """Return every event of one run in order."""
        rows = self.con.execute(
            f"SELECT {_EVENT_COLS} FROM events WHERE run_id = ? ORDER BY seq", [run_id]
        ).fetchall()
        return [event_from_row(r) for r in rows]

    def last_seqs(self) -> dict[str, int]:
        """Return the highest stored seq of each session."""
        rows = self.con.execute("SELECT session_id, max(seq) FROM events GROUP BY 1").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def max_state_version(self) -> int:
        """Return the highest stored stateVersion."""
        row = self.con.execute("SELECT coalesce(max(state_version), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    # -- transcript -----------------------------------------------------------------------

    def append_messages(self, rows: Sequence[MessageRow]) -> None:
        """Append transcript entries in one statement."""
        self._insert(
            "messages",
            {
                "session_id": [r.session_id for r in rows],
                "idx": [r.idx for r in rows],
                "run_id": [r.run_id for r in rows],
                "ts": [r.at for r in rows],
                "data": [r.message.model_dump_json(exclude_none=True) for r in rows],
            },
            {
                "session_id": "VARCHAR",
                "idx": "BIGINT",
                "run_id": "VARCHAR",
                "ts": "TIMESTAMPTZ",
                "data": "JSON",
            },
        )

    def get_messages(self, session_id: str) -> list[MessageRow]:
        """Return a session's transcript in order."""
        rows = self.con.execute(
            "SELECT session_id, idx, run_id, ts, data FROM messages WHERE session_id = ? "
            "ORDER BY idx",
            [session_id],
        ).fetchall()
        return [
            MessageRow(
                session_id=r[0],
                idx=r[1],
                run_id=r[2],
                at=r[3],
                message=ChatMessage.model_validate_json(r[4]),
            )
            for r in rows
        ]

    # -- idempotency ----------------------------------------------------------------------

    def get_idempotency(
        self, method: str, key: str, actor: str, session_id: str
    ) -> IdempotencyRow | None:
        """Return an unexpired idempotency record."""
        row = self.con.execute(
            "SELECT params_hash, response, created_at, expires_at FROM idempotency "
            "WHERE method = ? AND key = ? AND actor = ? AND session_id = ? "
            "AND expires_at > now()",
            [method, key, actor, session_id],
        ).fetchone()
        if not row:
            return None
        return IdempotencyRow(
            method=method,
            key=key,
            actor=actor,
            session_id=session_id,
            params_hash=row[0],
            response=json.loads(row[1]),
            created_at=row[2],
            expires_at=row[3],
        )

    def put_idempotency(self, row: IdempotencyRow) -> None:
        """Store an idempotency record."""
        self.con.execute(
            "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row.method,
                row.key,
                row.actor,
                row.session_id,
                row.params_hash,
                _dumps(row.response),
                row.created_at,
                row.expires_at,
            ],
        )

    def purge_idempotency(self, now: datetime) -> int:
        """Delete expired records."""
        row = self.con.execute(
            "DELETE FROM idempotency WHERE expires_at <= ? RETURNING 1", [now]
        ).fetchall()
        return len(row)


_EVENT_TYPES = {
    "session_id": "VARCHAR",
    "seq": "BIGINT",
    "event": "VARCHAR",
    "run_id": "VARCHAR",
    "trace_id": "VARCHAR",
    "state_version": "BIGINT",
    "ts": "TIMESTAMPTZ",
    "payload": "JSON",
}
_EVENT_COLS = "session_id, seq, event, run_id, trace_id, state_version, ts, payload"
