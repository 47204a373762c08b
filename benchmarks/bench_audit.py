"""``audit.query`` by session and time on a large audit trail, against a primary-key lookup.

Measured: :meth:`AuditService.query` (the ``audit.query`` handler: commit of the write window,
the store call on the :class:`StoreWorker` thread, entries to their wire form, the cursor) with
``sessionId`` + ``from``/``to`` and the default limit, on a fresh DuckDB store holding
``ENTRIES`` audit entries of ``SESSIONS`` sessions (100 owners). The trail is written as a
server writes it, in time order: 30 days ending now, about 100 sessions active at a time,
each with about 100 entries (runs, tool calls and results with their arguments and output,
gates) over a few hours. Each query asks for one random session's entries from a day before
its first entry to a day after its last, as its owner. Filling is not measured (one bulk
``INSERT ... SELECT`` into the store's ``audit`` table, then a checkpoint). Baseline,
interleaved in the same run on the same connection and worker thread: a primary-key lookup
``SELECT data FROM sessions WHERE id = ?`` of a random session. Target: p50 <= 20 ms.

``OPENFOAL_BENCH_AUDIT_ENTRIES`` shrinks the trail (default 1,000,000);
``OPENFOAL_BENCH_AUDIT_QUERIES`` sets the number of queries (default 300).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from openfoal_kernel.protocol.methods import AuditQueryParams
from openfoal_server_ext.services.audit import AuditService
from openfoal_server_ext.store import DuckDBStore, StoreWorker

from ._table import Row, percentile, print_table

ENTRIES = int(os.environ.get("OPENFOAL_BENCH_AUDIT_ENTRIES", "1000000"))
QUERIES = int(os.environ.get("OPENFOAL_BENCH_AUDIT_QUERIES", "300"))
SESSIONS = max(1, ENTRIES // 100)
CONCURRENT = min(100, SESSIONS)  # sessions active at the same time
OWNERS = 100
SPAN = timedelta(days=30)
TARGET_MS = 20.0
SEED = 20240601

# One entry per row of range(ENTRIES), in time order. Session ``s``: one of CONCURRENT
# sessions of the time slot ``i // per_slot``; its runs follow each other within the slot.
_FILL = """
INSERT INTO audit (id, ts, actor, action, resource, session_id, run_id, trace_id, detail, owner)
WITH e AS (
    SELECT i, least(i // $per_slot, $slots - 1) AS slot, (hash(i, $seed) % 100)::BIGINT AS dice,
           least(i // $per_slot, $slots - 1) * $concurrent + (hash(i) % $concurrent)::BIGINT AS s
    FROM range($entries) t(i)
), k AS (
    SELECT *, 'user' || (s % $owners) AS who, 'ses_' || substr(md5('s' || s), 1, 24) AS sid,
           s || '-' || ((i % $per_slot) * 10 // $per_slot) AS r,
           'call_' || substr(md5('c' || i // 2), 1, 24) AS call
    FROM e
)
SELECT
    'aud_' || substr(md5('a' || i), 1, 24),
    $start::TIMESTAMPTZ + to_microseconds((i * $step_us)::BIGINT),
    who,
    CASE WHEN dice < 5 THEN 'run.start' WHEN dice < 8 THEN 'gate.requested'
         WHEN dice < 10 THEN 'gate.approved' WHEN dice < 55 THEN 'tool.call'
         ELSE 'tool.result' END,
    CASE WHEN dice < 5 THEN 'run:run_' || substr(md5('r' || r), 1, 24)
         WHEN dice < 10 THEN 'gate:gate_' || substr(md5('g' || i), 1, 24)
         ELSE 'tool:' || ['bash.exec', 'python.exec', 'fs.read', 'fs.write', 'web.fetch'][
             (1 + hash(i, 7) % 5)::BIGINT] END,
    sid,
    'run_' || substr(md5('r' || r), 1, 24),
    substr(md5('t' || r), 1, 32),
    CASE WHEN dice < 5 THEN json_object('input', 'Load sales_' || i % 97 || '.csv and plot '
             || 'revenue by month, then summarise the three largest changes', 'task', NULL,
             'model', 'claude-sonnet', 'policyVersion', 1 + i % 7)
         WHEN dice < 8 THEN json_object('toolName', 'bash.exec', 'args',
             json_object('command', 'pip install pandas==2.' || i % 3), 'risk', 'high')
         WHEN dice < 10 THEN json_object('via', 'gateway')
         WHEN dice < 55 THEN json_object('toolCallId', call, 'args', json_object('code',
             'import pandas as pd\ndf = pd.read_csv("data/sales_' || i % 97 || '.csv")\n'
             || 'df.groupby("month")["revenue"].sum().plot()'), 'runtimeMode', 'local')
         ELSE json_object('toolCallId', call, 'status', 'success', 'durationMs', 5 + i % 900,
             'error', NULL, 'output', '   month  revenue\n0  2024-01  ' || i % 100000
             || '\n1  2024-02  ' || (i * 7) % 100000 || '\n2  2024-03  ' || (i * 13) % 100000)
    END,
    who
FROM k
"""

_SESSIONS = """
INSERT INTO sessions (id, owner, session_key, updated_at, data)
SELECT sid, who, 'key_' || sid, $start::TIMESTAMPTZ,
       json_object('id', sid, 'owner', who, 'status', 'idle', 'runtimeMode', 'local')
FROM (SELECT DISTINCT session_id AS sid, owner AS who FROM audit)
"""


def fill(store: DuckDBStore) -> list[tuple[str, str, datetime, datetime]]:
    """Write the trail and one sessions row per session; return each session's
    (id, owner, first entry, last entry)."""
    now = datetime.now(timezone.utc)
    slots = max(1, SESSIONS // CONCURRENT)
    con = store.con
    con.execute("SET threads = 2")  # filling only; the store runs its queries on one
    con.execute(
        _FILL,
        {
            "entries": ENTRIES,
            "per_slot": max(1, ENTRIES // slots),
            "slots": slots,
            "concurrent": CONCURRENT,
            "owners": OWNERS,
            "seed": SEED,
            "start": now - SPAN,
            "step_us": SPAN / timedelta(microseconds=1) / ENTRIES,
        },
    )
    con.execute(_SESSIONS, {"start": now - SPAN})
    con.execute("CHECKPOINT")
    con.execute("SET threads = 1")
    rows = con.execute(
        "SELECT session_id, any_value(owner), min(ts), max(ts) FROM audit GROUP BY session_id"
    ).fetchall()
    count = con.execute("SELECT count(*) FROM audit").fetchone()
    if count is None or count[0] != ENTRIES:
        raise RuntimeError(f"the store holds {count} audit entries, expected {ENTRIES}")
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def measure(
    worker: StoreWorker, sessions: list[tuple[str, str, datetime, datetime]]
) -> tuple[list[float], list[float], int]:
    """Milliseconds per ``audit.query`` and per baseline lookup, interleaved; entries seen."""
    service = AuditService(worker)
    con = worker.store.con  # type: ignore[attr-defined]
    rng = random.Random(SEED)
    day = timedelta(days=1)

    async def query(sid: str, owner: str, first: datetime, last: datetime) -> int:
        params = AuditQueryParams.model_validate(
            {"sessionId": sid, "from": first - day, "to": last + day}
        )
        page: dict[str, Any] = await service.query(owner, params)
        if not page["items"] or any(e["sessionId"] != sid for e in page["items"]):
            raise RuntimeError(f"audit.query for {sid} returned {len(page['items'])} entries")
        return len(page["items"])

    async def lookup(sid: str) -> None:
        row = await worker.call(
            lambda: con.execute("SELECT data FROM sessions WHERE id = ?", [sid]).fetchone()
        )
        if row is None:
            raise RuntimeError(f"no session {sid}")

    for s in rng.sample(sessions, min(10, len(sessions))):  # warm-up
        await query(*s)
        await lookup(s[0])
    measured: list[float] = []
    baseline: list[float] = []
    seen = 0
    for _ in range(QUERIES):
        sid, owner, first, last = rng.choice(sessions)
        t = time.perf_counter()
        seen += await query(sid, owner, first, last)
        measured.append((time.perf_counter() - t) * 1000)
        sid = rng.choice(sessions)[0]
        t = time.perf_counter()
        await lookup(sid)
        baseline.append((time.perf_counter() - t) * 1000)
    return measured, baseline, seen


async def main() -> bool:
    """Fill, measure, print the table, and return whether the target was met."""
    with tempfile.TemporaryDirectory(prefix="openfoal-bench-audit-") as tmp:
        store = DuckDBStore(Path(tmp) / "audit.duckdb")
        started = time.perf_counter()
        sessions = fill(store)
        filled_s = time.perf_counter() - started
        worker = StoreWorker(store)
        try:
            measured, baseline, seen = await measure(worker, sessions)
        finally:
            worker.close()
    p50, p99 = percentile(measured, 50), percentile(measured, 99)
    b50, b99 = percentile(baseline, 50), percentile(baseline, 99)
    print(
        f"filled {ENTRIES:,} entries of {len(sessions):,} sessions in {filled_s:.1f} s; "
        f"{seen / len(measured):.0f} entries per page on average"
    )
    rows = [
        Row(
            metric="audit.query sessionId + from/to, p50",
            value=f"{p50:.2f} ms",
            baseline=f"PK lookup p50 {b50:.2f} ms",
            target=f"<= {TARGET_MS:g} ms",
            ok=p50 <= TARGET_MS,
        ),
        Row(
            metric="audit.query sessionId + from/to, p99",
            value=f"{p99:.2f} ms",
            baseline=f"PK lookup p99 {b99:.2f} ms",
            target="(reported)",
            ok=True,
        ),
    ]
    return print_table(f"audit.query on {ENTRIES:,} audit entries, {len(measured)} queries", rows)


if __name__ == "__main__":
    raise SystemExit(0 if asyncio.run(main()) else 1)
