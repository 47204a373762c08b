"""The cloud instance's side of sync: takes pushed batches and conflict resolutions in."""

from __future__ import annotations

from openfoal_kernel.protocol.sync import (
    SyncBatch,
    SyncBatchResult,
    SyncConflictsRequest,
    SyncConflictsResult,
    SyncHistory,
    SyncResolveRequest,
)

from ..store import StoreWorker
from ..sync.intake import SyncIntake
from ..sync.resolve import CloudResolver
from .sessions import SessionService


class SyncReceiver:
    """Applies batches on the store thread and keeps the session cache in step."""

    def __init__(self, worker: StoreWorker, sessions: SessionService, intake: SyncIntake) -> None:
        self.worker = worker
        self.sessions = sessions
        self.intake = intake
        self.resolver = CloudResolver(intake.store)

    async def receive(self, owner: str, batch: SyncBatch) -> SyncBatchResult:
        """Take one batch for ``owner`` (who the request authenticated as)."""
        result, sessions = await self.worker.call(self.intake.apply, owner, batch)
        for session in sessions:
            self.sessions.adopt(session)
        return result

    async def conflicts(self, owner: str, request: SyncConflictsRequest) -> SyncConflictsResult:
        """``owner``'s open conflicts on the cloud, whichever server raised them, and the
        history digests the request asks for."""
        return await self.worker.call(self.intake.conflicts, owner, request.digests)

    async def resolve(self, owner: str, request: SyncResolveRequest) -> SyncHistory:
        """End a conflict on the cloud side; return the cloud's copy of the session."""
        history = await self.worker.call(self.resolver.resolve, owner, request)
        self.sessions.adopt(history.session)
        return history
