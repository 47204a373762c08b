"""The cloud instance's intake of pushed batches: Postgres, append-only, idempotent.

Each chunk is decoded and ``COPY``-ed into a temporary staging table shaped like its target;
rows then move with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per table on the row
ids (``outbox_codec.ROW_KEYS``), so a replayed, duplicated or reordered batch inserts nothing
twice. A chunk taken whole before (its digest is remembered per user) is not staged again:
a replay costs a lookup, not a second load. A session whose staged history (events,
transcript) differs from the stored one under the same ids diverged (a copied store): its
rows are held back, the conflict is recorded and the cloud's copy marked ``syncState:
conflict``; nothing stored is overwritten. Sessions, runs and gates are the mutable rows: a
newer session version, a run not yet ended and a gate still pending take the pushed state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import psycopg

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, Session, utcnow
from openfoal_kernel.protocol.sync import (
    SyncBatch,
    SyncBatchResult,
    SyncChunk,
    SyncConflictItem,
    SyncConflictsResult,
)

from ..store.outbox_codec import COLUMNS, ROW_KEYS, SYNC_SCHEMA_VERSION, ChunkError, decode_chunk
from ..store.postgres import PostgresStore
from .settle import cloud_digests

#: The owner of a server's own audit entries (not a user's): filed under the pushing user.
SYSTEM_TRAIL = "system"
#: kind -> the table its rows go to
TABLES = {
    "sessions": "sessions",
    "runs": "runs",
    "gates": "gate_items",
    "policies": "sync_policies",
    "events": "events",
    "messages": "messages",
    "tool_runs": "tool_runs",
    "audit": "audit",
}
#: the order rows move in (sessions first: later checks look them up)
ORDER = ("sessions", "runs", "gates", "policies", "events", "messages", "tool_runs", "audit")
#: kinds whose rows carry their owner in a column
OWNED = ("sessions", "runs", "gates", "audit")
#: history kinds: same ids with other content is a diverged session
HISTORY = {"events": "e.event <> s.event OR e.payload <> s.payload", "messages": "e.data <> s.data"}
#: how a mutable row takes a pushed state
UPSERTS = {
    "sessions": (
        "ON CONFLICT (id) DO UPDATE SET session_key = excluded.session_key, "
        "updated_at = excluded.updated_at, data = excluded.data "
        "WHERE sessions.updated_at < excluded.updated_at AND sessions.owner = excluded.owner",
        "updated_at DESC",
    ),
    "runs": (
        "ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, "
        "data = excluded.data WHERE runs.ended_at IS NULL AND runs.owner = excluded.owner",
        "ended_at DESC NULLS LAST",
    ),
    "gates": (
        "ON CONFLICT (gate_id) DO UPDATE SET status = excluded.status, "
        "resolved_at = excluded.resolved_at, data = excluded.data "
        "WHERE gate_items.status = 'pending' AND gate_items.owner = excluded.owner",
        "resolved_at DESC NULLS LAST",
    ),
}


def decode(chunks: Sequence[SyncChunk]) -> dict[str, list[dict[str, list[Any]]]]:
    """Decode every chunk, grouped by kind (INVALID_REQUEST naming a chunk that does not)."""
    out: dict[str, list[dict[str, list[Any]]]] = {}
    for chunk, columns in zip(chunks, decode_each(chunks), strict=True):
        out.setdefault(chunk.kind, []).append(columns)
    return out


def decode_each(chunks: Sequence[SyncChunk]) -> list[dict[str, list[Any]]]:
    """The columns of each chunk, in order (INVALID_REQUEST naming a chunk that fails)."""
    out: list[dict[str, list[Any]]] = []
    for chunk in chunks:
        try:
            body = base64.b64decode(chunk.data, validate=True)
            columns = decode_chunk(chunk.kind, body)
        except (binascii.Error, ChunkError) as exc:
            raise OpenFoalError(
                ErrorCode.INVALID_REQUEST, f"chunk {chunk.id}: {exc}", details={"chunk": chunk.id}
            ) from exc
        if len(next(iter(columns.values()))) != chunk.rows:
            raise OpenFoalError(
                ErrorCode.INVALID_REQUEST,
                f"chunk {chunk.id}: says {chunk.rows} rows, holds another number",
                details={"chunk": chunk.id},
            )
        out.append(columns)
    return out


def check_version(version: int) -> None:
    """Refuse a batch of a schema version this server does not speak."""
    if version != SYNC_SCHEMA_VERSION:
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST,
            f"unknown sync schema version {version} (this cloud takes {SYNC_SCHEMA_VERSION})",
            details={"schemaVersion": version, "supported": [SYNC_SCHEMA_VERSION]},
        )


def check_owned(owner: str, decoded: dict[str, list[dict[str, list[Any]]]]) -> None:
    """Refuse rows that carry another owner than the pushing user (``FORBIDDEN``); the
    pushing server's own audit trail (its default policy...) is filed under that user."""
    for columns in decoded.get("audit", []):
        columns["owner"] = [owner if o == SYSTEM_TRAIL else o for o in columns["owner"]]
    for kind in OWNED:
        for columns in decoded.get(kind, []):
            if any(o != owner for o in columns["owner"]):
                raise OpenFoalError(
                    ErrorCode.FORBIDDEN, f"{kind} rows of another user than {owner!r}"
                )


class SyncIntake:
    """Applies pushed batches to the cloud's Postgres store (call on the store thread)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def apply(self, owner: str, batch: SyncBatch) -> tuple[SyncBatchResult, list[Session]]:
        """Take a batch in one transaction; return the answer and the sessions it touched."""
        check_version(batch.schemaVersion)
        columns_list = decode_each(batch.chunks)
        decoded: dict[str, list[dict[str, list[Any]]]] = {}
        for chunk, cols in zip(batch.chunks, columns_list, strict=True):
            decoded.setdefault(chunk.kind, []).append(cols)
        digests = [hashlib.sha256(c.data.encode()).hexdigest() for c in batch.chunks]
        check_owned(owner, decoded)
        with self.store.transaction() as con:
            seen = con.execute(
                "SELECT result FROM sync_batches WHERE owner = %s AND batch_id = %s",
                [owner, batch.batchId],
            ).fetchone()
            if seen is not None:
                answer = SyncBatchResult.model_validate(seen[0])
                return answer.model_copy(update={"replayed": True}), []
            known = _known_chunks(con, owner, digests)
            decoded = {}
            skipped = 0
            for chunk, columns, digest in zip(batch.chunks, columns_list, digests, strict=True):
                if digest in known:
                    skipped += chunk.rows  # taken before, whole: nothing to stage
                    continue
                decoded.setdefault(chunk.kind, []).append(columns)
            for kind, chunks in decoded.items():
                _stage(con, kind, chunks, owner)
            touched = _session_ids(con, decoded)
            _check_owners(con, owner, touched)
            conflicts = _detect(con, owner, decoded, touched)
            held = {c.sessionId for c in conflicts} | _open_conflicts(con, touched)
            if held:
                for kind in decoded:
                    if kind == "policies":
                        continue
                    column = "id" if kind == "sessions" else "session_id"
                    con.execute(
                        f"DELETE FROM _sync_{kind} WHERE {column} = ANY(%s)", [sorted(held)]
                    )
            inserted = 0
            for kind in ORDER:
                if kind in decoded:
                    inserted += _move(con, kind)
            total = sum(len(next(iter(c.values()))) for cs in decoded.values() for c in cs)
            held_rows = _held_rows(decoded, held)
            answer = SyncBatchResult(
                batchId=batch.batchId,
                inserted=inserted,
                duplicates=max(0, total - inserted - held_rows) + skipped,
                conflicts=conflicts,
            )
            _remember_chunks(con, owner, batch.chunks, digests, known, held)
            con.execute(
                "INSERT INTO sync_batches VALUES (%s, %s, %s, %s)",
                [owner, batch.batchId, utcnow(), answer.model_dump_json()],
            )
            sessions = [
                Session.model_validate_json(r[0])
                for r in con.execute(
                    "SELECT data::text FROM sessions WHERE id = ANY(%s)", [sorted(touched)]
                ).fetchall()
            ]
        return answer, sessions

    def conflicts(self, owner: str, digests: Sequence[str] = ()) -> SyncConflictsResult:
        """``owner``'s open conflicts (whichever of their servers raised them), and the history
        digests of the asked sessions of theirs (:mod:`.settle`)."""
        with self.store.transaction() as con:
            return SyncConflictsResult(
                conflicts=open_conflicts(con, owner),
                digests=cloud_digests(con, owner, list(digests)) if digests else {},
            )


def open_conflicts(con: psycopg.Connection, owner: str) -> list[SyncConflictItem]:
    """The open conflicts of ``owner``'s sessions, oldest first."""
    rows = con.execute(
        "SELECT c.session_id, c.detected_at, c.detail::text FROM sync_conflicts c "
        "JOIN sessions s ON s.id = c.session_id WHERE s.owner = %s ORDER BY c.detected_at",
        [owner],
    ).fetchall()
    return [
        SyncConflictItem(sessionId=r[0], detectedAt=r[1], detail=json.loads(r[2])) for r in rows
    ]


def _stage(
    con: psycopg.Connection, kind: str, chunks: list[dict[str, list[Any]]], owner: str
) -> None:
    table = TABLES[kind]
    cols = COLUMNS[kind]
    like = "sync_policies" if kind == "policies" else table
    con.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS _sync_{kind} (LIKE {like} INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    names = ", ".join((*cols, "owner") if kind == "policies" else cols)
    with con.cursor() as cur, cur.copy(f"COPY _sync_{kind} ({names}) FROM STDIN") as copy:
        for columns in chunks:
            values = [columns[c] for c in cols]
            for row in zip(*values, strict=True):
                copy.write_row((*row, owner) if kind == "policies" else row)


def _known_chunks(con: psycopg.Connection, owner: str, digests: list[str]) -> set[str]:
    rows = con.execute(
        "SELECT digest FROM sync_chunks WHERE owner = %s AND digest = ANY(%s)", [owner, digests]
    ).fetchall()
    return {r[0] for r in rows}


def _remember_chunks(
    con: psycopg.Connection,
    owner: str,
    chunks: Sequence[SyncChunk],
    digests: list[str],
    known: set[str],
    held: set[str],
) -> None:
    """Record the chunks taken whole (a chunk with held rows must be looked at again)."""
    fresh: list[str] = []
    for chunk, digest in zip(chunks, digests, strict=True):
        if digest in known or digest in fresh:
            continue
        if held and chunk.kind != "policies":
            column = "id" if chunk.kind == "sessions" else "session_id"
            cols = decode_chunk(chunk.kind, base64.b64decode(chunk.data))
            if any(v in held for v in cols[column]):
                continue
        fresh.append(digest)
    if fresh:
        with con.cursor() as cur, cur.copy("COPY sync_chunks (owner, digest) FROM STDIN") as copy:
            for digest in fresh:
                copy.write_row((owner, digest))


def _session_ids(con: psycopg.Connection, decoded: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for kind in decoded:
        if kind == "policies":
            continue
        column = "id" if kind == "sessions" else "session_id"
        rows = con.execute(
            f"SELECT DISTINCT {column} FROM _sync_{kind} WHERE {column} IS NOT NULL"
        ).fetchall()
        ids.update(r[0] for r in rows)
    return ids


def _check_owners(con: psycopg.Connection, owner: str, touched: set[str]) -> None:
    other = con.execute(
        "SELECT id FROM sessions WHERE id = ANY(%s) AND owner <> %s LIMIT 1",
        [sorted(touched), owner],
    ).fetchone()
    if other is not None:
        raise OpenFoalError(ErrorCode.FORBIDDEN, f"session {other[0]!r} belongs to another user")


def _detect(
    con: psycopg.Connection, owner: str, decoded: dict[str, Any], touched: set[str]
) -> list[SyncConflictItem]:
    """Sessions whose pushed history differs from the stored one under the same ids."""
    diverged: dict[str, dict[str, Any]] = {}
    for kind, differs in HISTORY.items():
        if kind not in decoded:
            continue
        overlapping = _overlapping(con, kind)
        if not overlapping:
            continue  # every staged row comes after what is stored: nothing can differ
        # a temporary table has no statistics until analysed: without them the planner joins
        # the staged rows against a whole table, and each batch costs more as the cloud grows
        con.execute(f"ANALYZE _sync_{kind}")
        keys = " AND ".join(f"e.{k} = s.{k}" for k in ROW_KEYS[kind])
        order = ROW_KEYS[kind][1]
        rows = con.execute(
            f"SELECT s.session_id, min(s.{order}) FROM _sync_{kind} s JOIN {TABLES[kind]} e "
            f"ON {keys} WHERE s.session_id = ANY(%s) AND ({differs}) GROUP BY s.session_id",
            [overlapping],
        ).fetchall()
        for sid, first in rows:
            diverged.setdefault(sid, {})[kind] = {"firstDiverging": int(first)}
    now = utcnow()
    out: list[SyncConflictItem] = []
    for sid, detail in sorted(diverged.items()):
        detail["owner"] = owner
        con.execute(
            "INSERT INTO sync_conflicts VALUES (%s, %s, %s) ON CONFLICT (session_id) DO UPDATE "
            "SET detected_at = excluded.detected_at, detail = excluded.detail",
            [sid, now, json.dumps(detail)],
        )
        _set_state(con, sid, "conflict")
        out.append(SyncConflictItem(sessionId=sid, detectedAt=now, detail=detail))
    return out


def _overlapping(con: psycopg.Connection, kind: str) -> list[str]:
    """Sessions whose staged ``kind`` rows start at or before the last one stored.

    The common batch only appends (its rows all come after the stored ones): it needs one
    index lookup per session here, not one per staged row in the divergence join.
    """
    session, order = ROW_KEYS[kind]
    table = TABLES[kind]
    rows = con.execute(
        f"SELECT s.{session} FROM (SELECT {session}, min({order}) AS lo FROM _sync_{kind} "
        f"GROUP BY {session}) s WHERE s.lo <= (SELECT max(e.{order}) FROM {table} e "
        f"WHERE e.{session} = s.{session})"
    ).fetchall()
    return sorted(r[0] for r in rows)


def _open_conflicts(con: psycopg.Connection, touched: set[str]) -> set[str]:
    rows = con.execute(
        "SELECT session_id FROM sync_conflicts WHERE session_id = ANY(%s)", [sorted(touched)]
    ).fetchall()
    return {r[0] for r in rows}


def _set_state(con: psycopg.Connection, session_id: str, state: str) -> None:
    con.execute(
        "UPDATE sessions SET data = jsonb_set(data, '{syncState}', to_jsonb(%s::text)) "
        "WHERE id = %s",
        [state, session_id],
    )


def _move(con: psycopg.Connection, kind: str) -> int:
    """Move staged rows into their table; return how many were inserted."""
    table = TABLES[kind]
    cols = (*COLUMNS[kind], "owner") if kind == "policies" else COLUMNS[kind]
    names = ", ".join(cols)
    if kind in UPSERTS:
        clause, newest = UPSERTS[kind]
        key = ROW_KEYS[kind][0]
        select = f"SELECT DISTINCT ON ({key}) {names} FROM _sync_{kind} ORDER BY {key}, {newest}"
        if kind == "sessions":
            select = select.replace(
                "data FROM", "jsonb_set(data, '{syncState}', '\"synced\"') FROM", 1
            )
        rows = con.execute(
            f"INSERT INTO {table} ({names}) {select} {clause} RETURNING (xmax = 0)"
        ).fetchall()
        return sum(1 for r in rows if r[0])
    keys = ", ".join(ROW_KEYS[kind] if kind != "policies" else ("owner", "scope_key", "version"))
    cur = con.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM _sync_{kind} "
        f"ON CONFLICT ({keys}) DO NOTHING"
    )
    return max(cur.rowcount, 0)


def _held_rows(decoded: dict[str, list[dict[str, list[Any]]]], held: set[str]) -> int:
    if not held:
        return 0
    n = 0
    for kind, chunks in decoded.items():
        if kind == "policies":
            continue
        column = "id" if kind == "sessions" else "session_id"
        n += sum(1 for c in chunks for v in c[column] if v in held)
    return n
