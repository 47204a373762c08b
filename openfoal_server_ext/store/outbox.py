"""The sync outbox and sync bookkeeping of a user's store, shared by both stores.

Every write batch adds its changes to ``outbox`` in the same transaction (see
``outbox_codec.py`` for the chunk encoding); the sync worker reads pending
chunks in id order, marks them acked or dead, and purges acked ones after a while. The SQL
here is written once with ``?`` placeholders; each store runs it through :meth:`_sql`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openfoal_kernel.protocol import Session

from .base import EventRow, MessageRow, WriteBatch
from .outbox_codec import Chunk, encode_batch


@dataclass(kw_only=True)
class OutboxChunk:
    """A stored outbox chunk."""

    id: int
    kind: str
    rows: int
    sessions: list[str]
    body: bytes
    state: str  # pending | acked | dead
    attempts: int
    error: str | None
    created_at: datetime


_COLS = "id, kind, n_rows, sessions, body, state, attempts, error, created_at"


def _chunk_from_row(r: tuple[Any, ...]) -> OutboxChunk:
    return OutboxChunk(
        id=int(r[0]),
        kind=r[1],
        rows=int(r[2]),
        sessions=[s for s in r[3].split(",") if s],
        body=bytes(r[4]),
        state=r[5],
        attempts=int(r[6]),
        error=r[7],
        created_at=r[8],
    )


class OutboxTables:
    """Outbox, sync metadata and conflict records (a mixin of both stores)."""

    #: Off on a cloud instance: its own writes are not pushed anywhere.
    outbox_enabled: bool = True

    def _sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in the current transaction (if any); return its rows."""
        raise NotImplementedError  # provided by each store

    def _outbox_ids(self, n: int) -> list[int]:
        """``n`` fresh, increasing outbox ids."""
        raise NotImplementedError  # provided by each store

    def _atomic(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in one transaction."""
        raise NotImplementedError  # provided by each store

    # -- the write path -------------------------------------------------------------------

    def append_outbox(self, batch: WriteBatch, now: datetime) -> None:
        """Add the batch's changes to the outbox (call inside the batch's transaction)."""
        if not self.outbox_enabled:
            return
        chunks = encode_batch(batch)
        if chunks:
            self.insert_outbox(chunks, now)

    def insert_outbox(self, chunks: Sequence[Chunk], now: datetime) -> None:
        """Store encoded chunks as pending, in order."""
        for oid, c in zip(self._outbox_ids(len(chunks)), chunks, strict=True):
            self._sql(
                "INSERT INTO outbox (id, kind, n_rows, sessions, body, created_at, state, "
                "attempts) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0)",
                [oid, c.kind, c.rows, ",".join(c.sessions), c.body, now],
            )

    # -- the sync worker's side -----------------------------------------------------------

    def outbox_pending(self, max_rows: int, max_chunks: int) -> list[OutboxChunk]:
        """The oldest pending chunks, up to ``max_rows`` rows (at least one chunk)."""
        rows = self._sql(
            f"SELECT {_COLS} FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?",
            [max_chunks],
        )
        out: list[OutboxChunk] = []
        total = 0
        for r in rows:
            chunk = _chunk_from_row(r)
            if out and total + chunk.rows > max_rows:
                break
            out.append(chunk)
            total += chunk.rows
        return out

    def outbox_mark(self, ids: Sequence[int], state: str, at: datetime, error: str = "") -> None:
        """Set the state of chunks (``acked`` records when; ``dead`` keeps the error)."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        if state == "acked":
            self._sql(
                f"UPDATE outbox SET state = 'acked', acked_at = ? WHERE id IN ({marks})",
                [at, *ids],
            )
        else:
            self._sql(
                f"UPDATE outbox SET state = ?, error = ? WHERE id IN ({marks})",
                [state, error or None, *ids],
            )

    def outbox_failed(self, ids: Sequence[int], error: str) -> int:
        """Count a content failure of these chunks; return the highest attempt count."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        self._sql(
            f"UPDATE outbox SET attempts = attempts + 1, error = ? WHERE id IN ({marks})",
            [error, *ids],
        )
        row = self._sql(f"SELECT max(attempts) FROM outbox WHERE id IN ({marks})", list(ids))
        return int(row[0][0] or 0) if row else 0

    def outbox_dead(self, limit: int = 100) -> list[OutboxChunk]:
        """Dead-lettered chunks, oldest first."""
        rows = self._sql(
            f"SELECT {_COLS} FROM outbox WHERE state = 'dead' ORDER BY id LIMIT ?", [limit]
        )
        return [_chunk_from_row(r) for r in rows]

    def outbox_requeue(self, ids: Sequence[int] | None) -> int:
        """Put dead chunks (these, or all) back in the queue; return how many."""
        where, params = _dead_where(ids)
        rows = self._sql(
            f"UPDATE outbox SET state = 'pending', attempts = 0 WHERE {where} RETURNING id", params
        )
        return len(rows)

    def outbox_discard(self, ids: Sequence[int] | None) -> int:
        """Delete dead chunks (these, or all); the store's own rows stay. Return how many."""
        where, params = _dead_where(ids)
        return len(self._sql(f"DELETE FROM outbox WHERE {where} RETURNING id", params))

    def outbox_counts(self) -> dict[str, int]:
        """Pending rows and chunks, dead chunks, acked chunks not yet purged."""
        rows = self._sql(
            "SELECT state, count(*), coalesce(sum(n_rows), 0) FROM outbox GROUP BY state"
        )
        by = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        return {
            "pendingChunks": by.get("pending", (0, 0))[0],
            "pending": by.get("pending", (0, 0))[1],
            "deadLetters": by.get("dead", (0, 0))[0],
            "acked": by.get("acked", (0, 0))[0],
        }

    def outbox_oldest_pending(self) -> datetime | None:
        """When the oldest pending chunk was written (none pending: ``None``)."""
        rows = self._sql("SELECT min(created_at) FROM outbox WHERE state = 'pending'")
        return rows[0][0] if rows else None

    def outbox_pending_sessions(self) -> set[str]:
        """Sessions with rows still waiting to be pushed."""
        rows = self._sql("SELECT DISTINCT sessions FROM outbox WHERE state = 'pending'")
        return {s for r in rows for s in r[0].split(",") if s}

    def outbox_purge(self, acked_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` chunks acked before the given time; return how many."""
        rows = self._sql(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state = 'acked' "
            "AND acked_at < ? ORDER BY id LIMIT ?) RETURNING id",
            [acked_before, limit],
        )
        return len(rows)

    # -- sync metadata and conflicts ------------------------------------------------------

    def sync_meta(self) -> dict[str, str]:
        """Every sync setting kept in the store (``paused``, ``lastSyncAt``...)."""
        return {r[0]: r[1] for r in self._sql("SELECT key, value FROM sync_meta")}

    def set_sync_meta(self, key: str, value: str) -> None:
        """Set one sync metadata value."""
        self._sql("DELETE FROM sync_meta WHERE key = ?", [key])
        self._sql("INSERT INTO sync_meta (key, value) VALUES (?, ?)", [key, value])

    def put_conflict(self, session_id: str, at: datetime, detail: dict[str, Any]) -> None:
        """Record (or refresh) a session's sync conflict."""
        self._sql("DELETE FROM sync_conflicts WHERE session_id = ?", [session_id])
        self._sql(
            "INSERT INTO sync_conflicts (session_id, detected_at, detail) VALUES (?, ?, ?)",
            [session_id, at, json.dumps(detail)],
        )

    def clear_conflict(self, session_id: str) -> None:
        """Forget a session's conflict (it was resolved)."""
        self._sql("DELETE FROM sync_conflicts WHERE session_id = ?", [session_id])

    def conflicts(self) -> list[tuple[str, datetime, dict[str, Any]]]:
        """Open conflicts, oldest first."""
        rows = self._sql(
            "SELECT session_id, detected_at, CAST(detail AS VARCHAR) FROM sync_conflicts "
            "ORDER BY detected_at"
        )
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def replace_history(
        self, session: Session, events: Sequence[EventRow], messages: Sequence[MessageRow]
    ) -> None:
        """Replace a session's events and transcript (a resolution taking the cloud's copy),
        clear its conflict; no outbox entry: the cloud has these rows already."""

        def run() -> None:
            self._sql("DELETE FROM events WHERE session_id = ?", [session.id])
            self._sql("DELETE FROM messages WHERE session_id = ?", [session.id])
            if events:
                self.append_events(events)  # type: ignore[attr-defined]
            if messages:
                self.append_messages(messages)  # type: ignore[attr-defined]
            self.upsert_session(session)  # type: ignore[attr-defined]
            self.clear_conflict(session.id)

        self._atomic(run)

    def set_sync_states(self, states: dict[str, str]) -> list[Session]:
        """Set sessions' ``syncState`` in place (no outbox entry: it is this side's view)."""
        changed: list[Session] = []
        for sid, state in states.items():
            rows = self._sql("SELECT CAST(data AS VARCHAR) FROM sessions WHERE id = ?", [sid])
            if not rows:
                continue
            session = Session.model_validate_json(rows[0][0])
            if session.syncState == state:
                continue
            session = session.model_copy(update={"syncState": state})
            self._sql("UPDATE sessions SET data = ? WHERE id = ?", [session.model_dump_json(), sid])
            changed.append(session)
        return changed


def _dead_where(ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "state = 'dead'", []
    if not ids:
        return "FALSE", []
    return f"state = 'dead' AND id IN ({','.join('?' * len(ids))})", list(ids)
