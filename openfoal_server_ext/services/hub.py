"""The event hub: numbers each session's events, persists them, then fans them out.

Durability promise (DESIGN.md, "Storage"): a non-delta event is committed before anyone
sees it; deltas are announced at once and committed within the store worker's window.
``seq`` is assigned synchronously at publish time, and each event is delivered only after
the one before it in its session, so no delta overtakes a non-delta still committing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
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
        self._tail: dict[str, asyncio.Future[Frame]] = {}
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
        row = EventRow(session_id=session_id, seq=seq, event=event, payload=full,
                       state_version=self._state_version, at=utcnow(), run_id=run_id,
                       trace_id=trace_id)
        self.worker.stage_event(row)
        frame = {"type": "event", "event": event, "payload": full, "seq": seq,
                 "stateVersion": row.state_version}
        delta = event in DELTA_EVENTS
        prev = self._tail.get(session_id)
        loop = asyncio.get_running_loop()
        if delta and (prev is None or prev.done()):
            # fast path: nothing ahead of it; deliver now, commit within the window
            self.worker.schedule_commit()
            self._deliver(session_id, frame, delta=True)
            done: asyncio.Future[Frame] = loop.create_future()
            done.set_result(frame)
            self._tail[session_id] = done
            return done
        task = asyncio.ensure_future(self._finish(session_id, frame, prev, delta))
        self._tail[session_id] = task
        return task

    async def _finish(
        self, session_id: str, frame: Frame, prev: asyncio.Future[Frame] | None, delta: bool
    ) -> Frame:
        if delta:
            self.worker.schedule_commit()
        else:
            await self.worker.commit()
        if prev is not None and not prev.done():
            await asyncio.wait([prev])
        self._deliver(session_id, frame, delta=delta)
        return frame

    def broadcast(self, event: str, payload: dict[str, Any]) -> Frame:
        """Deliver a server-wide event (no session, so no ``seq``) to every connection.

        It carries the current ``stateVersion`` without advancing it: only stored events do,
        so the number stays monotonic across restarts."""
        frame = {"type": "event", "event": event, "payload": payload,
                 "stateVersion": self._state_version}
        targets = set().union(*self._owner_subs.values()) if self._owner_subs else set()
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
