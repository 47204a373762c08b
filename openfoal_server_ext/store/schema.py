"""The store schema (DuckDB dialect; the Postgres store keeps the same tables)."""

from __future__ import annotations

SCHEMA_VERSION = 1

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id VARCHAR PRIMARY KEY, owner VARCHAR NOT NULL, session_key VARCHAR NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL, data JSON NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS runs (
        id VARCHAR PRIMARY KEY, session_id VARCHAR NOT NULL, owner VARCHAR NOT NULL,
        trace_id VARCHAR NOT NULL, status VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ, data JSON NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS events (
        session_id VARCHAR NOT NULL, seq BIGINT NOT NULL, event VARCHAR NOT NULL,
        run_id VARCHAR, trace_id VARCHAR, state_version BIGINT NOT NULL,
        ts TIMESTAMPTZ NOT NULL, payload JSON NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS messages (
        session_id VARCHAR NOT NULL, idx BIGINT NOT NULL, run_id VARCHAR,
        ts TIMESTAMPTZ NOT NULL, data JSON NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS idempotency (
        method VARCHAR NOT NULL, key VARCHAR NOT NULL, actor VARCHAR NOT NULL,
        session_id VARCHAR NOT NULL, params_hash VARCHAR NOT NULL, response JSON NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (method, key, actor, session_id))""",
    """CREATE TABLE IF NOT EXISTS audit (
        id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL, resource VARCHAR NOT NULL, session_id VARCHAR,
        run_id VARCHAR, trace_id VARCHAR NOT NULL, detail JSON NOT NULL,
        owner VARCHAR NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS policies (
        scope_key VARCHAR NOT NULL, version BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
        updated_by VARCHAR NOT NULL, data JSON NOT NULL, PRIMARY KEY (scope_key, version))""",
    """CREATE TABLE IF NOT EXISTS gate_items (
        gate_id VARCHAR PRIMARY KEY, owner VARCHAR NOT NULL, session_id VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL, status VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        resolved_at TIMESTAMPTZ, data JSON NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tool_runs (
        id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
        trace_id VARCHAR NOT NULL, tool_name VARCHAR NOT NULL, args JSON NOT NULL,
        status VARCHAR NOT NULL, duration_ms DOUBLE, runtime_mode VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ NOT NULL, error JSON,
        output VARCHAR NOT NULL)""",
    # a database made before audit entries had owners: the trail of nobody until rewritten
    "ALTER TABLE audit ADD COLUMN IF NOT EXISTS owner VARCHAR DEFAULT ''",
    # replay reads a run's audit entries and tool runs by a single-column lookup; other audit
    # queries scan with zone maps (see duckdb_governance.py)
    "CREATE INDEX IF NOT EXISTS audit_run_idx ON audit (run_id)",
    "CREATE INDEX IF NOT EXISTS tool_runs_run_idx ON tool_runs (run_id)",
    # the sync outbox (see outbox.py): every write batch's changes, in order, until acked
    """CREATE TABLE IF NOT EXISTS outbox (
        id BIGINT PRIMARY KEY, kind VARCHAR NOT NULL, n_rows INTEGER NOT NULL,
        sessions VARCHAR NOT NULL, body BLOB NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        state VARCHAR NOT NULL, attempts INTEGER NOT NULL, error VARCHAR,
        acked_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS sync_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS sync_conflicts (
        session_id VARCHAR PRIMARY KEY, detected_at TIMESTAMPTZ NOT NULL, detail JSON NOT NULL)""",
)
