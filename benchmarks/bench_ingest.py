"""Event ingest into DuckDB through the store's batched write path, against a raw Arrow insert.

Measured: ``EVENTS`` delta events (the rows the hub stages for ``agent.delta``) go through
:class:`StoreWorker` staging and ``commit()`` in batches of ``BATCH`` (about what one 50 ms
commit window holds at 100,000 events/s), into a fresh store file; the rate counts staging,
payload serialisation and every commit. Baseline, in the same run: the same rows, already in
column form with their payload text, inserted as one registered Arrow table per batch into the
``events`` table of another fresh store (the same layout). The best of ``ROUNDS`` alternating
rounds of each is kept. Target (the issue "The spine"): >= 100,000 events/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from openfoal_server_ext.store import DuckDBStore, EventRow, StoreWorker

from ._table import Row, print_table

EVENTS = int(os.environ.get("OPENFOAL_BENCH_INGEST_EVENTS", "200000"))
BATCH = 5_000
ROUNDS = 3
TARGET_PER_S = 100_000.0

_SESSION = "ses_0123456789abcdef0123"
_RUN = "run_0123456789abcdef0123"
_TRACE = "0123456789abcdef0123456789abcdef"


def make_rows(count: int) -> list[EventRow]:
    """Delta events as the hub stages them (payload with session, run and trace ids)."""
    at = datetime.now(timezone.utc)
    return [
        EventRow(
            session_id=_SESSION,
            seq=i + 1,
            event="agent.delta",
            state_version=i + 1,
            at=at,
            run_id=_RUN,
            trace_id=_TRACE,
            payload={
                "sessionId": _SESSION,
                "delta": f"tok{i % 97} ",
                "runId": _RUN,
                "traceId": _TRACE,
            },
        )
        for i in range(count)
    ]


async def store_rate(rows: list[EventRow], path: Path) -> float:
    """Events/s through ``StoreWorker.stage_event`` + ``commit()``."""
    worker = StoreWorker(DuckDBStore(path), window_s=3600)  # only explicit commits
    try:
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            for row in rows[i : i + BATCH]:
                worker.stage_event(row)
            await worker.commit()
        elapsed = time.perf_counter() - started
        stored = await worker.call(
            lambda: worker.store.con.execute(  # type: ignore[attr-defined]
                "SELECT count(*) FROM events"
            ).fetchone()
        )
    finally:
        worker.close()
    if stored is None or stored[0] != len(rows):
        raise RuntimeError(f"the store holds {stored} events, expected {len(rows)}")
    return len(rows) / elapsed


def raw_columns(rows: list[EventRow]) -> list[dict[str, list[object]]]:
    """The batches as Arrow-ready columns (payload text included): the baseline's input."""
    out = []
    for i in range(0, len(rows), BATCH):
        part = rows[i : i + BATCH]
        out.append(
            {
                "session_id": [r.session_id for r in part],
                "seq": [r.seq for r in part],
                "event": [r.event for r in part],
                "run_id": [r.run_id for r in part],
                "trace_id": [r.trace_id for r in part],
                "state_version": [r.state_version for r in part],
                "ts": [r.at for r in part],
                "payload": [json.dumps(r.payload, separators=(",", ":")) for r in part],
            }
        )
    return out


def raw_rate(batches: list[dict[str, list[object]]], count: int, path: Path) -> float:
    """Events/s of a bare Arrow insert per batch, one transaction each."""
    store = DuckDBStore(path)
    con = store.con
    try:
        started = time.perf_counter()
        for columns in batches:
            table = pa.table(columns)
            con.execute("BEGIN TRANSACTION")
            con.register("_raw_batch", table)
            con.execute(
                "INSERT INTO events (session_id, seq, event, run_id, trace_id, "
                "state_version, ts, payload) SELECT * FROM _raw_batch"
            )
            con.unregister("_raw_batch")
            con.execute("COMMIT")
        elapsed = time.perf_counter() - started
        stored = con.execute("SELECT count(*) FROM events").fetchone()
    finally:
        store.close()
    if stored is None or stored[0] != count:
        raise RuntimeError(f"the raw table holds {stored} events, expected {count}")
    return count / elapsed


async def main() -> bool:
    """Measure, print the table, and return whether the target was met."""
    rows = make_rows(EVENTS)
    batches = raw_columns(rows)
    best_store = best_raw = 0.0
    with tempfile.TemporaryDirectory(prefix="openfoal-bench-ingest-") as tmp:
        for r in range(ROUNDS):
            best_raw = max(best_raw, raw_rate(batches, EVENTS, Path(tmp) / f"raw{r}.duckdb"))
            best_store = max(best_store, await store_rate(rows, Path(tmp) / f"store{r}.duckdb"))
    row = Row(
        metric=f"events/s through StoreWorker stage + commit ({BATCH}/batch)",
        value=f"{best_store:,.0f}/s ({best_store / best_raw:.0%} of raw)",
        baseline=f"raw Arrow insert {best_raw:,.0f}/s",
        target=f">= {TARGET_PER_S:,.0f}/s",
        ok=best_store >= TARGET_PER_S,
    )
    return print_table(f"Event ingest into DuckDB, {EVENTS:,} events, best of {ROUNDS}", [row])


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 1)
