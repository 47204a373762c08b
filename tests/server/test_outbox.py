"""Both stores: every write batch lands in the sync outbox in its own transaction, in order,
encoded as column chunks; acking, dead letters, requeue, discard and the bounded purge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from openfoal_kernel.protocol import AuditEntry, Session, utcnow
from openfoal_server_ext.store import AuditRow, EventRow, Store, WriteBatch
from openfoal_server_ext.store.outbox import OutboxTables
from openfoal_server_ext.store.outbox_codec import ChunkError, decode_chunk, encode_columns


def _batch(sid: str, start: int, n: int) -> WriteBatch:
    now = utcnow()
    return WriteBatch(
        sessions={sid: Session(id=sid, sessionKey=f"workspace:w/agent:a/dm:x:{sid}", owner="u")},
        events=[
            EventRow(
                session_id=sid,
                seq=i,
                event="agent.delta",
                payload={"delta": str(i)},
                state_version=i,
                at=now,
            )
            for i in range(start, start + n)
        ],
        audit=[
            AuditRow(
                entry=AuditEntry(
                    id=f"a-{sid}-{start}",
                    at=now,
                    actor="u",
                    action="run.start",
                    resource=sid,
                    sessionId=sid,
                    traceId="t",
                    detail={},
                ),
                owner="u",
            )
        ],
    )


def _outbox(store: Store) -> OutboxTables:
    assert isinstance(store, OutboxTables)
    return store


def test_a_write_batch_and_its_outbox_entry_commit_together(
    open_store: Callable[[], Store], store_error: type[Exception]
) -> None:
    store = open_store()
    store.write_batch(_batch("s1", 1, 3))
    pending = _outbox(store).outbox_pending(max_rows=1000, max_chunks=100)
    assert [c.kind for c in pending] == ["sessions", "events", "audit"]
    assert [c.id for c in pending] == sorted(c.id for c in pending)
    events = decode_chunk("events", pending[1].body)
    assert events["seq"] == [1, 2, 3] and pending[1].sessions == ["s1"]
    # a batch the database refuses leaves no outbox entry either
    bad = _batch("s2", 1, 1)
    bad.events[0].seq = "not a number"  # type: ignore[assignment]
    with pytest.raises(store_error):
        store.write_batch(bad)
    again = _outbox(store).outbox_pending(max_rows=1000, max_chunks=100)
    assert [c.id for c in again] == [c.id for c in pending]
    # and the next good batch continues the order
    store.write_batch(_batch("s3", 1, 2))
    later = _outbox(store).outbox_pending(max_rows=1000, max_chunks=100)
    assert len(later) == 6 and later[3].id > pending[-1].id
    assert _outbox(store).outbox_counts()["pending"] == (1 + 3 + 1) + (1 + 2 + 1)
    store.close()


def test_ack_dead_letters_requeue_discard_and_purge(open_store: Callable[[], Store]) -> None:
    store = open_store()
    box = _outbox(store)
    for n in range(3):
        store.write_batch(_batch(f"s{n}", 1, 2))
    chunks = box.outbox_pending(max_rows=4, max_chunks=100)
    assert sum(c.rows for c in chunks) <= 4 and chunks
    now = utcnow()
    box.outbox_mark([c.id for c in chunks], "acked", now)
    rest = box.outbox_pending(max_rows=1000, max_chunks=100)
    assert not {c.id for c in rest} & {c.id for c in chunks}
    assert box.outbox_failed([rest[0].id], "bad row") == 1
    box.outbox_mark([rest[0].id], "dead", now, "bad row")
    assert [c.id for c in box.outbox_dead()] == [rest[0].id]
    assert box.outbox_counts()["deadLetters"] == 1
    assert box.outbox_requeue([rest[0].id]) == 1
    assert box.outbox_counts()["deadLetters"] == 0
    box.outbox_mark([rest[1].id], "dead", now, "bad row")
    assert box.outbox_discard(None) == 1
    assert rest[1].id not in {c.id for c in box.outbox_pending(1000, 100)}
    # the purge deletes acked chunks only, older than the cut, at most `limit` per call
    assert box.outbox_purge(now - timedelta(seconds=1), 100) == 0
    assert box.outbox_purge(now + timedelta(seconds=1), 1) == 1
    assert box.outbox_purge(now + timedelta(seconds=1), 100) == len(chunks) - 1
    store.close()


def test_sync_states_and_conflicts_are_kept_without_outbox_entries(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    box = _outbox(store)
    store.write_batch(_batch("s1", 1, 1))
    before = box.outbox_counts()["pendingChunks"]
    (changed,) = box.set_sync_states({"s1": "synced", "missing": "synced"})
    assert changed.syncState == "synced"
    got = store.get_session("s1")
    assert got is not None and got.syncState == "synced"
    box.put_conflict("s1", utcnow(), {"events": [3]})
    assert [c[0] for c in box.conflicts()] == ["s1"]
    box.clear_conflict("s1")
    assert box.conflicts() == []
    box.set_sync_meta("paused", "1")
    box.set_sync_meta("paused", "0")
    assert box.sync_meta() == {"paused": "0"}
    assert box.outbox_counts()["pendingChunks"] == before
    store.close()


def test_a_malformed_chunk_is_refused_with_the_reason() -> None:
    with pytest.raises(ChunkError, match="not gzip JSON"):
        decode_chunk("events", b"garbage")
    with pytest.raises(ChunkError, match="unknown chunk kind"):
        decode_chunk("secrets", encode_columns({}))
    with pytest.raises(ChunkError, match="exactly the columns"):
        decode_chunk("messages", encode_columns({"session_id": ["s"]}))
    cols = {
        "session_id": ["s", None],
        "idx": [1, 2],
        "run_id": [None, None],
        "ts": ["t", "t"],
        "data": ["{}", "{}"],
    }
    with pytest.raises(ChunkError, match="row id"):
        decode_chunk("messages", encode_columns(cols))
