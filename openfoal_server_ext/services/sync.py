"""Sync as the console sees it: ``sync.status``, pause and resume, dead letters, conflicts.

On a user's server this drives the :class:`~openfoal_server_ext.sync.pusher.SyncWorker`; on a
cloud instance it answers for what the cloud received (state ``cloud``). Session sync states
change in place (no outbox entry: they are each side's own view) and are announced with
``sync.state_changed``.
"""

from __future__ import annotations

from typing import Any

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, Session, utcnow
from openfoal_kernel.protocol.events import SYNC_STATE_CHANGED
from openfoal_kernel.protocol.results import SyncResolveResult, SyncStatusResult
from openfoal_kernel.protocol.sync import (
    DeadLetter,
    SyncConflictItem,
    SyncHistory,
    SyncResolveRequest,
)

from ..store import StoreWorker, WriteBatch
from ..store.outbox import OutboxTables
from ..store.outbox_codec import SYNC_SCHEMA_VERSION
from ..sync.pusher import SyncWorker
from ..sync.resolve import (
    forked_copy,
    history_rows,
    history_wire,
    local_history,
    session_records,
)
from .audit import AuditService
from .context import RequestContext
from .hub import EventHub
from .sessions import SessionService


class SyncService:
    """The sync state of this server and the console's actions on it."""

    def __init__(
        self,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        *,
        role: str,
        audit: AuditService,
        pusher: SyncWorker | None = None,
        cloud_url: str = "",
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.role = role
        self.audit = audit
        self.pusher = pusher
        self.cloud_url = cloud_url

    @property
    def box(self) -> OutboxTables:
        store = self.worker.store
        if not isinstance(store, OutboxTables):
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, "this store keeps no sync outbox")
        return store

    async def start(self) -> None:
        """Start pushing, when a cloud is set."""
        if self.pusher is not None:
            await self.pusher.start()

    async def stop(self) -> None:
        """Stop pushing."""
        if self.pusher is not None:
            await self.pusher.stop()

    async def announce(self, changed: list[Session]) -> None:
        """Take new session sync states into the cache and tell the clients."""
        for session in changed:
            cached = self.sessions.peek(session.id)
            if cached is not None:
                self.sessions.adopt(cached.model_copy(update={"syncState": session.syncState}))
            self.hub.broadcast(
                SYNC_STATE_CHANGED, {"sessionId": session.id, "syncState": session.syncState}
            )

    async def status(self, owner: str) -> SyncStatusResult:
        """``sync.status``."""
        box = self.box
        await self.worker.commit()

        def read() -> tuple[dict[str, int], Any, list[Any], list[Any]]:
            return (
                box.outbox_counts(),
                box.outbox_oldest_pending(),
                box.outbox_dead(),
                box.conflicts(),
            )

        counts, oldest, dead, conflicts = await self.worker.call(read)
        items = [
            SyncConflictItem(sessionId=sid, detectedAt=at, detail=detail)
            for sid, at, detail in conflicts
            if self.role != "cloud" or detail.get("owner") == owner
        ]
        if self.role == "cloud":
            return SyncStatusResult(state="cloud", pending=0, conflicts=items)
        letters = [
            DeadLetter(
                id=c.id,
                kind=c.kind,  # type: ignore[arg-type]
                rows=c.rows,
                attempts=c.attempts,
                error=c.error,
                createdAt=c.created_at,
            )
            for c in dead
        ]
        p = self.pusher
        return SyncStatusResult(
            state=p.state if p is not None else "disabled",  # type: ignore[arg-type]
            lastSyncAt=p.last_sync_at if p is not None else None,
            pending=counts["pending"],
            deadLetters=letters,
            conflicts=items,
            lagSeconds=(utcnow() - oldest).total_seconds() if oldest is not None else None,
            cloudUrl=self.cloud_url or None,
            lastError=p.last_error if p is not None else None,
        )

    def _need_pusher(self) -> SyncWorker:
        if self.pusher is None:
            raise OpenFoalError(
                ErrorCode.INVALID_REQUEST,
                "sync is not set up on this server: set c.OpenFoalApp.cloud_url "
                "(OPENFOAL_CLOUD_URL) and cloud_token (OPENFOAL_CLOUD_TOKEN)",
            )
        return self.pusher

    async def set_paused(self, owner: str, paused: bool) -> SyncStatusResult:
        """``sync.pause`` / ``sync.resume``."""
        await self._need_pusher().set_paused(paused)
        return await self.status(owner)

    async def retry(self, owner: str, ids: list[int] | None) -> SyncStatusResult:
        """``sync.retry``: dead letters back in the queue."""
        pusher = self._need_pusher()
        await self.worker.call(self.box.outbox_requeue, ids)
        pusher.wake()
        return await self.status(owner)

    async def discard(self, owner: str, ids: list[int] | None) -> SyncStatusResult:
        """``sync.discard``: dead letters dropped (the local rows stay)."""
        self._need_pusher()
        await self.worker.call(self.box.outbox_discard, ids)
        return await self.status(owner)

    async def resolve(
        self, ctx: RequestContext, session_id: str, resolution: str
    ) -> SyncResolveResult:
        """``sync.resolve``: end a session's conflict, on the cloud and here."""
        pusher = self._need_pusher()
        session = self.sessions.get_owned(ctx.user, session_id)
        await self.worker.commit()
        store = self.worker.store
        local = await self.worker.call(local_history, store, session_id)
        records = (
            await self.worker.call(session_records, store, *local[:2])
            if resolution == "keep_local"
            else None
        )
        request = SyncResolveRequest(
            schemaVersion=SYNC_SCHEMA_VERSION,
            user=session.owner,
            sessionId=session_id,
            resolution=resolution,  # type: ignore[arg-type]
            local=history_wire(*local, records=records) if records is not None else None,
        )
        try:
            cloud = SyncHistory.model_validate(await pusher.post_resolution(request))
        except Exception as exc:
            raise OpenFoalError(
                ErrorCode.SYNC_CONFLICT,
                f"the cloud did not take the resolution: {exc}",
                retryable=True,
            ) from exc
        forked: Session | None = None
        if resolution == "keep_local":
            kept = local[0].model_copy(update={"syncState": "synced"})
            await self.worker.call(self.box.replace_history, kept, local[1], local[2])
        else:
            if resolution == "fork":
                fork, events, messages = forked_copy(*local)
                await self.worker.call(
                    store.write_batch,
                    WriteBatch(sessions={fork.id: fork}, events=events, messages=messages),
                )
                self.sessions.adopt(fork)
                self.hub.set_last_seq(fork.id, max((e.seq for e in events), default=0))
                forked = fork
            events, messages = history_rows(cloud)
            kept = cloud.session.model_copy(
                update={
                    "syncState": "synced",
                    "status": session.status,
                    "runtimeMode": session.runtimeMode,
                }
            )
            await self.worker.call(self.box.replace_history, kept, events, messages)
            self.hub.set_last_seq(session_id, max((e.seq for e in events), default=0))
        self.sessions.adopt(kept)
        await self.audit.record_now(
            actor=ctx.user,
            action="sync.resolve",
            resource=f"session:{session_id}",
            trace_id=ctx.trace_id,
            owner=session.owner,
            session_id=session_id,
            detail={"resolution": resolution, "forkedTo": forked.id if forked else None},
        )
        await self.announce([kept] + ([forked] if forked else []))
        pusher.wake()
        return SyncResolveResult(session=kept, forked=forked)
