"""Postgres tables of governance: audit trail, policy versions, gates, tool runs, metrics.

A mixin of :class:`~openfoal_server_ext.store.postgres.store.PostgresStore`. Audit queries
use the ``(owner, ts DESC, id DESC)`` index with a row-value keyset cursor. With an object
store set, a tool output longer than ``blob_threshold`` characters is stored there whole and
the row keeps its first ``blob_threshold`` characters and the reference; reading the row reads
it back. Without one, outputs are cut to ``TOOL_OUTPUT_LIMIT`` as in the local store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg

from openfoal_kernel.protocol import AuditEntry, GateItem, Policy

from ..base import EVERYONE, AuditRow, ToolRunRow
from ..blobs import BlobStore
from ..duckdb_governance import TOOL_OUTPUT_LIMIT
from ..metrics_sql import POSTGRES, series_queries
from ..rows import audit_from_row, metrics_from_counts, series_from_rows

_AUDIT_SELECT = "id, ts, actor, action, resource, session_id, run_id, trace_id, detail::text"
AUDIT_COLUMNS = (
    "id",
    "ts",
    "actor",
    "action",
    "resource",
    "session_id",
    "run_id",
    "trace_id",
    "detail",
    "owner",
)
_TOOL_RUN_COLUMNS = (
    "id",
    "session_id",
    "run_id",
    "trace_id",
    "tool_name",
    "args",
    "status",
    "duration_ms",
    "runtime_mode",
    "started_at",
    "ended_at",
    "error",
    "output",
    "output_ref",
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class PostgresGovernance:
    """Audit, policy, gate, tool-run and metrics queries of the Postgres store."""

    blobs: BlobStore | None
    blob_threshold: int

    def connection(self) -> AbstractContextManager[psycopg.Connection]:
        raise NotImplementedError  # provided by PostgresStore

    def copy_rows(
        self, table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]
    ) -> None:
        raise NotImplementedError  # provided by PostgresStore

    # -- audit ----------------------------------------------------------------------------

    def append_audit(self, rows: Sequence[AuditRow | AuditEntry]) -> None:
        """Append audit entries with one COPY (a bare entry belongs to its actor's trail)."""
        full = [r if isinstance(r, AuditRow) else AuditRow(entry=r, owner=r.actor) for r in rows]
        self.copy_rows(
            "audit",
            AUDIT_COLUMNS,
            (
                (
                    r.entry.id,
                    r.entry.at,
                    r.entry.actor,
                    r.entry.action,
                    r.entry.resource,
                    r.entry.sessionId,
                    r.entry.runId,
                    r.entry.traceId,
                    _dumps(r.entry.detail),
                    r.owner,
                )
                for r in full
            ),
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
        """The owner's entries matching every given filter, newest first, after ``before``."""
        # owner None: every owner's entries (a team admin's view); EVERYONE entries (changes
        # to the default policy) are in every owner's trail
        where = ["owner IN (%s, %s)"] if owner is not None else ["TRUE"]
        args: list[Any] = [owner, EVERYONE] if owner is not None else []
        for column, value in (
            ("actor", actor),
            ("action", action),
            ("session_id", session_id),
            ("run_id", run_id),
            ("trace_id", trace_id),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if from_ is not None:
            where.append("ts >= %s")
            args.append(from_)
        if to is not None:
            where.append("ts < %s")
            args.append(to)
        if before is not None:
            where.append("(ts, id) < (%s, %s)")
            args += [before[0], before[1]]
        sql = (
            f"SELECT {_AUDIT_SELECT} FROM audit WHERE {' AND '.join(where)}"
            " ORDER BY ts DESC, id DESC LIMIT %s"
        )
        with self.connection() as con:
            rows = con.execute(sql, [*args, limit]).fetchall()
        return [audit_from_row(r) for r in rows]

    def audit_for_run(self, run_id: str) -> list[AuditEntry]:
        """Every audit entry of one run, oldest first (whoever's trail holds them)."""
        with self.connection() as con:
            rows = con.execute(
                f"SELECT {_AUDIT_SELECT} FROM audit WHERE run_id = %s ORDER BY ts, id", [run_id]
            ).fetchall()
        return [audit_from_row(r) for r in rows]

    # -- policies -------------------------------------------------------------------------

    def append_policies(self, policies: Sequence[Policy]) -> None:
        """Store policy versions (a version written again replaces itself)."""
        with self.connection() as con, con.cursor() as cur:
            cur.executemany(
                "INSERT INTO policies VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (scope_key, version) DO UPDATE SET updated_at = excluded.updated_at,"
                " updated_by = excluded.updated_by, data = excluded.data",
                [
                    (p.scopeKey, p.version, p.updatedAt, p.updatedBy, p.model_dump_json())
                    for p in policies
                ],
            )

    def latest_policies(self) -> dict[str, Policy]:
        """The newest version of each policy scope."""
        with self.connection() as con:
            rows = con.execute(
                "SELECT DISTINCT ON (scope_key) data::text FROM policies "
                "ORDER BY scope_key, version DESC"
            ).fetchall()
        policies = [Policy.model_validate_json(r[0]) for r in rows]
        return {p.scopeKey: p for p in policies}

    def policy_versions(self, scope_key: str) -> list[Policy]:
        """Every stored version of a scope, oldest first."""
        with self.connection() as con:
            rows = con.execute(
                "SELECT data::text FROM policies WHERE scope_key = %s ORDER BY version",
                [scope_key],
            ).fetchall()
        return [Policy.model_validate_json(r[0]) for r in rows]

    # -- gates ----------------------------------------------------------------------------

    def upsert_gates(self, gates: Sequence[tuple[GateItem, str]]) -> None:
        """Insert or replace gates (each with its owner) in one pipelined statement."""
        with self.connection() as con, con.cursor() as cur:
            cur.executemany(
                "INSERT INTO gate_items VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (gate_id) DO UPDATE SET owner = excluded.owner,"
                " session_id = excluded.session_id, run_id = excluded.run_id,"
                " status = excluded.status, created_at = excluded.created_at,"
                " resolved_at = excluded.resolved_at, data = excluded.data",
                [
                    (
                        g.gateId,
                        owner,
                        g.sessionId,
                        g.runId,
                        g.status,
                        g.createdAt,
                        g.resolvedAt,
                        g.model_dump_json(),
                    )
                    for g, owner in gates
                ],
            )

    def _gates(self, sql: str, args: Sequence[Any]) -> list[tuple[GateItem, str]]:
        with self.connection() as con:
            rows = con.execute(sql, args).fetchall()
        return [(GateItem.model_validate_json(r[0]), r[1]) for r in rows]

    def pending_gates(self) -> list[tuple[GateItem, str]]:
        """Gates still pending, oldest first, with their owners."""
        return self._gates(
            "SELECT data::text, owner FROM gate_items WHERE status = 'pending' ORDER BY created_at",
            [],
        )

    def get_gate(self, gate_id: str) -> tuple[GateItem, str] | None:
        """A gate and its owner."""
        found = self._gates(
            "SELECT data::text, owner FROM gate_items WHERE gate_id = %s", [gate_id]
        )
        return found[0] if found else None

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
            ("data->>'toolName'", tool_name),
        )
        for column, value in filters:
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        found = self._gates(
            f"SELECT data::text, owner FROM gate_items WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, gate_id DESC LIMIT %s",
            [*args, limit],
        )
        return [g for g, _ in found]

    # -- tool runs ------------------------------------------------------------------------

    def offload_outputs(self, rows: Sequence[ToolRunRow]) -> dict[int, str]:
        """Store outputs too long for a row in the object store: row index -> reference."""
        if self.blobs is None:
            return {}
        return {
            i: self.blobs.put("tool-output", r.output.encode())
            for i, r in enumerate(rows)
            if len(r.output) > self.blob_threshold
        }

    def append_tool_runs(
        self, rows: Sequence[ToolRunRow], *, refs: dict[int, str] | None = None
    ) -> None:
        """Append tool runs with one COPY (long outputs: offloaded, or cut to the limit)."""
        if refs is None:
            refs = self.offload_outputs(rows)
        self.copy_rows(
            "tool_runs",
            _TOOL_RUN_COLUMNS,
            (
                (
                    r.id,
                    r.session_id,
                    r.run_id,
                    r.trace_id,
                    r.tool_name,
                    _dumps(r.args),
                    r.status,
                    r.duration_ms,
                    r.runtime_mode,
                    r.started_at,
                    r.ended_at,
                    _dumps(r.error) if r.error is not None else None,
                    r.output[: self.blob_threshold if i in refs else TOOL_OUTPUT_LIMIT],
                    refs.get(i),
                )
                for i, r in enumerate(rows)
            ),
        )

    def tool_runs_of(self, run_id: str) -> list[ToolRunRow]:
        """The tool runs of one run, in the order they started (offloaded outputs read back)."""
        with self.connection() as con:
            rows = con.execute(
                "SELECT id, session_id, run_id, trace_id, tool_name, args::text, status,"
                " duration_ms, runtime_mode, started_at, ended_at, error::text, output,"
                " output_ref FROM tool_runs WHERE run_id = %s ORDER BY started_at, id",
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
                output=self._output(r[12], r[13]),
            )
            for r in rows
        ]

    def _output(self, head: str, ref: str | None) -> str:
        if ref is None:
            return head
        if self.blobs is None:
            return head  # stored by a server with an object store; this one has none
        return self.blobs.get(ref).decode()

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
                cond.append(f"{key} IN (SELECT id FROM runs WHERE owner = %s)")
                args.append(owner)
            if from_ is not None:
                cond.append(f"{column} >= %s")
                args.append(from_)
            if to is not None:
                cond.append(f"{column} < %s")
                args.append(to)
            return " AND ".join(cond), args

        def ms(a: str, b: str) -> str:
            return f"(extract(epoch FROM ({a} - {b})) * 1000)::float8"

        with self.connection() as con:
            where, args = window("created_at", "id")
            latency = ms("ended_at", "created_at")
            runs = con.execute(
                "SELECT count(*),"
                " count(*) FILTER (WHERE status = 'completed'),"
                " count(*) FILTER (WHERE status IN ('failed', 'interrupted')),"
                " count(*) FILTER (WHERE status = 'interrupted'),"
                " count(*) FILTER (WHERE status = 'aborted'),"
                " count(*) FILTER (WHERE status IN ('accepted', 'running')),"
                f" percentile_cont(0.5) WITHIN GROUP (ORDER BY {latency})"
                "   FILTER (WHERE ended_at IS NOT NULL),"
                f" percentile_cont(0.95) WITHIN GROUP (ORDER BY {latency})"
                "   FILTER (WHERE ended_at IS NOT NULL)"
                f" FROM runs WHERE {where}",
                args,
            ).fetchone()
            where, args = window("started_at")
            tools = con.execute(
                "SELECT count(*),"
                " count(*) FILTER (WHERE status IN ('failed', 'timeout')),"
                " count(*) FILTER (WHERE status = 'timeout'),"
                " count(*) FILTER (WHERE status = 'denied'),"
                " count(*) FILTER (WHERE status = 'rejected'),"
                " percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)"
                f" FROM tool_runs WHERE {where}",
                args,
            ).fetchone()
            where, args = window("created_at")
            wait = ms("resolved_at", "created_at")
            gates = con.execute(
                "SELECT count(*),"
                " count(*) FILTER (WHERE status = 'pending'),"
                " count(*) FILTER (WHERE status = 'approved'),"
                " count(*) FILTER (WHERE status = 'rejected'),"
                " count(*) FILTER (WHERE status = 'expired'),"
                f" percentile_cont(0.5) WITHIN GROUP (ORDER BY {wait})"
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
        q = series_queries(POSTGRES, from_, to, bucket_s, owner)
        with self.connection() as con:
            runs, tools, gates, by_tool = (
                con.execute(sql, args).fetchall()
                for sql, args in (q.runs, q.tools, q.gates, q.by_tool)
            )
        return series_from_rows(runs, tools, gates, by_tool)
