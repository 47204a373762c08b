"""The sync wire encoding: a store write batch as compact column chunks (gzip JSON).

Each chunk is one table's rows of one write batch, column by column, so that a million events
are a few hundred chunks and the cloud loads each with one ``COPY`` (no JSON object per row).
The per-row ids are the tables' natural keys (:data:`ROW_KEYS`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .base import WriteBatch

#: Version of the chunk layout below; the cloud refuses any other.
SYNC_SCHEMA_VERSION = 1

#: kind -> the columns of its chunk (the same names and order as the stores' tables).
COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("id", "owner", "session_key", "updated_at", "data"),
    "runs": ("id", "session_id", "owner", "trace_id", "status", "created_at", "ended_at", "data"),
    "gates": (
        "gate_id",
        "owner",
        "session_id",
        "run_id",
        "status",
        "created_at",
        "resolved_at",
        "data",
    ),
    "policies": ("scope_key", "version", "updated_at", "updated_by", "data"),
    "events": (
        "session_id",
        "seq",
        "event",
        "run_id",
        "trace_id",
        "state_version",
        "ts",
        "payload",
    ),
    "messages": ("session_id", "idx", "run_id", "ts", "data"),
    "tool_runs": (
        "id",
        "session_id",
        "run_id",
        "trace_id",
        "tool_name",
        "args",
        "status",
        "duration_ms",
        "runtime_mode",
        "started_at",
        "ended_at",
        "error",
        "output",
    ),
    "audit": (
        "id",
        "ts",
        "actor",
        "action",
        "resource",
        "session_id",
        "run_id",
        "trace_id",
        "detail",
        "owner",
    ),
}

#: kind -> the columns that identify a row (what makes a replay insert nothing).
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "sessions": ("id",),
    "runs": ("id",),
    "gates": ("gate_id",),
    "policies": ("scope_key", "version"),
    "events": ("session_id", "seq"),
    "messages": ("session_id", "idx"),
    "tool_runs": ("run_id", "id"),
    "audit": ("id",),
}

_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(kw_only=True)
class Chunk:
    """One table's rows of one write batch, encoded."""

    kind: str
    rows: int
    sessions: list[str]
    body: bytes


class ChunkError(ValueError):
    """A chunk that does not decode to the columns of its kind (the message says why)."""


def encode_columns(columns: dict[str, list[Any]]) -> bytes:
    """Gzip the JSON of a column dict (fast level: the link, not the CPU, is the limit)."""
    return gzip.compress(_ENCODER.encode(columns).encode(), compresslevel=1)


def decode_chunk(kind: str, body: bytes) -> dict[str, list[Any]]:
    """The columns of a chunk, checked against its kind (:class:`ChunkError` otherwise)."""
    expected = COLUMNS.get(kind)
    if expected is None:
        raise ChunkError(f"unknown chunk kind {kind!r}")
    try:
        columns = json.loads(gzip.decompress(body))
    except (OSError, EOFError, ValueError) as exc:
        raise ChunkError(f"{kind} chunk is not gzip JSON: {exc}") from exc
    if not isinstance(columns, dict) or set(columns) != set(expected):
        raise ChunkError(f"{kind} chunk must have exactly the columns {list(expected)}")
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise ChunkError(f"{kind} chunk columns must be lists of one length")
    for name in ROW_KEYS[kind]:
        if any(v is None for v in columns[name]):
            raise ChunkError(f"{kind} chunk: row id column {name!r} has nulls")
    for value in columns.values():
        for item in value:
            if item is not None and not isinstance(item, (str, int, float)):
                raise ChunkError(f"{kind} chunk: values must be strings, numbers or null")
    return columns


def _chunk(kind: str, columns: dict[str, list[Any]], sessions: Iterable[str | None]) -> Chunk:
    return Chunk(
        kind=kind,
        rows=len(next(iter(columns.values()))),
        sessions=sorted({s for s in sessions if s}),
        body=encode_columns(columns),
    )


def encode_batch(batch: WriteBatch) -> list[Chunk]:
    """The chunks of a write batch, one per table it touches."""
    out: list[Chunk] = []
    cols: dict[str, list[Any]]
    if batch.sessions:
        ss = list(batch.sessions.values())
        cols = {
            "id": [s.id for s in ss],
            "owner": [s.owner for s in ss],
            "session_key": [s.sessionKey for s in ss],
            "updated_at": [s.updatedAt.isoformat() for s in ss],
            "data": [s.model_dump_json() for s in ss],
        }
        out.append(_chunk("sessions", cols, cols["id"]))
    if batch.runs:
        rs = list(batch.runs.values())
        cols = {
            "id": [r.id for r in rs],
            "session_id": [r.session_id for r in rs],
            "owner": [r.owner for r in rs],
            "trace_id": [r.trace_id for r in rs],
            "status": [r.status for r in rs],
            "created_at": [r.created_at.isoformat() for r in rs],
            "ended_at": [_iso(r.ended_at) for r in rs],
            "data": [
                _dumps(
                    {
                        "input": r.input,
                        "model": r.model,
                        "runtimeMode": r.runtime_mode,
                        "error": r.error,
                        "usage": r.usage,
                        "policyVersion": r.policy_version,
                    }
                )
                for r in rs
            ],
        }
        out.append(_chunk("runs", cols, cols["session_id"]))
    if batch.gates:
        gs = list(batch.gates.values())
        cols = {
            "gate_id": [g.gateId for g, _ in gs],
            "owner": [o for _, o in gs],
            "session_id": [g.sessionId for g, _ in gs],
            "run_id": [g.runId for g, _ in gs],
            "status": [g.status for g, _ in gs],
            "created_at": [g.createdAt.isoformat() for g, _ in gs],
            "resolved_at": [_iso(g.resolvedAt) for g, _ in gs],
            "data": [g.model_dump_json() for g, _ in gs],
        }
        out.append(_chunk("gates", cols, cols["session_id"]))
    if batch.policies:
        ps = batch.policies
        cols = {
            "scope_key": [p.scopeKey for p in ps],
            "version": [p.version for p in ps],
            "updated_at": [p.updatedAt.isoformat() for p in ps],
            "updated_by": [p.updatedBy for p in ps],
            "data": [p.model_dump_json() for p in ps],
        }
        out.append(_chunk("policies", cols, ()))
    if batch.events:
        es = batch.events
        cols = {
            "session_id": [e.session_id for e in es],
            "seq": [e.seq for e in es],
            "event": [e.event for e in es],
            "run_id": [e.run_id for e in es],
            "trace_id": [e.trace_id for e in es],
            "state_version": [e.state_version for e in es],
            "ts": [e.at.isoformat() for e in es],
            "payload": [_dumps(e.payload) for e in es],
        }
        out.append(_chunk("events", cols, cols["session_id"]))
    if batch.messages:
        ms = batch.messages
        cols = {
            "session_id": [m.session_id for m in ms],
            "idx": [m.idx for m in ms],
            "run_id": [m.run_id for m in ms],
            "ts": [m.at.isoformat() for m in ms],
            "data": [m.message.model_dump_json(exclude_none=True) for m in ms],
        }
        out.append(_chunk("messages", cols, cols["session_id"]))
    if batch.tool_runs:
        ts = batch.tool_runs
        cols = {
            "id": [t.id for t in ts],
            "session_id": [t.session_id for t in ts],
            "run_id": [t.run_id for t in ts],
            "trace_id": [t.trace_id for t in ts],
            "tool_name": [t.tool_name for t in ts],
            "args": [_dumps(t.args) for t in ts],
            "status": [t.status for t in ts],
            "duration_ms": [t.duration_ms for t in ts],
            "runtime_mode": [t.runtime_mode for t in ts],
            "started_at": [t.started_at.isoformat() for t in ts],
            "ended_at": [t.ended_at.isoformat() for t in ts],
            "error": [_dumps(t.error) if t.error is not None else None for t in ts],
            "output": [t.output[:16_384] for t in ts],
        }
        out.append(_chunk("tool_runs", cols, cols["session_id"]))
    if batch.audit:
        au = batch.audit
        cols = {
            "id": [a.entry.id for a in au],
            "ts": [a.entry.at.isoformat() for a in au],
            "actor": [a.entry.actor for a in au],
            "action": [a.entry.action for a in au],
            "resource": [a.entry.resource for a in au],
            "session_id": [a.entry.sessionId for a in au],
            "run_id": [a.entry.runId for a in au],
            "trace_id": [a.entry.traceId for a in au],
            "detail": [_dumps(a.entry.detail) for a in au],
            "owner": [a.owner for a in au],
        }
        out.append(_chunk("audit", cols, cols["session_id"]))
    return out
