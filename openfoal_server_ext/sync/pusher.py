"""The sync worker of a user's server: pushes the outbox to the cloud instance in batches.

One asyncio task. It reads the oldest pending chunks (on the store thread), posts them as one
batch, and marks them acked only once the cloud answered; a kill at any point therefore sends
the same rows again, which the cloud inserts nothing for. Timeouts, refused connections, 5xx
and 429 back off with full jitter; a refusal on content (another 4xx) is retried one chunk at
a time, and a chunk refused ``max_attempts`` times becomes a dead letter. Acked chunks are
purged after ``retain_acked_s``, a bounded number per pass. Pausing stops the pushes only:
local writes go on and queue in the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import httpx
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from openfoal_kernel.protocol import Session, utcnow
from openfoal_kernel.protocol.sync import (
    SyncBatch,
    SyncBatchResult,
    SyncConflictsRequest,
    SyncConflictsResult,
    SyncResolveRequest,
)

from ..store import StoreWorker
from ..store.outbox import OutboxChunk, OutboxTables
from . import settle
from .wire import batch_of

StatesCallback = Callable[[list[Session]], Awaitable[None]]

BATCHES_PATH = "openfoal/api/sync/batches"
RESOLUTIONS_PATH = "openfoal/api/sync/resolutions"
CONFLICTS_PATH = "openfoal/api/sync/conflicts"


class CloudRefused(Exception):
    """The cloud refused a request on its content (a 4xx other than 401, 408 and 429)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class CloudUnavailable(Exception):
    """The cloud could not take the request now (timeout, refused connection, 5xx...)."""


class SyncWorker(LoggingConfigurable):
    """Pushes this server's outbox to ``cloud_url`` (tuned by ``c.SyncWorker.*``)."""

    batch_rows = Int(50_000, config=True, help="Rows per pushed batch, at most (default 50000).")
    batch_chunks = Int(2_000, config=True, help="Outbox chunks per batch, at most (default 2000).")
    interval = Float(1.0, config=True, help="Seconds between looks at an empty outbox (default 1).")
    timeout = Float(30.0, config=True, help="Seconds before a push times out (default 30).")
    max_attempts = Int(
        3, config=True, help="Refusals on content before a chunk is dead-lettered (default 3)."
    )
    backoff_base = Float(0.5, config=True, help="First backoff, seconds (default 0.5).")
    backoff_cap = Float(30.0, config=True, help="Cap of the jittered backoff, s (default 30).")
    retain_acked_s = Float(
        3600.0, config=True, help="Acked outbox rows are purged after this many s (default 3600)."
    )
    purge_limit = Int(10_000, config=True, help="Acked chunks purged per pass (default 10000).")
    conflict_poll_s = Float(
        5.0,
        config=True,
        help="Seconds between asks, while the outbox is empty, for conflicts another server "
        "of the same user raised on the cloud (default 5; 0: never ask).",
    )

    def __init__(
        self,
        *,
        worker: StoreWorker,
        user: str,
        cloud_url: str,
        token: str,
        on_states: StatesCallback,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.worker = worker
        self.user = user
        self.cloud_url = cloud_url.rstrip("/") + "/"
        self.token = token
        self.on_states = on_states
        self.state = "idle"
        self.paused = False
        self.last_sync_at: datetime | None = None
        self.last_error: str | None = None
        self._failures = 0
        self._next_conflict_poll = 0.0
        self._settle_at: dict[str, float] = {}  # session -> when its conflict is looked at again
        self._solo_until = 0  # while set: push one chunk at a time up to this outbox id
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def box(self) -> OutboxTables:
        store = self.worker.store
        assert isinstance(store, OutboxTables)
        return store

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the persisted pause flag and last sync time, then start pushing."""
        meta = await self.worker.call(self.box.sync_meta)
        self.paused = meta.get("paused") == "1"
        if meta.get("lastSyncAt"):
            self.last_sync_at = datetime.fromisoformat(meta["lastSyncAt"])
        self.state = "paused" if self.paused else "idle"
        self._client = httpx.AsyncClient(
            timeout=self.timeout, headers={"Authorization": f"token {self.token}"}
        )
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop pushing (a batch in flight is abandoned: it is sent again next time)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        """Look at the outbox now (after a resume, a retry, new work)."""
        self._wake.set()

    async def set_paused(self, paused: bool) -> None:
        """Pause or resume pushing; kept across restarts."""
        self.paused = paused
        await self.worker.call(self.box.set_sync_meta, "paused", "1" if paused else "0")
        self.state = "paused" if paused else "idle"
        self.wake()

    # -- the loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                delay = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store failed: keep the loop alive, try again later
                self.log.exception("OpenFoal sync: a push step failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self._backoff()
            if delay > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass

    async def _step(self) -> float:
        """One push; return how long to wait before the next."""
        if self.paused:
            self.state = "paused"
            return 3600.0
        solo = self._solo_until > 0
        chunks = await self.worker.call(
            self.box.outbox_pending, self.batch_rows, 1 if solo else self.batch_chunks
        )
        if not chunks:
            self._solo_until = 0
            self.state = "idle"
            await self._purge()
            await self._learn_conflicts()
            return self.interval
        if solo and chunks[0].id > self._solo_until:
            self._solo_until = 0
        self.state = "syncing"
        try:
            result = await self.push(batch_of(self.user, chunks, _batch_id(self.user, chunks)))
        except CloudUnavailable as exc:
            self.last_error = str(exc)
            self.state = "backoff"
            return self._backoff()
        except CloudRefused as exc:
            self.last_error = str(exc)
            return await self._refused(chunks, str(exc))
        await self._acked(chunks, result)
        return 0.0

    async def _refused(self, chunks: Sequence[OutboxChunk], error: str) -> float:
        if len(chunks) > 1:
            self._solo_until = chunks[-1].id  # find the poisoned chunk one by one
            return 0.0
        attempts = await self.worker.call(self.box.outbox_failed, [chunks[0].id], error)
        if attempts >= self.max_attempts:
            await self.worker.call(self.box.outbox_mark, [chunks[0].id], "dead", utcnow(), error)
            self.log.warning("OpenFoal sync: chunk %d dead-lettered: %s", chunks[0].id, error)
            return 0.0
        self.state = "backoff"
        return min(self.backoff_cap, self.backoff_base * attempts)

    async def _acked(self, chunks: Sequence[OutboxChunk], result: SyncBatchResult) -> None:
        now = utcnow()
        self._failures = 0
        self.last_error = None
        self.last_sync_at = now
        box = self.box
        conflicted = {c.sessionId for c in result.conflicts}

        def record() -> list[Session]:
            box.outbox_mark([c.id for c in chunks], "acked", now)
            box.set_sync_meta("lastSyncAt", now.isoformat())
            for item in result.conflicts:
                box.put_conflict(item.sessionId, item.detectedAt, item.detail)
            open_conflicts = {c[0] for c in box.conflicts()}
            pending = box.outbox_pending_sessions()
            states: dict[str, str] = {}
            for chunk in chunks:
                for sid in chunk.sessions:
                    states[sid] = "synced"
            for sid in pending:
                states[sid] = "syncing"
            for sid in conflicted | (open_conflicts & set(states)):
                states[sid] = "conflict"
            return box.set_sync_states(states)

        changed = await self.worker.call(record)
        if changed:
            await self.on_states(changed)

    async def _learn_conflicts(self) -> None:
        """Mark here the conflicts the cloud holds for sessions this server has too: raised by
        another server of the same user, they are this side's as well. One the cloud no
        longer holds (the other server resolved it) ends here only when this side's copy
        equals the cloud's (:mod:`.settle`)."""
        now = asyncio.get_running_loop().time()
        if self.conflict_poll_s <= 0 or now < self._next_conflict_poll:
            return
        self._next_conflict_poll = now + self.conflict_poll_s
        box = self.box
        mine = await self.worker.call(lambda: [c[0] for c in box.conflicts()])
        asked = [s for s in mine if self._settle_at.get(s, 0.0) <= now][: settle.PER_POLL]
        try:
            answer = await self.pull_conflicts(asked)
        except (CloudUnavailable, CloudRefused) as exc:
            self.log.debug("OpenFoal sync: conflicts not read from the cloud: %s", exc)
            return
        await self._settle(answer, asked)
        if not answer.conflicts:
            return

        def record() -> list[Session]:
            known = {c[0] for c in box.conflicts()}
            fresh = [item for item in answer.conflicts if item.sessionId not in known]
            # only sessions this server holds change (the others are not here to mark)
            changed = box.set_sync_states({item.sessionId: "conflict" for item in fresh})
            here = {session.id for session in changed}
            for item in fresh:
                if item.sessionId in here:
                    box.put_conflict(item.sessionId, item.detectedAt, item.detail)
            return changed

        changed = await self.worker.call(record)
        if changed:
            await self.on_states(changed)

    async def _settle(self, answer: SyncConflictsResult, asked: list[str]) -> None:
        """End the conflicts here that the cloud no longer holds, where the copies agree (a
        copy that differs is asked about again after ``settle.RECHECK_S``)."""
        on_cloud = {item.sessionId for item in answer.conflicts}
        box, store = self.box, self.worker.store
        now = asyncio.get_running_loop().time()
        for sid in asked:
            digest = answer.digests.get(sid)
            if sid in on_cloud or digest is None:
                continue
            self._settle_at[sid] = now + settle.RECHECK_S

            def clear(sid: str = sid, digest: str = digest) -> list[Session]:
                if settle.local_digest(store, sid) != digest:
                    return []
                box.clear_conflict(sid)
                return box.set_sync_states({sid: "synced"})

            changed = await self.worker.call(clear)
            if changed:
                self._settle_at.pop(sid, None)
                self.log.info("OpenFoal sync: the conflict of %s was resolved elsewhere", sid)
                await self.on_states(changed)

    async def pull_conflicts(self, digests: Sequence[str] = ()) -> SyncConflictsResult:
        """The cloud's open conflicts of this server's user (and the history digests of the
        sessions named in ``digests``)."""
        request = SyncConflictsRequest(digests=list(digests))
        return SyncConflictsResult.model_validate(
            await self._post(CONFLICTS_PATH, request.model_dump_json())
        )

    async def _purge(self) -> None:
        cut = utcnow() - timedelta(seconds=self.retain_acked_s)
        await self.worker.call(self.box.outbox_purge, cut, self.purge_limit)

    def _backoff(self) -> float:
        """Full jitter: a random wait up to an exponentially growing, capped bound."""
        self._failures += 1
        bound = min(self.backoff_cap, self.backoff_base * 2 ** min(self._failures, 16))
        return random.uniform(self.backoff_base / 2, bound)

    # -- HTTP -----------------------------------------------------------------------------

    async def push(self, batch: SyncBatch) -> SyncBatchResult:
        """Post one batch; the cloud's answer."""
        body = await self._post(BATCHES_PATH, batch.model_dump_json())
        return SyncBatchResult.model_validate(body)

    async def post_resolution(self, request: SyncResolveRequest) -> dict[str, object]:
        """Post a conflict resolution; the cloud's answer (its copy of the session)."""
        return await self._post(RESOLUTIONS_PATH, request.model_dump_json())

    async def _post(self, path: str, content: str) -> dict[str, object]:
        assert self._client is not None
        try:
            r = await self._client.post(
                self.cloud_url + path,
                content=content,
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise CloudUnavailable(f"cloud not reachable: {type(exc).__name__}: {exc}") from exc
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code >= 500 or r.status_code in (401, 408, 429):
            raise CloudUnavailable(f"cloud answered {r.status_code}")
        if r.status_code >= 400 or not body.get("ok"):
            error = body.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise CloudRefused(r.status_code, str(message or r.text[:500]))
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise CloudRefused(r.status_code, "the cloud's answer has no payload")
        return payload


def _batch_id(user: str, chunks: Sequence[OutboxChunk]) -> str:
    """A batch id from the chunks' ids and content: a retry of the same chunks is the same
    batch, and a copied store's different rows under the same ids are not."""
    h = hashlib.sha256(user.encode())
    for c in chunks:
        h.update(f"{c.id}:{c.kind}:{c.rows}:".encode())
        h.update(c.body)
    return "b_" + h.hexdigest()[:40]
