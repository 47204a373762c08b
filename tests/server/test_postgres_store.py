"""The Postgres store on a real server: migrations, the pool, COPY, tool outputs offloaded to a
real SeaweedFS, and an object store that refuses writes (a clear error, nothing lost)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import boto3
import psycopg
import pytest

from openfoal_kernel.protocol import utcnow
from openfoal_server_ext.cloud_services import free_port
from openfoal_server_ext.store import DuckDBStore, EventRow, StoreWorker, ToolRunRow
from openfoal_server_ext.store.blobs import BlobStore, BlobStoreError, parse_object_store_url
from openfoal_server_ext.store.duckdb_governance import TOOL_OUTPUT_LIMIT
from openfoal_server_ext.store.postgres import MIGRATIONS, PostgresStore, StoreUnavailable
from openfoal_server_ext.store.select import StoreSettingsError, open_configured_store
from openfoal_testing.cloud import TEST_BUCKET, count_rows

pytestmark = pytest.mark.postgres


def _events(session_id: str, start: int, n: int) -> list[EventRow]:
    return [
        EventRow(
            session_id=session_id,
            seq=i,
            event="agent.delta",
            payload={"delta": str(i)},
            state_version=i,
            at=utcnow(),
            run_id="r",
            trace_id="t",
        )
        for i in range(start, start + n)
    ]


def _tool_run(call_id: str, output: str) -> ToolRunRow:
    start = utcnow()
    return ToolRunRow(
        id=call_id,
        session_id="s",
        run_id="r1",
        trace_id="t",
        tool_name="bash.exec",
        args={"command": "cat big.log"},
        status="success",
        duration_ms=5.0,
        runtime_mode="local",
        started_at=start,
        ended_at=start + timedelta(milliseconds=5),
        output=output,
    )


def test_migrations_run_once_and_are_recorded(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    assert first.migrations_applied == [v for v, _, _ in MIGRATIONS]
    assert first.schema_version == MIGRATIONS[-1][0]
    first.close()
    again = PostgresStore(postgres_url)
    assert again.migrations_applied == [] and again.schema_version == MIGRATIONS[-1][0]
    with again.connection() as con:
        rows = con.execute("SELECT version, description FROM schema_migrations ORDER BY 1")
        assert rows.fetchall() == [(v, d) for v, d, _ in MIGRATIONS]
    again.close()


def test_servers_starting_together_migrate_once(postgres_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url), range(4)))
    applied = sorted(v for s in stores for v in s.migrations_applied)
    assert applied == [v for v, _, _ in MIGRATIONS]  # each step by exactly one of them
    for store in stores:
        store.close()


def test_the_pool_serves_readers_on_several_threads(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, min_size=2, max_size=4)
    store.append_events(_events("a", 1, 100))
    with ThreadPoolExecutor(8) as pool:
        seqs = list(
            pool.map(lambda n: store.get_events("a", after_seq=n, limit=1)[0].seq, range(40))
        )
    assert seqs == [n + 1 for n in range(40)]
    stats = store.pool.get_stats()
    assert stats["pool_max"] == 4 and stats.get("requests_num", 0) >= 40
    store.close()


def test_copy_bulk_path_is_all_or_nothing(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.append_events(_events("a", 1, 20_000))
    assert store.last_seqs() == {"a": 20_000} and store.max_state_version() == 20_000
    assert [e.seq for e in store.get_events("a", after_seq=19_997, limit=5)] == [
        19_998,
        19_999,
        20_000,
    ]
    rows = _events("b", 1, 1_000)
    rows[500].seq = "not a number"  # type: ignore[assignment]
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        store.append_events(rows)
    assert "b" not in store.last_seqs()  # the COPY failed as a whole
    assert count_rows(store, "events") == 20_000
    store.close()


def test_large_tool_outputs_go_to_the_object_store_and_come_back(
    postgres_url: str, object_store_url: str
) -> None:
    blobs = BlobStore(object_store_url)
    store = PostgresStore(postgres_url, blobs=blobs)
    big = "".join(f"line {i}\n" for i in range(20_000))  # whole, past the local store's limit
    assert len(big) > TOOL_OUTPUT_LIMIT
    store.append_tool_runs([_tool_run("call_big", big), _tool_run("call_small", "ok")])
    by_id = {r.id: r for r in store.tool_runs_of("r1")}
    assert by_id["call_big"].output == big and by_id["call_small"].output == "ok"
    with store.connection() as con:
        rows = dict(con.execute("SELECT id, output_ref FROM tool_runs").fetchall())
        head = con.execute("SELECT length(output) FROM tool_runs WHERE id = 'call_big'").fetchone()
    assert rows["call_small"] is None and head == (store.blob_threshold,)
    bucket, key = parse_object_store_url(rows["call_big"])
    assert bucket == TEST_BUCKET and key.startswith(parse_object_store_url(object_store_url)[1])
    stored = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored.decode() == big  # a real object in the real S3 server
    store.close()


@pytest.mark.asyncio
async def test_an_object_store_refusing_writes_fails_the_commit_and_loses_nothing(
    postgres_url: str, object_store_url: str
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the object store is down
    worker = StoreWorker(
        PostgresStore(postgres_url, blobs=BlobStore(object_store_url, endpoint_url=down))
    )
    big = "x" * (TOOL_OUTPUT_LIMIT * 2)
    for row in _events("s", 1, 3):
        worker.stage_event(row)
    worker.stage_tool_run(_tool_run("call_big", big))
    with pytest.raises(BlobStoreError, match=f"refused to store {object_store_url}/tool-output/"):
        await worker.commit()
    assert await worker.call(worker.store.last_seqs) == {}  # nothing half-written
    assert await worker.call(worker.store.tool_runs_of, "r1") == []
    worker.store.blobs = BlobStore(object_store_url)  # the object store is back
    await worker.commit()  # the kept batch goes in whole
    assert await worker.call(worker.store.last_seqs) == {"s": 3}
    (stored,) = await worker.call(worker.store.tool_runs_of, "r1")
    assert stored.output == big
    worker.close()


def test_settings_choose_the_store(tmp_path: Path, postgres_url: str) -> None:
    with pytest.raises(StoreSettingsError, match="OPENFOAL_DATABASE_URL"):
        open_configured_store(
            role="cloud", database_url="", object_store_url="", db_path=tmp_path / "x.duckdb"
        )
    local = open_configured_store(
        role="local", database_url="", object_store_url="", db_path=tmp_path / "x.duckdb"
    )
    assert isinstance(local, DuckDBStore)
    local.close()
    cloud = open_configured_store(
        role="cloud", database_url=postgres_url, object_store_url="", db_path=tmp_path / "y.duckdb"
    )
    assert isinstance(cloud, PostgresStore) and cloud.blobs is None
    assert not (tmp_path / "y.duckdb").exists()
    cloud.close()


def test_a_bad_object_store_url_is_refused() -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        BlobStore("http://example.invalid/bucket")


def test_an_unreachable_or_malformed_database_is_a_clear_error() -> None:
    url = f"postgresql://openfoal:s3cret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(StoreUnavailable, match="cannot connect to Postgres at") as caught:
        PostgresStore(url, connect_timeout_s=2)
    assert "s3cret" not in str(caught.value)  # the password never reaches a log
    with pytest.raises(StoreUnavailable, match="malformed"):
        PostgresStore("postgresql://u@h/db?no_such_option=1")
