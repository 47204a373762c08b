"""DuckDB tables of governance: audit trail, policy versions, gate items, tool runs, metrics.

A mixin of :class:`~openfoal_server_ext.store.duckdb_store.DuckDBStore`; it uses the store's
connection and its one-statement batch insert.

Query plans, measured on a 2-core machine with 1,000,000 audit entries (see
``benchmarks/bench_audit.py``): DuckDB scans a column with zone maps (per row
group min/max), so the audit table relies on ``ts`` following insertion order and on the
newest-first probes of :meth:`GovernanceTables.query_audit`. An ART index on ``audit.run_id``
serves the single-column lookup of :meth:`audit_for_run` (replay); DuckDB does not use an ART
index for a scan with several filters, so none is kept on the other columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from openfoal_kernel.protocol import AuditEntry, GateItem, Policy

from .base import EVERYONE, AuditRow, ToolRunRow
from .metrics_sql import DUCKDB, series_queries
from .rows import audit_from_row, metrics_from_counts, series_from_rows

#: Newest-first probe windows of an audit query, below its upper bound (``None``: no bound).
AUDIT_PROBE_WINDOWS: tuple[timedelta | None, ...] = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=31),
    None,
)

_AUDIT_COLS = "id, ts, actor, action, resource, session_id, run_id, trace_id, detail"
_AUDIT_TYPES = {
    "id": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "actor": "VARCHAR",
    "action": "VARCHAR",
    "resource": "VARCHAR",
    "session_id": "VARCHAR",
    "run_id": "VARCHAR",
    "trace_id": "VARCHAR",
    "detail": "JSON",
    "owner": "VARCHAR",
}
_POLICY_TYPES = {
    "scope_key": "VARCHAR",
    "version": "BIGINT",
    "updated_at": "TIMESTAMPTZ",
    "updated_by": "VARCHAR",
    "data": "JSON",
}
_GATE_TYPES = {
    "gate_id": "VARCHAR",
    "owner": "VARCHAR",
    "session_id": "VARCHAR",
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "created_at": "TIMESTAMPTZ",
    "resolved_at": "TIMESTAMPTZ",
    "data": "JSON",
}
_TOOL_RUN_TYPES = {
    "id": "VARCHAR",
    "session_id": "VARCHAR",
    "run_id": "VARCHAR",
    "trace_id": "VARCHAR",
    "tool_name": "VARCHAR",
    "args": "JSON",
    "status": "VARCHAR",
    "duration_ms": "DOUBLE",
    "runtime_mode": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "ended_at": "TIMESTAMPTZ",
    "error": "JSON",
    "output": "VARCHAR",
}
_TOOL_RUN_COLS = ", ".join(_TOOL_RUN_TYPES)

#: Longest tool output kept in ``tool_runs.output`` (characters).
TOOL_OUTPUT_LIMIT = 16_384


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class GovernanceTables:
    """Audit, policy, gate, tool-run and metrics queries of the DuckDB store."""

    con: duckdb.DuckDBPyConnection

    def _insert(
        self,
        table: str,
        columns: dict[str, list[Any]],
        types: dict[str, str],
        *,
        or_replace: bool = False,
    ) -> None:
        raise NotImplementedError  # provided by DuckDBStore

    # -- audit ----------------------------------------------------------------------------

    def append_audit(self, rows: Sequence[AuditRow | AuditEntry]) -> None:
        """Append audit entries in one statement (a bare entry belongs to its actor's trail)."""
        full = [r if isinstance(r, AuditRow) else AuditRow(entry=r, owner=r.actor) for r in rows]
        entries = [r.entry for r in full]
        self._insert(
            "audit",
            {
                "id": [e.id for e in entries],
                "ts": [e.at for e in entries],
                "actor": [e.actor for e in entries],
                "action": [e.action for e in entries],
                "resource": [e.resource for e in entries],
                "session_id": [e.sessionId for e in entries],
                "run_id": [e.runId for e in entries],
                "trace_id": [e.traceId for e in entries],
                "detail": [_dumps(e.detail) for e in entries],
                "owner": [r.owner for r in full],
            },
            _AUDIT_TYPES,
        )

    def query_audit(
        self,
        *,
        owner: str | None,
        from_: datetime | None = None,
        to: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        trace_id: str | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[AuditEntry]:
        """The owner's entries matching every given filter, newest first, after ``before``.

        ``from_`` is inclusive, ``to`` exclusive; ``before`` is the ``(ts, id)`` of the last
        entry of the previous page (a keyset cursor).
        """
        # owner None: every owner's entries (a team admin's view); EVERYONE entries (changes
        # to the default policy) are in every owner's trail
        where = ["owner IN (?, ?)"] if owner is not None else ["TRUE"]
        args: list[Any] = [owner, EVERYONE] if owner is not None else []
        for column, value in (
            ("actor", actor),
            ("action", action),
            ("session_id", session_id),
            ("run_id", run_id),
            ("trace_id", trace_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if from_ is not None:
            where.append("ts >= ?")
            args.append(from_)
        if to is not None:
            where.append("ts < ?")
            args.append(to)
        if before is not None:
            where.append("(ts < ? OR (ts = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        sql = f"SELECT {_AUDIT_COLS} FROM audit WHERE {' AND '.join(where)}"
        tail = " ORDER BY ts DESC, id DESC LIMIT ?"
        # Newest first: try growing windows below the upper bound. ``ts`` follows insertion
        # order, so a narrow window reads only the newest row groups; the first window that
        # fills the page holds the page (every newer entry is inside it).
        bounds = [t for t in (to, before[0] if before else None) if t is not None]
        upper = min(bounds) if bounds else datetime.now(timezone.utc)
        rows: list[tuple[Any, ...]] = []
        for window in AUDIT_PROBE_WINDOWS:
            lower = None if window is None else upper - window
            if lower is None or (from_ is not None and lower <= from_):
                rows = self.con.execute(sql + tail, [*args, limit]).fetchall()
                break
            rows = self.con.execute(sql + " AND ts >= ?" + tail, [*args, lower, limit]).fetchall()
            if len(rows) >= limit:
                break
        return [audit_from_row(r) for r in rows]

    def audit_for_run(self, run_id: str) -> list[AuditEntry]:
        """Every audit entry of one run, oldest first (whoever's trail holds them)."""
        rows = self.con.execute(
            f"SELECT {_AUDIT_COLS} FROM audit WHERE run_id = ? ORDER BY ts, id", [run_id]
        ).fetchall()
        return [audit_from_row(r) for r in rows]

    # -- policies -------------------------------------------------------------------------

    def append_policies(self, policies: Sequence[Policy]) -> None:
        """Store policy versions in one statement (a version is written once, kept forever)."""
        self._insert(
            "policies",
            {
                "scope_key": [p.scopeKey for p in policies],
                "version": [p.version for p in policies],
                "updated_at": [p.updatedAt for p in policies],
                "updated_by": [p.updatedBy for p in policies],
                "data": [p.model_dump_json() for p in policies],
            },
            _POLICY_TYPES,
            or_replace=True,
        )

    def latest_policies(self) -> dict[str, Policy]:
        """The newest version of each policy scope."""
        rows = self.con.execute(
            "SELECT data FROM policies "
            "QUALIFY row_number() OVER (PARTITION BY scope_key ORDER BY version DESC) = 1"
        ).fetchall()
        policies = [Policy.model_validate_json(r[0]) for r in rows]
        return {p.scopeKey: p for p in policies}

    def policy_versions(self, scope_key: str) -> list[Policy]:
        """Every stored version of a scope, oldest first."""
        rows = self.con.execute(
            "SELECT data FROM policies WHERE scope_key = ? ORDER BY version", [scope_key]
        ).fetchall()
        return [Policy.model_validate_json(r[0]) for r in rows]

    # -- gates ----------------------------------------------------------------------------

    def upsert_gates(self, gates: Sequence[tuple[GateItem, str]]) -> None:
        """Insert or replace gates (each with its owner) in one statement."""
        items = [g for g, _ in gates]
        self._insert(
            "gate_items",
            {
                "gate_id": [g.gateId for g in items],
                "owner": [owner for _, owner in gates],
                "session_id": [g.sessionId for g in items],
                "run_id": [g.runId for g in items],
                "status": [g.status for g in items],
                "created_at": [g.createdAt for g in items],
                "resolved_at": [g.resolvedAt for g in items],
                "data": [g.model_dump_json() for g in items],
            },
            _GATE_TYPES,
            or_replace=True,
        )

    def pending_gates(self) -> list[tuple[GateItem, str]]:
        """Gates still pending, oldest first, with their owners."""
        rows = self.con.execute(
            "SELECT data, owner FROM gate_items WHERE status = 'pending' ORDER BY created_at"
        ).fetchall()
        return [(GateItem.model_validate_json(r[0]), r[1]) for r in rows]

    def get_gate(self, gate_id: str) -> tuple[GateItem, str] | None:
        """A gate and its owner."""
        row = self.con.execute(
            "SELECT data, owner FROM gate_items WHERE gate_id = ?", [gate_id]
        ).fetchone()
        return (GateItem.model_validate_json(row[0]), row[1]) if row else None

    def list_gates(
        self,
        *,
        owner: str | None,
        status: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        tool_name: str | None = None,
        gate_id: str | None = None,
    ) -> list[GateItem]:
        """Gates newest first, of one owner (``None``: everyone's)."""
        where = ["TRUE"]
        args: list[Any] = []
        filters = (
            ("owner", owner),
            ("status", status),
            ("session_id", session_id),
            ("gate_id", gate_id),
            ("json_extract_string(data, '$.toolName')", tool_name),
        )
        for column, value in filters:
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        rows = self.con.execute(
            f"SELECT data FROM gate_items WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, gate_id DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
        return [GateItem.model_validate_json(r[0]) for r in rows]

    # -- tool runs ------------------------------------------------------------------------

    def append_tool_runs(self, rows: Sequence[ToolRunRow]) -> None:
        """Append tool runs in one statement (output cut to ``TOOL_OUTPUT_LIMIT``)."""
        self._insert(
            "tool_runs",
            {
                "id": [r.id for r in rows],
                "session_id": [r.session_id for r in rows],
                "run_id": [r.run_id for r in rows],
                "trace_id": [r.trace_id for r in rows],
                "tool_name": [r.tool_name for r in rows],
                "args": [_dumps(r.args) for r in rows],
                "status": [r.status for r in rows],
                "duration_ms": [r.duration_ms for r in rows],
                "runtime_mode": [r.runtime_mode for r in rows],
                "started_at": [r.started_at for r in rows],
                "ended_at": [r.ended_at for r in rows],
                "error": [_dumps(r.error) if r.error is not None else None for r in rows],
                "output": [r.output[:TOOL_OUTPUT_LIMIT] for r in rows],
            },
            _TOOL_RUN_TYPES,
        )

    def tool_runs_of(self, run_id: str) -> list[ToolRunRow]:
        """The tool runs of one run, in the order they started."""
        rows = self.con.execute(
            f"SELECT {_TOOL_RUN_COLS} FROM tool_runs WHERE run_id = ? ORDER BY started_at, id",
            [run_id],
        ).fetchall()
        return [
            ToolRunRow(
                id=r[0],
                session_id=r[1],
                run_id=r[2],
                trace_id=r[3],
                tool_name=r[4],
                args=json.loads(r[5]),
                status=r[6],
                duration_ms=r[7] if r[7] is not None else 0.0,
                runtime_mode=r[8],
                started_at=r[9],
                ended_at=r[10],
                error=json.loads(r[11]) if r[11] is not None else None,
                output=r[12],
            )
            for r in rows
        ]

    # -- metrics --------------------------------------------------------------------------

    def metrics(
        self, from_: datetime | None, to: datetime | None, owner: str | None = None
    ) -> dict[str, Any]:
        """Run, tool and gate figures over ``[from_, to)`` (see docs/policy.md, "Metrics"),
        of one owner's runs (``owner``) or of everyone's (``None``)."""

        def window(column: str, key: str = "run_id") -> tuple[str, list[Any]]:
            cond = ["TRUE"]
            args: list[Any] = []
            if owner is not None:
                cond.append(f"{key} IN (SELECT id FROM runs WHERE owner = ?)")
                args.append(owner)
            if from_ is not None:
                cond.append(f"{column} >= ?")
                args.append(from_)
            if to is not None:
                cond.append(f"{column} < ?")
                args.append(to)
            return " AND ".join(cond), args

        where, args = window("created_at", "id")
        runs = self.con.execute(
            "SELECT count(*),"
            " count(*) FILTER (WHERE status = 'completed'),"
            " count(*) FILTER (WHERE status IN ('failed', 'interrupted')),"
            " count(*) FILTER (WHERE status = 'interrupted'),"
            " count(*) FILTER (WHERE status = 'aborted'),"
            " count(*) FILTER (WHERE status IN ('accepted', 'running')),"
            " quantile_cont(epoch_ms(ended_at) - epoch_ms(created_at), 0.5)"
            "   FILTER (WHERE ended_at IS NOT NULL),"
            " quantile_cont(epoch_ms(ended_at) - epoch_ms(created_at), 0.95)"
            "   FILTER (WHERE ended_at IS NOT NULL)"
            f" FROM runs WHERE {where}",
            args,
        ).fetchone()
        where, args = window("started_at")
        tools = self.con.execute(
            "SELECT count(*),"
            " count(*) FILTER (WHERE status IN ('failed', 'timeout')),"
            " count(*) FILTER (WHERE status = 'timeout'),"
            " count(*) FILTER (WHERE status = 'denied'),"
            " count(*) FILTER (WHERE status = 'rejected'),"
            " quantile_cont(duration_ms, 0.95)"
            f" FROM tool_runs WHERE {where}",
            args,
        ).fetchone()
        where, args = window("created_at")
        gates = self.con.execute(
            "SELECT count(*),"
            " count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE status = 'approved'),"
            " count(*) FILTER (WHERE status = 'rejected'),"
            " count(*) FILTER (WHERE status = 'expired'),"
            " median(epoch_ms(resolved_at) - epoch_ms(created_at))"
            "   FILTER (WHERE resolved_at IS NOT NULL AND status IN ('approved', 'rejected'))"
            f" FROM gate_items WHERE {where}",
            args,
        ).fetchone()
        assert runs is not None and tools is not None and gates is not None
        return metrics_from_counts(runs, tools, gates)

    def metrics_series(
        self, from_: datetime, to: datetime, bucket_s: int, owner: str | None = None
    ) -> dict[str, Any]:
        """Per-bucket figures and tool calls by tool over ``[from_, to)``, grouped in SQL."""
        q = series_queries(DUCKDB, from_, to, bucket_s, owner)
        runs, tools, gates, by_tool = (
            self.con.execute(sql, args).fetchall()
            for sql, args in (q.runs, q.tools, q.gates, q.by_tool)
        )
        return series_from_rows(runs, tools, gates, by_tool)
