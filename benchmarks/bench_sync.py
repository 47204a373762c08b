"""Sync of a user's DuckDB outbox into the cloud's Postgres, against a raw ``COPY``.

Measured: ``EVENTS`` delta events written to a DuckDB store (``write_batch`` in batches of
``BATCH``: the outbox is filled in the same transactions, not timed), then synced: pending
chunks read from the outbox (up to 50,000 rows a batch), put in a wire batch (serialised to
JSON and parsed back, as over HTTP), applied by the cloud's intake (staging ``COPY`` then
``INSERT ... ON CONFLICT DO NOTHING``) into a fresh Postgres database, and acked. The push
over HTTP is left out (the loopback adds little; it is what the e2e tests cover). Then the
whole run again under new batch ids: it must insert 0 rows in no more time than the first
pass. Baseline, in the same run: the same rows by a bare ``COPY`` into another fresh
database. Last, a sustained load of ``LOAD_PER_S`` events/s for ``LOAD_S`` seconds with sync
running in the same loop: how the pending outbox grows.
Target (issue 11): >= 50,000 rows/s; the replay inserts 0 rows and takes <= the first pass.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from openfoal_kernel.protocol import Session
from openfoal_kernel.protocol.sync import SyncBatch
from openfoal_server_ext.cloud_services import PrivatePostgres
from openfoal_server_ext.store import DuckDBStore, EventRow, WriteBatch
from openfoal_server_ext.store.postgres import PostgresStore
from openfoal_server_ext.store.postgres.store import EVENT_COLUMNS
from openfoal_server_ext.sync.intake import SyncIntake
from openfoal_server_ext.sync.wire import batch_of

from ._table import Row, print_table

EVENTS = int(os.environ.get("OPENFOAL_BENCH_SYNC_EVENTS", "1000000"))
BATCH = 20_000
PUSH_ROWS = 50_000
TARGET_PER_S = 50_000.0
LOAD_PER_S = 2_000
LOAD_S = float(os.environ.get("OPENFOAL_BENCH_SYNC_LOAD_S", "10"))

_SESSION = "ses_0123456789abcdef0123"
_RUN = "run_0123456789abcdef0123"
_TRACE = "0123456789abcdef0123456789abcdef"
_AT = datetime.now(timezone.utc)
_USER = "bench"


def make_rows(start: int, count: int, session: str = _SESSION) -> list[EventRow]:
    """Delta events as the hub stages them, numbered from ``start``."""
    return [
        EventRow(
            session_id=session,
            seq=i,
            event="agent.delta",
            state_version=i,
            at=_AT,
            run_id=_RUN,
            trace_id=_TRACE,
            payload={"sessionId": session, "delta": f"tok{i % 97} ", "runId": _RUN},
        )
        for i in range(start, start + count)
    ]


def fill(store: DuckDBStore) -> None:
    """Write the events (and their outbox chunks) to the local store."""
    session = Session(id=_SESSION, sessionKey="workspace:w/agent:a/main", owner=_USER)
    for start in range(1, EVENTS + 1, BATCH):
        batch = WriteBatch(events=make_rows(start, min(BATCH, EVENTS + 1 - start)))
        if start == 1:
            batch.sessions[session.id] = session
        store.write_batch(batch)


def sync_pass(local: DuckDBStore, intake: SyncIntake, tag: str) -> tuple[float, int]:
    """Push every pending chunk; return the seconds taken and the rows inserted."""
    inserted = 0
    began = time.perf_counter()
    n = 0
    while True:
        chunks = local.outbox_pending(PUSH_ROWS, 1000)
        if not chunks:
            break
        n += 1
        wire = batch_of(_USER, chunks, batch_id=f"{tag}-{n}").model_dump_json()
        result, _ = intake.apply(_USER, SyncBatch.model_validate_json(wire))
        inserted += result.inserted
        local.outbox_mark([c.id for c in chunks], "acked", _AT)
    return time.perf_counter() - began, inserted


def raw_rate(url: str) -> float:
    """Rows/s of a bare ``COPY`` per batch, one transaction each."""
    PostgresStore(url).close()  # the same schema
    elapsed = 0.0
    with psycopg.connect(url) as con:
        for start in range(1, EVENTS + 1, BATCH):
            rows = [
                (
                    r.session_id,
                    r.seq,
                    r.event,
                    r.run_id,
                    r.trace_id,
                    r.state_version,
                    r.at,
                    json.dumps(r.payload, separators=(",", ":")),
                )
                for r in make_rows(start, min(BATCH, EVENTS + 1 - start))
            ]
            began = time.perf_counter()
            with con.transaction(), con.cursor() as cur:
                with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            elapsed += time.perf_counter() - began
    return EVENTS / elapsed


def sustained(local: DuckDBStore, intake: SyncIntake) -> tuple[int, int]:
    """Write LOAD_PER_S events/s in 100 ms ticks, syncing in the time left of each tick;
    return the largest and the last pending row count."""
    session = "ses_load0123456789abcdef"
    per_tick = LOAD_PER_S // 10
    seq, worst, n = 1, 0, 0
    end = time.monotonic() + LOAD_S
    tick = time.monotonic()
    while time.monotonic() < end:
        local.write_batch(WriteBatch(events=make_rows(seq, per_tick, session)))
        seq += per_tick
        tick += 0.1
        while time.monotonic() < tick:
            chunks = local.outbox_pending(PUSH_ROWS, 1000)
            if not chunks:
                time.sleep(max(0.0, tick - time.monotonic()))
                break
            n += 1
            intake.apply(_USER, batch_of(_USER, chunks, batch_id=f"load-{n}"))
            local.outbox_mark([c.id for c in chunks], "acked", _AT)
        worst = max(worst, local.outbox_counts()["pending"])
    return worst, local.outbox_counts()["pending"]


def main() -> bool:
    """Measure, print the table, and return whether the targets were met."""
    server = PrivatePostgres().start()
    tmp = Path(tempfile.mkdtemp(prefix="openfoal-bench-sync-"))
    try:
        raw = raw_rate(server.create_database("bench_raw"))
        cloud = PostgresStore(server.create_database("bench_sync"))
        cloud.outbox_enabled = False
        local = DuckDBStore(tmp / "local.duckdb")
        fill(local)
        intake = SyncIntake(cloud)
        first_s, first_rows = sync_pass(local, intake, "first")
        local.con.execute("UPDATE outbox SET state = 'pending'")  # the whole run again
        replay_s, replay_rows = sync_pass(local, intake, "replay")
        worst, last = sustained(local, intake)
        with cloud.connection() as con:
            row = con.execute("SELECT count(*) FROM events").fetchone()
        stored = int(row[0]) if row else 0
        local.close()
        cloud.close()
    finally:
        server.stop()
    if first_rows != EVENTS + 1:  # the events and the session row
        raise RuntimeError(f"the first pass inserted {first_rows} rows, expected {EVENTS + 1}")
    rate = EVENTS / first_s
    rows = [
        Row(
            metric=f"events/s synced DuckDB outbox -> Postgres ({PUSH_ROWS:,}/batch)",
            value=f"{rate:,.0f}/s ({rate / raw:.0%} of raw)",
            baseline=f"raw COPY {raw:,.0f}/s",
            target=f">= {TARGET_PER_S:,.0f}/s",
            ok=rate >= TARGET_PER_S,
        ),
        Row(
            metric="replay of the whole run: rows inserted",
            value=f"{replay_rows}",
            baseline=f"first pass {first_rows:,}",
            target="0",
            ok=replay_rows == 0,
        ),
        Row(
            metric="replay of the whole run: seconds",
            value=f"{replay_s:.1f} s",
            baseline=f"first pass {first_s:.1f} s",
            target="<= first pass",
            ok=replay_s <= first_s,
        ),
        Row(
            metric=f"pending outbox rows under {LOAD_PER_S:,} events/s for {LOAD_S:g} s",
            value=f"max {worst:,}, at the end {last:,}",
            baseline=f"{LOAD_PER_S // 10:,} rows written per 100 ms",
            target="bounded (not growing)",
            ok=last <= 2 * LOAD_PER_S,
        ),
    ]
    ok = print_table(f"Sync DuckDB -> Postgres, {EVENTS:,} events", rows)
    if stored < EVENTS:
        raise RuntimeError(f"the cloud holds {stored} events, expected at least {EVENTS}")
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
