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

Second table: ``notebook.variables`` (:func:`list_variables`, the probe cell and its JSON, as
the tool runs it) on a real ipykernel holding ``VARIABLES`` variables, one of them a
DataFrame of ``FRAME_ROWS`` rows (10 million by default, ``OPENFOAL_BENCH_NOTEBOOK_ROWS``).
Baseline, in the same run: a bare ``dir()`` round trip (the names only, as ``%who`` prints
them) through the same client. Targets: median listing under 200 ms, and the kernel's peak
RSS growing by less than 50 MB over all listings (the frame, ~160 MB, is never copied).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from openfoal_kernel.executors.code_kernel import CodeKernel
from openfoal_kernel.executors.local import LocalExecutor
from openfoal_kernel.protocol import AuditEntry, ChatMessage, Session, utcnow
from openfoal_kernel.protocol.transcript import ToolCall
from openfoal_kernel.tools.notebook_vars import list_variables
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


VARIABLES = 500
FRAME_ROWS = int(os.environ.get("OPENFOAL_BENCH_NOTEBOOK_ROWS", "10000000"))
VARS_REPEATS = 9
VARS_TARGET_S = 0.2
RSS_TARGET_MB = 50.0
_SETUP = f"""
import numpy, pandas
df = pandas.DataFrame({{"a": numpy.arange({FRAME_ROWS}), "b": numpy.zeros({FRAME_ROWS}),
                       "c": numpy.ones({FRAME_ROWS}, dtype="float32")}})
for _i in range({VARIABLES} - 1):
    globals()[f"v{{_i:03d}}"] = ([_i] * 10, f"text {{_i}}", {{"k": _i}}, _i * 1.5)[_i % 4]
del _i
"""
_RSS = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


async def _variables() -> bool:
    """Time notebook.variables against a bare dir() round trip, on one kernel."""
    with tempfile.TemporaryDirectory() as tmp:
        kernel = await CodeKernel.start(cwd=Path(tmp))
        ex = LocalExecutor(
            Path(tmp), code_kernel_connection=kernel.connection_info, notebook_bound=True
        )
        try:
            res = await kernel.execute(_SETUP, timeout_s=300, max_output_bytes=10_000)
            if res.status != "ok":
                raise RuntimeError(f"setup failed: {res.text}")
            await list_variables(ex)  # warm: the first call connects the client
            rss0 = int((await kernel.execute(_RSS, timeout_s=30, max_output_bytes=100)).text)
            listing_s: list[float] = []
            dir_s: list[float] = []
            listed = 0
            for _ in range(VARS_REPEATS):
                started = time.perf_counter()
                data = await list_variables(ex)
                listing_s.append(time.perf_counter() - started)
                listed = len(data["variables"])
                started = time.perf_counter()
                await ex.run_python(
                    "print([k for k in dir() if not k.startswith('_')])",
                    timeout_s=30,
                    max_output_bytes=1 << 20,
                )
                dir_s.append(time.perf_counter() - started)
            rss1 = int((await kernel.execute(_RSS, timeout_s=30, max_output_bytes=100)).text)
        finally:
            await ex.aclose()
            await kernel.aclose()
    lst, base = statistics.median(listing_s), statistics.median(dir_s)
    grown_mb = (rss1 - rss0) / 1024  # ru_maxrss is in KiB on Linux
    return print_table(
        f"notebook.variables of {listed} variables with a {FRAME_ROWS:,}-row DataFrame, "
        f"median of {VARS_REPEATS}",
        [
            Row(
                metric="listing (probe + JSON)",
                value=f"{lst * 1000:.1f} ms ({lst / base:.1f}x dir())",
                baseline=f"bare dir() round trip: {base * 1000:.1f} ms",
                target=f"< {VARS_TARGET_S * 1000:.0f} ms",
                ok=lst < VARS_TARGET_S,
            ),
            Row(
                metric="kernel peak RSS growth",
                value=f"{grown_mb:.1f} MB",
                baseline=f"the frame: {FRAME_ROWS * 20 / 1e6:.0f} MB",
                target=f"< {RSS_TARGET_MB:g} MB (no copy)",
                ok=grown_mb < RSS_TARGET_MB,
            ),
        ],
    )


async def main() -> bool:
    """Both tables: the export, then the variables listing."""
    exported = await _export()
    listed = await _variables()
    return exported and listed


async def _export() -> bool:
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
