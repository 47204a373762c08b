"""Versioned schema migrations of the Postgres store, applied in order at start.

Each migration runs once, in its own transaction, and is recorded in ``schema_migrations``.
An advisory lock keeps two servers starting at once from applying the same step twice.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

import psycopg

#: (version, what it does, SQL). Versions are consecutive from 1.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "tables of the local store",
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, session_key TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL, data JSONB NOT NULL);
        CREATE INDEX sessions_owner_idx ON sessions (owner, updated_at DESC, id DESC);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, session_id TEXT NOT NULL, owner TEXT NOT NULL,
            trace_id TEXT NOT NULL, status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
            ended_at TIMESTAMPTZ, data JSONB NOT NULL);
        CREATE INDEX runs_status_idx ON runs (status);
        CREATE TABLE events (
            session_id TEXT NOT NULL, seq BIGINT NOT NULL, event TEXT NOT NULL,
            run_id TEXT, trace_id TEXT, state_version BIGINT NOT NULL,
            ts TIMESTAMPTZ NOT NULL, payload JSONB NOT NULL);
        -- not unique, as in the local store: the hub numbers events, the store keeps them
        CREATE INDEX events_session_seq_idx ON events (session_id, seq);
        CREATE INDEX events_run_idx ON events (run_id);
        CREATE TABLE messages (
            session_id TEXT NOT NULL, idx BIGINT NOT NULL, run_id TEXT,
            ts TIMESTAMPTZ NOT NULL, data JSONB NOT NULL);
        CREATE INDEX messages_session_idx ON messages (session_id, idx);
        CREATE TABLE idempotency (
            method TEXT NOT NULL, key TEXT NOT NULL, actor TEXT NOT NULL,
            session_id TEXT NOT NULL, params_hash TEXT NOT NULL, response JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (method, key, actor, session_id));
        CREATE TABLE audit (
            id TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, resource TEXT NOT NULL, session_id TEXT,
            run_id TEXT, trace_id TEXT NOT NULL, detail JSONB NOT NULL,
            owner TEXT NOT NULL DEFAULT '');
        CREATE INDEX audit_owner_ts_idx ON audit (owner, ts DESC, id DESC);
        CREATE INDEX audit_run_idx ON audit (run_id);
        CREATE TABLE policies (
            scope_key TEXT NOT NULL, version BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
            updated_by TEXT NOT NULL, data JSONB NOT NULL, PRIMARY KEY (scope_key, version));
        CREATE TABLE gate_items (
            gate_id TEXT PRIMARY KEY, owner TEXT NOT NULL, session_id TEXT NOT NULL,
            run_id TEXT NOT NULL, status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
            resolved_at TIMESTAMPTZ, data JSONB NOT NULL);
        CREATE INDEX gate_items_status_idx ON gate_items (status, created_at);
        CREATE TABLE tool_runs (
            id TEXT NOT NULL, session_id TEXT NOT NULL, run_id TEXT NOT NULL,
            trace_id TEXT NOT NULL, tool_name TEXT NOT NULL, args JSONB NOT NULL,
            status TEXT NOT NULL, duration_ms DOUBLE PRECISION, runtime_mode TEXT NOT NULL,
            started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ NOT NULL, error JSONB,
            output TEXT NOT NULL);
        CREATE INDEX tool_runs_run_idx ON tool_runs (run_id);
        """,
    ),
    (
        2,
        "tool outputs too large for a row live in the object store",
        "ALTER TABLE tool_runs ADD COLUMN output_ref TEXT",
    ),
    (
        3,
        "sync: the outbox of a user's store; the cloud's intake keys and records",
        """
        CREATE SEQUENCE outbox_id_seq;
        CREATE TABLE outbox (
            id BIGINT PRIMARY KEY, kind TEXT NOT NULL, n_rows INTEGER NOT NULL,
            sessions TEXT NOT NULL, body BYTEA NOT NULL, created_at TIMESTAMPTZ NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT, acked_at TIMESTAMPTZ);
        CREATE INDEX outbox_state_idx ON outbox (state, id);
        CREATE TABLE sync_meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE sync_conflicts (
            session_id TEXT PRIMARY KEY, detected_at TIMESTAMPTZ NOT NULL, detail JSONB NOT NULL);
        -- the cloud side: row ids that make a replayed batch insert nothing
        CREATE UNIQUE INDEX events_key_idx ON events (session_id, seq);
        CREATE UNIQUE INDEX messages_key_idx ON messages (session_id, idx);
        CREATE UNIQUE INDEX audit_key_idx ON audit (id);
        CREATE UNIQUE INDEX tool_runs_key_idx ON tool_runs (run_id, id);
        CREATE TABLE sync_batches (
            owner TEXT NOT NULL, batch_id TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL,
            result JSONB NOT NULL, PRIMARY KEY (owner, batch_id));
        CREATE TABLE sync_chunks (
            owner TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (owner, digest));
        CREATE TABLE sync_policies (
            owner TEXT NOT NULL, scope_key TEXT NOT NULL, version BIGINT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL, updated_by TEXT NOT NULL, data JSONB NOT NULL,
            PRIMARY KEY (owner, scope_key, version));
        """,
    ),
    (
        4,
        "drop the plain (session_id, seq|idx) indexes the unique ones of migration 3 repeat",
        """
        DROP INDEX IF EXISTS events_session_seq_idx;
        DROP INDEX IF EXISTS messages_session_idx;
        """,
    ),
)

#: Key of the advisory lock held while migrating (any constant shared by all servers).
_LOCK_KEY = 0x0F0A1


def migrate(con: psycopg.Connection) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied now."""
    applied: list[int] = []
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, description, sql in MIGRATIONS:
            if version in done:
                continue
            con.execute(sql)  # several statements: allowed without parameters
            con.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                [version, description],
            )
            applied.append(version)
    return applied


def schema_version(con: psycopg.Connection) -> int:
    """The highest applied migration (0 before any)."""
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0
