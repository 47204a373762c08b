"""The cloud's intake on a real Postgres: batches from a real DuckDB outbox go in once,
however often they are replayed, duplicated or reordered; a diverged session is held and
marked as a conflict on the cloud, nothing overwritten; bad input gets a clear error."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from openfoal_kernel.protocol import (
    AuditEntry,
    ChatMessage,
    ErrorCode,
    OpenFoalError,
    Session,
    utcnow,
)
from openfoal_kernel.protocol.sync import SyncResolveRequest
from openfoal_server_ext.gateway.openapi import openapi_document
from openfoal_server_ext.store import AuditRow, DuckDBStore, EventRow, MessageRow, WriteBatch
from openfoal_server_ext.store.outbox_codec import (
    SYNC_SCHEMA_VERSION,
    decode_chunk,
    encode_columns,
)
from openfoal_server_ext.store.postgres import PostgresStore
from openfoal_server_ext.sync.intake import SyncIntake
from openfoal_server_ext.sync.resolve import (
    CloudResolver,
    history_wire,
    local_history,
    session_records,
)
from openfoal_server_ext.sync.wire import batch_of
from openfoal_testing.cloud import count_rows

pytestmark = pytest.mark.postgres


def _write(store: DuckDBStore, sid: str, start: int, n: int, text: str = "x") -> None:
    now = utcnow()
    store.write_batch(
        WriteBatch(
            sessions={
                sid: Session(id=sid, sessionKey=f"workspace:w/agent:a/dm:x:{sid}", owner="alice")
            },
            events=[
                EventRow(
                    session_id=sid,
                    seq=i,
                    event="agent.delta",
                    payload={"delta": f"{text}{i}"},
                    state_version=i,
                    at=now,
                )
                for i in range(start, start + n)
            ],
            messages=[
                MessageRow(
                    session_id=sid,
                    idx=start,
                    at=now,
                    message=ChatMessage(role="user", content=f"{text}{start}"),
                )
            ],
            audit=[
                AuditRow(
                    entry=AuditEntry(
                        id=f"a-{sid}-{text}-{start}",
                        at=now,
                        actor="alice",
                        action="run.start",
                        resource=sid,
                        sessionId=sid,
                        traceId="t",
                        detail={},
                    ),
                    owner="alice",
                )
            ],
        )
    )


def _copied(tmp_path: Path, sid: str, n: int) -> tuple[DuckDBStore, DuckDBStore]:
    """Store a with events 1..n of ``sid``, and b, a copy of its file (a copied store)."""
    a = DuckDBStore(tmp_path / "a.duckdb")
    _write(a, sid, 1, n)
    a.close()
    shutil.copy(tmp_path / "a.duckdb", tmp_path / "b.duckdb")
    return DuckDBStore(tmp_path / "a.duckdb"), DuckDBStore(tmp_path / "b.duckdb")


@pytest.fixture
def cloud(postgres_url: str) -> Iterator[tuple[PostgresStore, SyncIntake]]:
    store = PostgresStore(postgres_url)
    store.outbox_enabled = False
    yield store, SyncIntake(store)
    store.close()


def test_replayed_duplicated_and_reordered_batches_insert_each_row_once(
    tmp_path: Path, cloud: tuple[PostgresStore, SyncIntake]
) -> None:
    pg, intake = cloud
    local = DuckDBStore(tmp_path / "a.duckdb")
    for k in range(4):
        _write(local, "s1", 1 + 3 * k, 3)
    chunks = local.outbox_pending(max_rows=10_000, max_chunks=1000)
    halves = [chunks[: len(chunks) // 2], chunks[len(chunks) // 2 :]]
    first, sessions = intake.apply("alice", batch_of("alice", halves[1]))  # reordered
    assert first.inserted > 0 and not first.conflicts
    assert [s.syncState for s in sessions] == ["synced"]
    second, _ = intake.apply("alice", batch_of("alice", halves[0]))
    again, _ = intake.apply("alice", batch_of("alice", halves[0]))
    assert again.replayed and again.inserted == second.inserted
    dup, _ = intake.apply("alice", batch_of("alice", chunks + chunks, batch_id="other"))
    assert dup.inserted == 0 and dup.duplicates == 2 * sum(c.rows for c in chunks)
    # the same rows in chunks never seen (encoded anew): the row ids keep them out
    fresh = []
    for c in chunks:
        body = encode_columns(decode_chunk(c.kind, c.body)) + b""
        fresh.append(replace(c, body=gzip.compress(gzip.decompress(body), mtime=1)))
    again_rows, _ = intake.apply("alice", batch_of("alice", fresh, batch_id="re-encoded"))
    assert again_rows.inserted == 0
    assert again_rows.duplicates == sum(c.rows for c in chunks)
    assert count_rows(pg, "events") == 12
    assert count_rows(pg, "messages") == 4
    assert count_rows(pg, "audit") == 4
    assert count_rows(pg, "sessions") == 1
    local.close()


def test_a_diverged_copy_is_held_as_a_conflict_and_overwrites_nothing(
    tmp_path: Path, cloud: tuple[PostgresStore, SyncIntake]
) -> None:
    pg, intake = cloud
    a, b = _copied(tmp_path, "s1", 3)
    _write(a, "s1", 4, 2, text="from-a")
    _write(b, "s1", 4, 3, text="from-b")
    _write(b, "s2", 1, 2)  # another session of b's: not held
    ra, _ = intake.apply("alice", batch_of("alice", a.outbox_pending(10_000, 1000)))
    assert not ra.conflicts
    rb, _ = intake.apply("alice", batch_of("alice", b.outbox_pending(10_000, 1000)))
    assert [c.sessionId for c in rb.conflicts] == ["s1"]
    assert rb.conflicts[0].detail["events"] == {"firstDiverging": 4}
    with pg.connection() as con:
        rows = con.execute(
            "SELECT seq, payload->>'delta' FROM events WHERE session_id = 's1' ORDER BY seq"
        ).fetchall()
    assert rows == [(1, "x1"), (2, "x2"), (3, "x3"), (4, "from-a4"), (5, "from-a5")]
    got = pg.get_session("s1")
    assert got is not None and got.syncState == "conflict"
    assert [e.seq for e in pg.get_events("s2", after_seq=0, limit=10)] == [1, 2]
    a.close()
    b.close()


def test_a_copy_diverging_at_the_last_stored_row_is_a_conflict_and_appends_are_not(
    tmp_path: Path, cloud: tuple[PostgresStore, SyncIntake]
) -> None:
    """The divergence join only looks at sessions whose staged rows reach back into the
    stored ones: a batch starting at the last stored seq still reaches it."""
    pg, intake = cloud
    a, b = _copied(tmp_path, "s1", 2)
    _write(a, "s1", 3, 1, text="from-a")
    ra, _ = intake.apply("alice", batch_of("alice", a.outbox_pending(10_000, 1000)))
    assert not ra.conflicts  # the cloud holds s1 up to seq 3
    _write(b, "s1", 3, 2, text="from-b")  # starts at the last stored seq, with other content
    events = [c for c in b.outbox_pending(10_000, 1000) if c.kind == "events"]
    rb, _ = intake.apply("alice", batch_of("alice", events[-1:]))  # only seq 3 and 4
    assert [c.sessionId for c in rb.conflicts] == ["s1"]
    assert rb.conflicts[0].detail["events"] == {"firstDiverging": 3}
    _write(a, "s2", 1, 2)
    intake.apply("alice", batch_of("alice", a.outbox_pending(10_000, 1000)))
    _write(a, "s2", 3, 3)  # appends only: after everything stored
    more, _ = intake.apply("alice", batch_of("alice", a.outbox_pending(10_000, 1000)))
    assert not more.conflicts and more.inserted >= 3
    with pg.connection() as con:
        rows = con.execute(
            "SELECT session_id, seq, payload->>'delta' FROM events ORDER BY session_id, seq"
        ).fetchall()
    assert rows == [
        ("s1", 1, "x1"),
        ("s1", 2, "x2"),
        ("s1", 3, "from-a3"),
        *[("s2", i, f"x{i}") for i in range(1, 6)],
    ]
    a.close()
    b.close()


def test_bad_batches_get_clear_errors_and_write_nothing(
    tmp_path: Path, cloud: tuple[PostgresStore, SyncIntake]
) -> None:
    pg, intake = cloud
    local = DuckDBStore(tmp_path / "a.duckdb")
    _write(local, "s1", 1, 2)
    chunks = local.outbox_pending(10_000, 1000)
    with pytest.raises(OpenFoalError) as other:
        intake.apply("bob", batch_of("bob", chunks))  # alice's rows under bob's name
    assert other.value.code == ErrorCode.FORBIDDEN
    version = batch_of("alice", chunks).model_copy(update={"schemaVersion": 99})
    with pytest.raises(OpenFoalError, match="unknown sync schema version 99") as bad:
        intake.apply("alice", version)
    assert bad.value.code == ErrorCode.INVALID_REQUEST
    broken = batch_of("alice", chunks)
    broken.chunks[1] = broken.chunks[1].model_copy(update={"data": "bm90IGd6aXA="})
    with pytest.raises(OpenFoalError, match="not gzip JSON"):
        intake.apply("alice", broken)
    assert count_rows(pg, "events") == 0 and count_rows(pg, "sessions") == 0
    # bob may not add rows to alice's session once it is there
    intake.apply("alice", batch_of("alice", chunks))
    sneaky = [c for c in chunks if c.kind == "events"]
    with pytest.raises(OpenFoalError, match="belongs to another user"):
        intake.apply("bob", batch_of("bob", sneaky, batch_id="x"))
    local.close()


def test_keep_local_carries_the_held_rows_and_refuses_foreign_ones(
    tmp_path: Path, cloud: tuple[PostgresStore, SyncIntake]
) -> None:
    pg, intake = cloud
    a, b = _copied(tmp_path, "s1", 2)
    _write(a, "s1", 3, 1, text="from-a")
    _write(b, "s1", 3, 2, text="from-b")
    intake.apply("alice", batch_of("alice", a.outbox_pending(10_000, 1000)))
    pushed = b.outbox_pending(10_000, 1000)
    rb, _ = intake.apply("alice", batch_of("alice", pushed, batch_id="from-b"))
    assert [c.sessionId for c in rb.conflicts] == ["s1"]
    assert count_rows(pg, "audit WHERE id = 'a-s1-from-b-3'") == 0  # held back
    session, events, messages = local_history(b, "s1")
    records = session_records(b, session, events)
    resolver = CloudResolver(pg)

    def request(history: object) -> SyncResolveRequest:
        return SyncResolveRequest(
            schemaVersion=SYNC_SCHEMA_VERSION,
            user="alice",
            sessionId="s1",
            resolution="keep_local",
            local=history,
        )

    # a history whose audit entry belongs to bob, or to another session: refused, nothing moved
    foreign = history_wire(session, events, messages, records)
    bobs = WriteBatch(audit=[replace(r, owner="bob") for r in records.audit])
    with pytest.raises(OpenFoalError, match="audit rows of another user") as other_user:
        resolver.resolve("alice", request(history_wire(session, events, messages, bobs)))
    assert other_user.value.code == ErrorCode.FORBIDDEN
    elsewhere = WriteBatch(
        audit=[
            replace(r, entry=r.entry.model_copy(update={"sessionId": "s2"})) for r in records.audit
        ]
    )
    with pytest.raises(OpenFoalError, match="history of another session"):
        resolver.resolve("alice", request(history_wire(session, events, messages, elsewhere)))
    assert count_rows(pg, "audit WHERE id = 'a-s1-from-b-3'") == 0
    assert pg.get_session("s1").syncState == "conflict"  # type: ignore[union-attr]
    # b's own history: the cloud takes it, and the rows it held back
    resolver.resolve("alice", request(foreign))
    assert count_rows(pg, "audit WHERE id = 'a-s1-from-b-3'") == 1
    assert [e.payload["delta"] for e in pg.get_events("s1", after_seq=0, limit=10)] == [
        "x1",
        "x2",
        "from-b3",
        "from-b4",
    ]
    a.close()
    b.close()


def test_the_sync_routes_are_in_the_openapi_document_of_a_cloud_only() -> None:
    local = openapi_document()
    cloud = openapi_document(cloud=True)
    routes = {
        "/openfoal/api/sync/batches",
        "/openfoal/api/sync/resolutions",
        "/openfoal/api/sync/conflicts",
    }
    assert not routes & set(local["paths"])
    assert routes <= set(cloud["paths"])
    body = cloud["paths"]["/openfoal/api/sync/batches"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/SyncBatch")
    assert "SyncBatchResult" in cloud["components"]["schemas"]
    assert "SyncBatch" not in local["components"]["schemas"]
    assert "/openfoal/api/sync.status" in local["paths"]
