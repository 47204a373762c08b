"""The event hub: numbers each session's events, persists them, then fans them out.

Durability promise (DESIGN.md, "Storage"): a non-delta event is committed before anyone
sees it; deltas are announced at once and committed within the store worker's window.
``seq`` is assigned synchronously at publish time, and each event is delivered only after
the one before it in its session, so no delta overtakes a non-delta still committing.

While nothing waits in a session, a delta is delivered at once. Otherwise events queue in
the session's FIFO, which one task drains in order (committing before each non-delta); a
burst of deltas behind a commit therefore costs a list append each, not a task each.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from openfoal_kernel.protocol import utcnow
from openfoal_kernel.protocol.events import DELTA_EVENTS

from ..store import EventRow, StoreWorker

log = logging.getLogger(__name__)

Frame = dict[str, Any]
Subscriber = Callable[[Frame], None]


class EventHub:
    """Assigns ``seq``/``stateVersion``, persists and delivers session events."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker
        self._seq: dict[str, int] = {}
        self._state_version = 0
        # events waiting for their turn (a commit ahead of them), per session, in seq order
        self._queues: dict[str, deque[tuple[Frame, int, asyncio.Future[Frame]]]] = {}
        # events are counted as they are staged; those up to _durable are known committed,
        # so a non-delta staged before a commit that already finished needs no commit of its own
        self._staged = 0
        self._durable = 0
        self._drainers: set[asyncio.Future[None]] = set()
        self._session_subs: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._owner_subs: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._owners: dict[str, str] = {}

    async def start(self) -> None:
        """Load the last numbers from the store."""
        self._seq = await self.worker.call(self.worker.store.last_seqs)
        self._state_version = await self.worker.call(self.worker.store.max_state_version)

    @property
    def state_version(self) -> int:
        """The current state version."""
        return self._state_version

    def last_seq(self, session_id: str) -> int:
        """The last seq given to this session."""
        return self._seq.get(session_id, 0)

    def set_last_seq(self, session_id: str, seq: int) -> None:
        """Continue a session's numbering after ``seq`` (its history was replaced by sync)."""
        self._seq[session_id] = seq

    def set_owner(self, session_id: str, owner: str) -> None:
        """Remember a session's owner, for owner-wide subscriptions."""
        self._owners[session_id] = owner

    # -- subscriptions --------------------------------------------------------------------

    def subscribe_session(self, session_id: str, sub: Subscriber) -> None:
        """Deliver every event of the session to ``sub``."""
        self._session_subs[session_id].add(sub)

    def subscribe_owner(self, owner: str, sub: Subscriber) -> None:
        """Deliver the non-delta events of all the owner's sessions to ``sub``."""
        self._owner_subs[owner].add(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop delivering anything to ``sub``."""
        for subs in (*self._session_subs.values(), *self._owner_subs.values()):
            subs.discard(sub)

    # -- publishing -----------------------------------------------------------------------

    def publish(
        self,
        session_id: str,
        event: str,
        payload: dict[str, Any],
        *,
        run_id: str | None = None,
        trace_id: str | None = None,
    ) -> asyncio.Future[Frame]:
        """Number the event now; persist and deliver it in order. Await the result to know
        it was delivered (a non-delta is committed before that)."""
        full = {"sessionId": session_id, **payload}
        if run_id is not None:
            full.setdefault("runId", run_id)
        if trace_id is not None:
            full.setdefault("traceId", trace_id)
        seq = self._seq.get(session_id, 0) + 1
        self._seq[session_id] = seq
        self._state_version += 1
        row = EventRow(
            session_id=session_id,
            seq=seq,
            event=event,
            payload=full,
            state_version=self._state_version,
            at=utcnow(),
            run_id=run_id,
            trace_id=trace_id,
        )
        self.worker.stage_event(row)
        self._staged += 1
        frame = {
            "type": "event",
            "event": event,
            "payload": full,
            "seq": seq,
            "stateVersion": row.state_version,
        }
        delta = event in DELTA_EVENTS
        done: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(session_id)
        if delta and queue is None:
            # fast path: nothing ahead of it; deliver now, commit within the window
            self.worker.schedule_commit()
            self._deliver(session_id, frame, delta=True)
            done.set_result(frame)
            return done
        if queue is None:
            queue = self._queues[session_id] = deque()
            drainer = asyncio.ensure_future(self._drain(session_id, queue))
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        queue.append((frame, 0 if delta else self._staged, done))
        return done

    async def _drain(
        self, session_id: str, queue: deque[tuple[Frame, int, asyncio.Future[Frame]]]
    ) -> None:
        """Deliver a session's queued events in order, each non-delta once committed.

        Queue entries carry 0 for a delta, else the event's staging count."""
        try:
            while queue:
                frame, staged, done = queue[0]
                delta = staged == 0
                if delta:
                    self.worker.schedule_commit()
                elif staged > self._durable:
                    # everything staged so far goes into this commit (or one before it)
                    mark = self._staged
                    try:
                        await self.worker.commit()
                        self._durable = max(self._durable, mark)
                    except BaseException as exc:  # not durable: not announced
                        queue.popleft()
                        if isinstance(exc, asyncio.CancelledError):
                            done.cancel()
                            raise
                        if not done.cancelled():
                            done.set_exception(exc)
                        continue
                queue.popleft()
                self._deliver(session_id, frame, delta=delta)
                if not done.cancelled():
                    done.set_result(frame)
        finally:
            if self._queues.get(session_id) is queue:
                del self._queues[session_id]

    def broadcast(
        self, event: str, payload: dict[str, Any], *, owners: set[str] | None = None
    ) -> Frame:
        """Deliver a server-wide event to every connected client (every owner subscriber).

        Such an event (``policy.updated``) belongs to no session, so it has no ``seq`` and
        ``sessions.get`` does not replay it; the caller commits the state it announces first.
        It advances ``stateVersion``, since the server's state changed. The number itself is
        not stored: after a restart the next session event may carry it again, and clients
        resynchronise on reconnect anyway."""
        self._state_version += 1
        frame = {
            "type": "event",
            "event": event,
            "payload": payload,
            "stateVersion": self._state_version,
        }
        subs = (
            self._owner_subs.values()
            if owners is None
            else [self._owner_subs.get(o, set()) for o in owners]
        )  # ``owners``: only their clients (a change to one user's policy)
        targets: set[Subscriber] = set().union(*subs)
        for sub in targets:
            try:
                sub(frame)
            except Exception:
                log.exception("event subscriber failed")
        return frame

    def _deliver(self, session_id: str, frame: Frame, *, delta: bool) -> None:
        targets = set(self._session_subs.get(session_id, ()))
        if not delta:
            owner = self._owners.get(session_id)
            if owner is not None:
                targets |= self._owner_subs.get(owner, set())
        for sub in targets:
            try:
                sub(frame)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("event subscriber failed")
