"""Event ingest into Postgres through the store's bulk path, against a raw ``COPY``.

Measured: ``EVENTS`` delta events written with :meth:`PostgresStore.write_batch` in batches of
``BATCH`` (one transaction and one ``COPY`` each, payloads serialised by the store), into a
fresh database of a private Postgres server started for the run. Baseline, in the same run:
the same rows, already as tuples with their payload text, sent by a bare psycopg ``COPY`` per
batch into the ``events`` table of another fresh database (the same layout). Only the writes
are timed (each batch's rows are built before its clock starts), so memory stays bounded.
Target (issue 11): >= 50,000 events/s.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

import psycopg

from openfoal_server_ext.cloud_services import PrivatePostgres
from openfoal_server_ext.store import EventRow, WriteBatch
from openfoal_server_ext.store.postgres import PostgresStore
from openfoal_server_ext.store.postgres.store import EVENT_COLUMNS

from ._table import Row, print_table

EVENTS = int(os.environ.get("OPENFOAL_BENCH_PG_EVENTS", "1000000"))
BATCH = 20_000
TARGET_PER_S = 50_000.0

_SESSION = "ses_0123456789abcdef0123"
_RUN = "run_0123456789abcdef0123"
_TRACE = "0123456789abcdef0123456789abcdef"
_AT = datetime.now(timezone.utc)


def make_rows(start: int, count: int) -> list[EventRow]:
    """Delta events as the hub stages them, numbered from ``start``."""
    return [
        EventRow(
            session_id=_SESSION,
            seq=i,
            event="agent.delta",
            state_version=i,
            at=_AT,
            run_id=_RUN,
            trace_id=_TRACE,
            payload={"sessionId": _SESSION, "delta": f"tok{i % 97} ", "runId": _RUN},
        )
        for i in range(start, start + count)
    ]


def store_rate(url: str) -> float:
    """Events/s through ``PostgresStore.write_batch``."""
    store = PostgresStore(url)
    elapsed = 0.0
    try:
        for start in range(1, EVENTS + 1, BATCH):
            batch = WriteBatch(events=make_rows(start, min(BATCH, EVENTS + 1 - start)))
            began = time.perf_counter()
            store.write_batch(batch)
            elapsed += time.perf_counter() - began
        stored = store.last_seqs().get(_SESSION)
    finally:
        store.close()
    if stored != EVENTS:
        raise RuntimeError(f"the store holds up to seq {stored}, expected {EVENTS}")
    return EVENTS / elapsed


def raw_rate(url: str) -> float:
    """Events/s of a bare ``COPY`` per batch, one transaction each."""
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
        stored = con.execute("SELECT count(*) FROM events").fetchone()
    if stored is None or stored[0] != EVENTS:
        raise RuntimeError(f"the raw table holds {stored} events, expected {EVENTS}")
    return EVENTS / elapsed


def main() -> bool:
    """Measure, print the table, and return whether the target was met."""
    server = PrivatePostgres().start()
    try:
        raw = raw_rate(server.create_database("bench_raw"))
        through_store = store_rate(server.create_database("bench_store"))
    finally:
        server.stop()
    row = Row(
        metric=f"events/s through PostgresStore.write_batch ({BATCH:,}/batch)",
        value=f"{through_store:,.0f}/s ({through_store / raw:.0%} of raw)",
        baseline=f"raw COPY {raw:,.0f}/s",
        target=f">= {TARGET_PER_S:,.0f}/s",
        ok=through_store >= TARGET_PER_S,
    )
    return print_table(f"Event ingest into Postgres, {EVENTS:,} events", [row])


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
