"""Both stores: batches, transactions, reopening; the DuckDB store: recovery of a broken file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from openfoal_kernel.protocol import AuditEntry, ChatMessage, Session, utcnow
from openfoal_server_ext.store import (
    AuditRow,
    DuckDBStore,
    EventRow,
    MessageRow,
    RunRow,
    Store,
    StoreWorker,
    WriteBatch,
)


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


def test_small_and_large_batches(open_store: Callable[[], Store]) -> None:
    store = open_store()
    store.append_events(_events("a", 1, 3))
    store.append_events(_events("a", 4, 2000))  # the Arrow path
    assert store.last_seqs() == {"a": 2003}
    got = store.get_events("a", after_seq=1998, limit=3)
    assert [e.seq for e in got] == [1999, 2000, 2001]
    assert got[0].payload == {"delta": "1999"}
    store.close()


def test_write_batch_is_one_transaction(
    open_store: Callable[[], Store], store_error: type[Exception]
) -> None:
    store = open_store()
    session = Session(id="s1", sessionKey="workspace:w/agent:a/main", owner="u")
    run = RunRow(
        id="r1", session_id="s1", owner="u", trace_id="t", status="accepted", created_at=utcnow()
    )
    bad = EventRow(session_id="s1", seq=1, event="x", payload={}, state_version=1, at=utcnow())
    bad.seq = "not a number"  # type: ignore[assignment]
    with pytest.raises(store_error):
        store.write_batch(WriteBatch(sessions={"s1": session}, runs={"r1": run}, events=[bad]))
    assert store.get_session("s1") is None and store.get_run("r1") is None  # rolled back
    store.write_batch(
        WriteBatch(
            sessions={"s1": session},
            runs={"r1": run},
            events=_events("s1", 1, 2),
            messages=[
                MessageRow(
                    session_id="s1",
                    idx=0,
                    message=ChatMessage(role="user", content="hi"),
                    at=utcnow(),
                )
            ],
            audit=[
                AuditRow(
                    entry=AuditEntry(
                        id="a1", actor="u", action="run.start", resource="run:r1", traceId="t"
                    ),
                    owner="u",
                )
            ],
        )
    )
    assert store.get_session("s1") == session
    assert store.get_run("r1").status == "accepted"
    assert [m.message.content for m in store.get_messages("s1")] == ["hi"]
    store.close()


def test_reopen_keeps_everything(open_store: Callable[[], Store]) -> None:
    store = open_store()
    store.append_events(_events("a", 1, 10))
    store.close()
    again = open_store()
    assert again.last_seqs() == {"a": 10} and again.max_state_version() == 10
    again.close()


@pytest.mark.parametrize("content", [b"", b"garbage that is not a database" * 100])
def test_broken_file_is_moved_aside(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.duckdb"
    path.write_bytes(content)
    store = DuckDBStore(path)
    assert store.recovered_from is not None and store.recovered_from.exists()
    assert store.recovered_from.read_bytes() == content  # kept for inspection, not deleted
    store.append_events(_events("a", 1, 1))
    assert store.last_seqs() == {"a": 1}
    store.close()


@pytest.mark.asyncio
async def test_worker_commit_window(open_store: Callable[[], Store]) -> None:
    worker = StoreWorker(open_store(), window_s=0.05)
    for row in _events("a", 1, 5):
        worker.stage_event(row)
    worker.schedule_commit()
    assert await worker.call(worker.store.last_seqs) == {}
    await asyncio.sleep(0.2)
    assert await worker.call(worker.store.last_seqs) == {"a": 5}
    for row in _events("a", 6, 2):
        worker.stage_event(row)
    await worker.commit()
    assert await worker.call(worker.store.last_seqs) == {"a": 7}
    worker.close()
