"""Outbox chunks to and from their wire form (base64 of the stored gzip body)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence

from openfoal_kernel.protocol.sync import SyncBatch, SyncChunk

from ..store.outbox import OutboxChunk
from ..store.outbox_codec import SYNC_SCHEMA_VERSION, Chunk


def wire_chunk(chunk_id: int, kind: str, rows: int, body: bytes) -> SyncChunk:
    """One chunk as it travels."""
    return SyncChunk.model_validate(
        {"id": chunk_id, "kind": kind, "rows": rows, "data": base64.b64encode(body).decode()}
    )


def batch_of(user: str, chunks: Sequence[OutboxChunk], batch_id: str | None = None) -> SyncBatch:
    """A batch of outbox chunks; its id is derived from the chunk ids, so a retry of the same
    chunks is recognised by the cloud as the same batch."""
    ids = ",".join(str(c.id) for c in chunks)
    return SyncBatch(
        batchId=batch_id or f"b_{uuid.uuid5(uuid.NAMESPACE_URL, user + '/' + ids).hex}",
        schemaVersion=SYNC_SCHEMA_VERSION,
        user=user,
        chunks=[wire_chunk(c.id, c.kind, c.rows, c.body) for c in chunks],
    )


def wire_chunks(chunks: Sequence[Chunk]) -> list[SyncChunk]:
    """Freshly encoded chunks (a session's history) in wire form, numbered in order."""
    return [wire_chunk(i, c.kind, c.rows, c.body) for i, c in enumerate(chunks)]


def body_of(chunk: SyncChunk) -> bytes:
    """The gzip body of a wire chunk."""
    return base64.b64decode(chunk.data)
