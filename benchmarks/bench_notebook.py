"""``sessions.export`` of a 1,000-turn session, against writing the same notebook with nbformat.

Measured: :meth:`SessionExporter.export` (the ``sessions.export`` handler: commit of the write
window, the transcript, the session's audit trail and gates read on the :class:`StoreWorker`
thread, the cells built and redacted, the audit hash) on a fresh DuckDB store holding one
session of ``TURNS`` turns. Each turn is what a real one leaves: a user message, an assistant
message calling ``python.exec``, the tool result (a few lines of output), the final answer, and
three audit entries (``run.start``, ``tool.call``, ``tool.result``). Filling is not measured.
Baseline, in the same run: ``nbformat.writes`` of the exported notebook (serialising the same
cells once, as ``openfoal export`` then does). Target: median export under 1 s.

``OPENFOAL_BENCH_NOTEBOOK_TURNS`` sets the number of turns (default 1,000).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from openfoal_kernel.protocol import AuditEntry, ChatMessage, Session, utcnow
from openfoal_kernel.protocol.transcript import ToolCall
from openfoal_server_ext.services.export import SessionExporter
from openfoal_server_ext.services.hub import EventHub
from openfoal_server_ext.services.sessions import SessionService
from openfoal_server_ext.store import DuckDBStore, StoreWorker
from openfoal_server_ext.store.base import AuditRow, MessageRow

from ._table import Row, print_table

TURNS = int(os.environ.get("OPENFOAL_BENCH_NOTEBOOK_TURNS", "1000"))
REPEATS = 7
TARGET_S = 1.0
OWNER = "alice"
SID = "ses_bench_notebook_000000"


def _fill(store: DuckDBStore) -> None:
    store.upsert_session(Session(id=SID, sessionKey=f"k/{SID}", owner=OWNER))
    messages: list[MessageRow] = []
    audit: list[AuditRow] = []
    for t in range(TURNS):
        run, call, at = f"run_{t:06d}", f"call_{t:06d}", utcnow()
        code = f"values = [i * {t} for i in range(10)]\nprint(sum(values))\nvalues[:3]"
        turn = [
            ChatMessage(role="user", content=f"turn {t}: sum the first ten multiples of {t}"),
            ChatMessage(
                role="assistant",
                content="Let me compute that.",
                tool_calls=[ToolCall(id=call, name="python.exec", arguments={"code": code})],
            ),
            ChatMessage(
                role="tool",
                tool_call_id=call,
                name="python.exec",
                content=f"{45 * t}\n[0, {t}, {2 * t}]\n",
            ),
            ChatMessage(role="assistant", content=f"The sum is **{45 * t}**."),
        ]
        for msg in turn:
            messages.append(
                MessageRow(session_id=SID, idx=len(messages), message=msg, at=at, run_id=run)
            )
        trace = f"{t:032d}"
        for n, (action, detail) in enumerate(
            [
                ("run.start", {"input": turn[0].content, "model": "scripted", "policyVersion": 1}),
                ("tool.call", {"toolCallId": call, "args": {"code": code}}),
                ("tool.result", {"toolCallId": call, "status": "success", "output": "x"}),
            ]
        ):
            entry = AuditEntry(
                id=f"aud_{t:06d}_{n}",
                at=at,
                actor=OWNER,
                action=action,
                resource=f"run:{run}",
                sessionId=SID,
                runId=run,
                traceId=trace,
                detail=detail,
            )
            audit.append(AuditRow(entry=entry, owner=OWNER))
    store.append_messages(messages)
    store.append_audit(audit)


async def main() -> bool:
    """Fill a store, time the export and the baseline, print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        _fill(store)
        worker = StoreWorker(store)
        hub = EventHub(worker)
        await hub.start()
        sessions = SessionService(worker, hub, workspace_id="default")
        await sessions.start()
        exporter = SessionExporter(worker, sessions)
        export_s: list[float] = []
        write_s: list[float] = []
        cells = 0
        for _ in range(REPEATS):
            started = time.perf_counter()
            res = await exporter.export(OWNER, SID)
            export_s.append(time.perf_counter() - started)
            cells = len(res.notebook["cells"])
            nb = nbformat.from_dict(res.notebook)
            started = time.perf_counter()
            nbformat.writes(nb)
            write_s.append(time.perf_counter() - started)
        worker.close()
    exp, base = statistics.median(export_s), statistics.median(write_s)
    return print_table(
        f"sessions.export of a {TURNS}-turn session ({cells} cells), median of {REPEATS}",
        [
            Row(
                metric="export (store to notebook)",
                value=f"{exp * 1000:.0f} ms ({exp / base:.1f}x nbformat.writes)",
                baseline=f"nbformat.writes of the same notebook: {base * 1000:.0f} ms",
                target=f"< {TARGET_S:g} s",
                ok=exp < TARGET_S,
            )
        ],
    )
