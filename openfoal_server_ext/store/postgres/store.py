"""The Postgres store: the :class:`~openfoal_server_ext.store.base.Store` of a cloud instance.

A pool of connections (psycopg 3); a write batch takes one connection for its transaction,
appends go in through ``COPY`` (never row by row), upserts through one pipelined
``executemany``. The schema is migrated at start (see ``migrations.py``). Tool outputs longer
than the row limit go to the object store when one is configured (see ``governance.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from openfoal_kernel.protocol import ChatMessage, Session, utcnow

from ..base import EventRow, IdempotencyRow, MessageRow, RunRow, Store, WriteBatch
from ..blobs import BlobStore
from ..outbox import OutboxTables
from ..rows import event_from_row, run_from_row
from .governance import PostgresGovernance
from .migrations import migrate, schema_version

_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)

EVENT_COLUMNS = (
    "session_id",
    "seq",
    "event",
    "run_id",
    "trace_id",
    "state_version",
    "ts",
    "payload",
)
_EVENT_SELECT = "session_id, seq, event, run_id, trace_id, state_version, ts, payload::text"


#: Tool outputs longer than this (characters) go to the object store, when one is set.
BLOB_THRESHOLD = 8_192


class StoreUnavailable(RuntimeError):
    """The database could not be reached or its URL is malformed (the message says which)."""


def safe_url(url: str) -> str:
    """The URL's host, port, database and user, without a password (for messages)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<malformed URL>"
    return (
        f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', 5432)}"
        f"/{info.get('dbname', '')}"
    )


def dumps(value: Any) -> str:
    """Compact JSON text (non-JSON values as strings)."""
    return _ENCODER.encode(value)


class PostgresStore(PostgresGovernance, OutboxTables, Store):
    """:class:`Store` on a Postgres database (governance and outbox tables in mixins)."""

    def __init__(
        self,
        url: str,
        *,
        blobs: BlobStore | None = None,
        blob_threshold: int = BLOB_THRESHOLD,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.blobs = blobs
        self.blob_threshold = blob_threshold
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailable(f"OpenFoal: the database URL is malformed: {exc}") from exc
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"options": "-c timezone=UTC", "autocommit": True},
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self.pool.close()
            raise StoreUnavailable(
                f"OpenFoal: cannot connect to Postgres at {safe_url(url)} within "
                f"{connect_timeout_s:g} s (is it running, and does it accept this user?)"
            ) from exc
        self._local = threading.local()  # the connection of this thread's open transaction
        with self.pool.connection() as con:
            self.migrations_applied = migrate(con)
            self.schema_version = schema_version(con)

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """The connection of this thread's open transaction, else one from the pool."""
        current: psycopg.Connection | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self.pool.connection() as con:
            yield con

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction on one pooled connection; nested calls on this thread join it."""
        current: psycopg.Connection | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self.pool.connection() as con, con.transaction():
            self._local.tx = con
            try:
                yield con
            finally:
                self._local.tx = None

    def copy_rows(
        self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]
    ) -> None:
        """Append rows with one ``COPY ... FROM STDIN``."""
        with self.connection() as con, con.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def write_batch(self, batch: WriteBatch) -> None:
        """Write everything in ``batch`` in one transaction (large outputs stored first)."""
        outputs = self.offload_outputs(batch.tool_runs)  # before the transaction: may fail
        try:
            self._write(batch, outputs)
        except BaseException:
            for run in batch.runs.values():
                run.new = False  # the retry must not fail on a row this batch may have written
            raise
        for run in batch.runs.values():
            run.new = False

    def _write(self, batch: WriteBatch, outputs: dict[int, str]) -> None:
        with self.transaction():
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
                self.append_tool_runs(batch.tool_runs, refs=outputs)
            self.append_outbox(batch, utcnow())

    def _sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one ``?``-placeholder statement (in this thread's transaction, if any)."""
        with self.connection() as con:
            cur = con.execute(sql.replace("?", "%s"), list(params))  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def _atomic(self, fn: Callable[[], None]) -> None:
        with self.transaction():
            fn()

    def _outbox_ids(self, n: int) -> list[int]:
        rows = self._sql("SELECT nextval('outbox_id_seq') FROM generate_series(1, ?)", [n])
        return [int(r[0]) for r in rows]

    # -- sessions -------------------------------------------------------------------------

    def upsert_session(self, session: Session) -> None:
        """Insert or replace a session."""
        with self.connection() as con:
            con.execute(
                "INSERT INTO sessions VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "owner = excluded.owner, session_key = excluded.session_key, "
                "updated_at = excluded.updated_at, data = excluded.data",
                [
                    session.id,
                    session.owner,
                    session.sessionKey,
                    session.updatedAt,
                    session.model_dump_json(),
                ],
            )

    def delete_session(self, session_id: str) -> None:
        """Delete a session, its events and its transcript in one transaction."""
        with self.transaction() as con:
            con.execute("DELETE FROM events WHERE session_id = %s", [session_id])
            con.execute("DELETE FROM messages WHERE session_id = %s", [session_id])
            con.execute("DELETE FROM sessions WHERE id = %s", [session_id])

    def _sessions(self, sql: str, args: Sequence[Any]) -> list[Session]:
        with self.connection() as con:
            rows = con.execute(sql, args).fetchall()
        return [Session.model_validate_json(r[0]) for r in rows]

    def get_session(self, session_id: str) -> Session | None:
        """Return a session by id."""
        found = self._sessions("SELECT data::text FROM sessions WHERE id = %s", [session_id])
        return found[0] if found else None

    def get_session_by_key(self, owner: str, session_key: str) -> Session | None:
        """Return the owner's session with this canonical key."""
        found = self._sessions(
            "SELECT data::text FROM sessions WHERE owner = %s AND session_key = %s "
            "ORDER BY updated_at DESC LIMIT 1",
            [owner, session_key],
        )
        return found[0] if found else None

    def list_sessions(
        self, *, owner: str, limit: int, before: tuple[datetime, str] | None, query: str | None
    ) -> list[Session]:
        """Return the owner's sessions, newest update first, after the cursor position."""
        sql = "SELECT data::text FROM sessions WHERE owner = %s"
        args: list[Any] = [owner]
        if before is not None:
            sql += " AND (updated_at, id) < (%s, %s)"
            args += [before[0], before[1]]
        if query:
            sql += (
                " AND (data->>'title' ILIKE %s OR data->>'preview' ILIKE %s"
                " OR session_key ILIKE %s)"
            )
            like = f"%{query}%"
            args += [like, like, like]
        sql += " ORDER BY updated_at DESC, id DESC LIMIT %s"
        args.append(limit)
        return self._sessions(sql, args)

    def all_sessions(self) -> list[Session]:
        """Return every session."""
        return self._sessions("SELECT data::text FROM sessions", [])

    # -- runs -----------------------------------------------------------------------------

    def upsert_run(self, run: RunRow) -> None:
        """Insert a new run (a stored id is an error) or replace a known one."""
        data = {
            "input": run.input,
            "model": run.model,
            "runtimeMode": run.runtime_mode,
            "error": run.error,
            "usage": run.usage,
            "policyVersion": run.policy_version,
        }
        values = [
            run.id,
            run.session_id,
            run.owner,
            run.trace_id,
            run.status,
            run.created_at,
            run.ended_at,
            dumps(data),
        ]
        sql = "INSERT INTO runs VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        if not run.new:
            sql += (
                " ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, "
                "owner = excluded.owner, trace_id = excluded.trace_id, status = excluded.status, "
                "created_at = excluded.created_at, ended_at = excluded.ended_at, "
                "data = excluded.data"
            )
        with self.connection() as con:
            con.execute(sql, values)

    def _runs(self, where: str, args: Sequence[Any]) -> list[RunRow]:
        with self.connection() as con:
            rows = con.execute(
                "SELECT id, session_id, owner, trace_id, status, created_at, ended_at, data::text"
                f" FROM runs WHERE {where}",
                args,
            ).fetchall()
        return [run_from_row(r) for r in rows]

    def get_run(self, run_id: str) -> RunRow | None:
        """Return a run by id."""
        found = self._runs("id = %s", [run_id])
        return found[0] if found else None

    def unfinished_runs(self) -> list[RunRow]:
        """Runs that were accepted or running."""
        return self._runs("status IN ('accepted', 'running') ORDER BY created_at", [])

    # -- events ---------------------------------------------------------------------------

    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Append events with one COPY."""
        self.copy_rows(
            "events",
            EVENT_COLUMNS,
            (
                (
                    r.session_id,
                    r.seq,
                    r.event,
                    r.run_id,
                    r.trace_id,
                    r.state_version,
                    r.at,
                    dumps(r.payload),
                )
                for r in rows
            ),
        )

    def _events(self, where: str, args: Sequence[Any]) -> list[EventRow]:
        with self.connection() as con:
            rows = con.execute(f"SELECT {_EVENT_SELECT} FROM events WHERE {where}", args)
            return [event_from_row(r) for r in rows.fetchall()]

    def get_events(self, session_id: str, *, after_seq: int, limit: int) -> list[EventRow]:
        """Return a session's events with ``seq > after_seq`` in order."""
        return self._events(
            "session_id = %s AND seq > %s ORDER BY seq LIMIT %s", [session_id, after_seq, limit]
        )

    def run_events(self, run_id: str) -> list[EventRow]:
        """Return every event of one run in order."""
        return self._events("run_id = %s ORDER BY seq", [run_id])

    def last_seqs(self) -> dict[str, int]:
        """Return the highest stored seq of each session."""
        with self.connection() as con:
            rows = con.execute("SELECT session_id, max(seq) FROM events GROUP BY 1").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def max_state_version(self) -> int:
        """Return the highest stored stateVersion."""
        with self.connection() as con:
            row = con.execute("SELECT coalesce(max(state_version), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    # -- transcript -----------------------------------------------------------------------

    def append_messages(self, rows: Sequence[MessageRow]) -> None:
        """Append transcript entries with one COPY."""
        self.copy_rows(
            "messages",
            ("session_id", "idx", "run_id", "ts", "data"),
            (
                (r.session_id, r.idx, r.run_id, r.at, r.message.model_dump_json(exclude_none=True))
                for r in rows
            ),
        )

    def get_messages(self, session_id: str) -> list[MessageRow]:
        """Return a session's transcript in order."""
        with self.connection() as con:
            rows = con.execute(
                "SELECT session_id, idx, run_id, ts, data::text FROM messages "
                "WHERE session_id = %s ORDER BY idx",
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
        with self.connection() as con:
            row = con.execute(
                "SELECT params_hash, response::text, created_at, expires_at FROM idempotency "
                "WHERE method = %s AND key = %s AND actor = %s AND session_id = %s "
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
        """Store an idempotency record (replacing one under the same key)."""
        with self.connection() as con:
            con.execute(
                "INSERT INTO idempotency VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (method, key, actor, session_id) DO UPDATE SET "
                "params_hash = excluded.params_hash, response = excluded.response, "
                "created_at = excluded.created_at, expires_at = excluded.expires_at",
                [
                    row.method,
                    row.key,
                    row.actor,
                    row.session_id,
                    row.params_hash,
                    dumps(row.response),
                    row.created_at,
                    row.expires_at,
                ],
            )

    def purge_idempotency(self, now: datetime) -> int:
        """Delete expired records; return how many."""
        with self.connection() as con:
            cur = con.execute("DELETE FROM idempotency WHERE expires_at <= %s", [now])
            return cur.rowcount
