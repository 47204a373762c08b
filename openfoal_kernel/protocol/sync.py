"""Wire models of sync: the batches a user's server pushes to its cloud instance, the
cloud's answers, and the console's view of the sync state (``sync.status``).

A batch carries outbox chunks: one table's rows of one local write batch, column by column,
gzip-compressed JSON in base64 (``data``). The row ids are each table's natural keys, so a
replayed, duplicated or reordered batch inserts nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import Session

ChunkKind = Literal[
    "sessions", "runs", "gates", "policies", "events", "messages", "tool_runs", "audit"
]
SyncRunState = Literal["disabled", "idle", "syncing", "paused", "backoff", "cloud"]
Resolution = Literal["keep_local", "keep_cloud", "fork"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class SyncChunk(_Wire):
    """One outbox chunk: ``rows`` rows of one table, encoded (see the module docstring)."""

    id: int = Field(ge=0)
    """The chunk's outbox id on the pushing server (for its acks; not a row id)."""
    kind: ChunkKind
    rows: int = Field(ge=0)
    data: str = Field(max_length=64 * 1024 * 1024)
    """base64 of gzip of the JSON object ``{column: [values...]}``."""


class SyncBatch(_Wire):
    """``POST openfoal/api/sync/batches``: chunks pushed by one user's server."""

    batchId: str = Field(min_length=1, max_length=200)
    schemaVersion: int
    user: str = Field(min_length=1, max_length=200)
    """Whose rows these are: must be the user the request authenticates as."""
    chunks: list[SyncChunk] = Field(max_length=100_000)


class SyncConflictItem(_Wire):
    """A session whose history diverged from the cloud's copy."""

    sessionId: str
    detectedAt: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class SyncConflictsRequest(_Wire):
    """``POST openfoal/api/sync/conflicts`` (the caller is who the token says).

    ``digests``: sessions (the caller's own, at most 100) whose history digest to answer too:
    a server asks for those it holds in conflict, to end one the other server resolved once
    both copies agree."""

    digests: list[str] = Field(default_factory=list, max_length=100)


class SyncConflictsResult(_Wire):
    """``POST openfoal/api/sync/conflicts``: the caller's sessions in conflict on the cloud
    (a server learns there of a conflict another server of the same user raised), and the
    history digests asked for (sessionId -> digest; a session the cloud lacks has none)."""

    conflicts: list[SyncConflictItem] = Field(default_factory=list)
    digests: dict[str, str] = Field(default_factory=dict)


class SyncBatchResult(_Wire):
    """The cloud's answer to a batch (the same answer again for a replayed batch id)."""

    batchId: str
    inserted: int
    """Rows written now (a duplicate row is not counted)."""
    duplicates: int
    """Rows already there with the same id (and, for history, the same content)."""
    replayed: bool = False
    """The batch id was seen before: nothing was done."""
    conflicts: list[SyncConflictItem] = Field(default_factory=list)
    """Sessions whose rows were held back: their history diverged from the cloud's."""


class SyncHistory(_Wire):
    """A session's full history as chunks (the cloud's copy, or the local one to keep)."""

    session: Session
    chunks: list[SyncChunk] = Field(default_factory=list)


class SyncResolveRequest(_Wire):
    """``POST openfoal/api/sync/resolutions``: end a conflict on the cloud side."""

    schemaVersion: int
    user: str = Field(min_length=1, max_length=200)
    sessionId: str = Field(min_length=1, max_length=200)
    resolution: Resolution
    local: SyncHistory | None = None
    """``keep_local``: the local history that replaces the cloud's copy."""


class DeadLetter(_Wire):
    """An outbox chunk the cloud kept refusing on its content."""

    id: int
    kind: ChunkKind
    rows: int
    attempts: int
    error: str | None = None
    createdAt: datetime
