"""The store's governance tables, on a real DuckDB file and a real Postgres database: policies,
gates, tool runs, audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb

from openfoal_kernel.protocol import AuditEntry, GateItem, Policy, utcnow
from openfoal_server_ext.store import (
    AuditRow,
    DuckDBStore,
    RunRow,
    Store,
    ToolRunRow,
    WriteBatch,
)
from openfoal_server_ext.store.duckdb_governance import TOOL_OUTPUT_LIMIT
from openfoal_testing.cloud import count_rows


def _gate(n: int, **kw: object) -> GateItem:
    base = {
        "gateId": f"gate_{n:04d}",
        "sessionId": f"ses_{n % 3}",
        "runId": "run_1",
        "toolCallId": f"call_{n}",
        "toolName": "bash.exec",
        "args": {"command": "ls"},
        "argsFingerprint": "fp",
        "risk": "shell",
        "requestedBy": "alice",
        "createdAt": utcnow() + timedelta(seconds=n),
    }
    return GateItem.model_validate({**base, **kw})


def test_policy_versions_are_all_kept_and_survive_reopening(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    v1 = Policy(version=1)
    v2 = v1.model_copy(update={"version": 2, "toolDefault": "gate", "updatedBy": "alice"})
    lab = Policy(scopeKey="workspace:lab", version=1, highRisk="deny")
    store.write_batch(WriteBatch(policies=[v1, v2, lab]))
    store.close()
    store = open_store()
    assert store.policy_versions("default") == [v1, v2]
    assert store.latest_policies() == {"default": v2, "workspace:lab": lab}
    assert store.policy_versions("nothing") == []
    store.close()


def test_gates_upsert_by_id_in_small_and_arrow_sized_batches(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    # 600 rows go through the Arrow path, then every gate is replaced by its resolution
    gates = {f"gate_{n:04d}": (_gate(n), "alice" if n % 2 else "bob") for n in range(600)}
    store.write_batch(WriteBatch(gates=gates))
    resolved = {
        gid: (
            g.model_copy(
                update={
                    "status": "approved",
                    "resolvedBy": owner,
                    "resolvedAt": g.createdAt + timedelta(seconds=1),
                }
            ),
            owner,
        )
        for gid, (g, owner) in gates.items()
        if int(gid[-4:]) < 590
    }
    store.write_batch(WriteBatch(gates=resolved))
    assert count_rows(store, "gate_items") == 600
    pending = store.pending_gates()
    assert [g.gateId for g, _ in pending] == [f"gate_{n:04d}" for n in range(590, 600)]
    assert pending[0][1] == "bob" and pending[1][1] == "alice"
    found = store.get_gate("gate_0001")
    assert found is not None and found[0].status == "approved" and found[1] == "alice"
    assert store.get_gate("gate_missing") is None
    # a small batch (unnest path) replaces too
    one = _gate(599, status="expired", resolvedAt=utcnow())
    store.write_batch(WriteBatch(gates={one.gateId: (one, "alice")}))
    assert store.get_gate("gate_0599") == (one, "alice")

    newest = store.list_gates(owner="alice", limit=3)
    assert [g.gateId for g in newest] == ["gate_0599", "gate_0597", "gate_0595"]
    assert [g.gateId for g in store.list_gates(owner="bob", status="pending", limit=10)] == [
        "gate_0598",
        "gate_0596",
        "gate_0594",
        "gate_0592",
        "gate_0590",
    ]
    assert {g.sessionId for g in store.list_gates(owner=None, session_id="ses_1", limit=1000)} == {
        "ses_1"
    }
    assert len(store.list_gates(owner=None, limit=1000)) == 600
    # one gate by its id, however old; another owner's is not found under "bob"
    assert [g.gateId for g in store.list_gates(owner=None, gate_id="gate_0001", limit=1)] == [
        "gate_0001"
    ]
    assert store.list_gates(owner="bob", gate_id="gate_0001") == []
    store.close()


def test_tool_runs_and_run_policy_version(open_store: Callable[[], Store]) -> None:
    store = open_store()
    start = utcnow()
    rows = [
        ToolRunRow(
            id="call_1",
            session_id="s",
            run_id="r1",
            trace_id="t",
            tool_name="bash.exec",
            args={"command": "ls"},
            status="success",
            duration_ms=12.5,
            runtime_mode="local",
            started_at=start,
            ended_at=start + timedelta(milliseconds=13),
            output="x" * (TOOL_OUTPUT_LIMIT + 100),
        ),
        ToolRunRow(
            id="call_2",
            session_id="s",
            run_id="r1",
            trace_id="t",
            tool_name="http.request",
            args={},
            status="failed",
            duration_ms=3.0,
            runtime_mode="cloud",
            started_at=start + timedelta(seconds=1),
            ended_at=start + timedelta(seconds=2),
            error={"code": "TOOL_EXEC_FAILED", "message": "boom"},
        ),
        ToolRunRow(
            id="call_1",
            session_id="s",
            run_id="r2",
            trace_id="t2",
            tool_name="file.read",
            args={},
            status="success",
            duration_ms=1.0,
            runtime_mode="local",
            started_at=start,
            ended_at=start,
        ),
    ]
    run = RunRow(
        id="r1",
        session_id="s",
        owner="alice",
        trace_id="t",
        status="completed",
        created_at=start,
        policy_version=7,
    )
    store.write_batch(WriteBatch(tool_runs=rows, runs={"r1": run}))
    got = store.tool_runs_of("r1")
    assert [r.id for r in got] == ["call_1", "call_2"]  # the same call id in another run is apart
    assert len(got[0].output) == TOOL_OUTPUT_LIMIT and got[0].duration_ms == 12.5
    assert got[1].error == {"code": "TOOL_EXEC_FAILED", "message": "boom"} and got[0].error is None
    assert got[1].runtime_mode == "cloud" and got[0].args == {"command": "ls"}
    stored_run = store.get_run("r1")
    assert stored_run is not None and stored_run.policy_version == 7
    store.close()


def test_audit_owner_column_bare_entries_and_run_lookup(open_store: Callable[[], Store]) -> None:
    store = open_store()
    now = utcnow()
    bare = AuditEntry(
        id="a1",
        at=now,
        actor="system",
        action="policy.create",
        resource="policy:default",
        traceId="t0",
    )
    owned = AuditEntry(
        id="a2",
        at=now + timedelta(seconds=1),
        actor="carol",
        action="gate.approved",
        resource="gate:g",
        runId="r1",
        traceId="t1",
    )
    later = AuditEntry(
        id="a0",
        at=now + timedelta(seconds=2),
        actor="alice",
        action="tool.result",
        resource="tool:x",
        runId="r1",
        traceId="t1",
    )
    store.write_batch(
        WriteBatch(
            audit=[AuditRow(entry=owned, owner="alice"), AuditRow(entry=later, owner="alice")]
        )
    )
    store.append_audit([bare])  # the interface as it was: an entry without an owner is its actor's
    assert store.query_audit(owner="system") == [bare]
    assert store.query_audit(owner="alice") == [later, owned]
    assert store.query_audit(owner="carol") == []  # the actor of an entry in alice's trail
    assert store.audit_for_run("r1") == [owned, later]
    store.close()


def test_an_audit_table_from_before_owners_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE audit (
        id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL, resource VARCHAR NOT NULL, session_id VARCHAR,
        run_id VARCHAR, trace_id VARCHAR NOT NULL, detail JSON NOT NULL)""")
    con.execute("INSERT INTO audit VALUES ('old', now(), 'u', 'a', 'r', NULL, 'r1', 't', '{}')")
    con.close()
    store = DuckDBStore(path)
    assert store.query_audit(owner="")[0].id == "old"
    assert [e.id for e in store.audit_for_run("r1")] == ["old"]
    indexes = {
        r[0] for r in store.con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
    }
    assert {"audit_run_idx", "tool_runs_run_idx"} <= indexes
    store.close()


def test_gates_filter_by_tool_and_keep_their_preview(open_store: Callable[[], Store]) -> None:
    store = open_store()
    preview = {"path": "a.txt", "exists": True, "diff": "-old\n+new\n", "added": 1, "removed": 1}
    gates = {
        g.gateId: (g, "alice")
        for g in [
            _gate(1),
            _gate(2, toolName="file.write", args={"path": "a.txt"}, preview=preview),
            _gate(3, toolName="file.write", status="approved"),
        ]
    }
    store.write_batch(WriteBatch(gates=gates))
    writes = store.list_gates(owner="alice", tool_name="file.write")
    assert [g.gateId for g in writes] == ["gate_0003", "gate_0002"]
    assert writes[1].preview is not None and writes[1].preview.diff == "-old\n+new\n"
    pending = store.list_gates(owner="alice", tool_name="file.write", status="pending")
    assert [g.gateId for g in pending] == ["gate_0002"]
    assert [g.gateId for g in store.list_gates(owner="alice", tool_name="bash.exec")] == [
        "gate_0001"
    ]
    assert store.list_gates(owner="alice", tool_name="http.request") == []
    store.close()
