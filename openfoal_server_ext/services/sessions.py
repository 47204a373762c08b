"""Sessions: creation, ownership, lookup by key, listing, and announced updates."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, Session, utcnow
from openfoal_kernel.protocol.events import SESSION_UPDATED
from openfoal_kernel.protocol.session_keys import (
    SessionKeyError,
    build_session_key,
    canonical_session_key,
)

from ..store import StoreWorker
from .hub import EventHub
from .roles import CrossUserRefusal


def new_id(prefix: str) -> str:
    """A sortable-enough random identifier with a readable prefix."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def encode_cursor(updated_at: datetime, session_id: str) -> str:
    """Opaque cursor for session listing."""
    raw = json.dumps([updated_at.isoformat(), session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; a bad cursor is INVALID_REQUEST."""
    try:
        at, sid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(sid)
    except Exception as exc:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, "cursor is not valid") from exc


class SessionService:
    """The sessions of this server, cached in memory and written through to the store."""

    def __init__(self, worker: StoreWorker, hub: EventHub, *, workspace_id: str) -> None:
        self.worker = worker
        self.hub = hub
        self.workspace_id = workspace_id
        self._cache: dict[str, Session] = {}

    async def start(self) -> None:
        """Load sessions into the cache."""
        for session in await self.worker.call(self.worker.store.all_sessions):
            self._cache[session.id] = session
            self.hub.set_owner(session.id, session.owner)

    def peek(self, session_id: str) -> Session | None:
        """The cached session, without ownership checks."""
        return self._cache.get(session_id)

    def get_owned(self, owner: str, session_id: str) -> Session:
        """Return the session if ``owner`` owns it (NOT_FOUND / FORBIDDEN otherwise)."""
        session = self._cache.get(session_id)
        if session is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no session {session_id!r}")
        if session.owner != owner:
            raise CrossUserRefusal(
                "this session belongs to another user", owner=session.owner, resource=session_id
            )
        return session

    async def create(
        self,
        owner: str,
        *,
        session_key: str | None = None,
        session_id: str | None = None,
        runtime_mode: str = "local",
        title: str = "",
    ) -> Session:
        """Create and persist a session (the key defaults to a fresh direct chat)."""
        sid = session_id or new_id("ses")
        key = session_key or build_session_key(self.workspace_id, "main", "dm", "jupyterlab", sid)
        session = Session(
            id=sid,
            sessionKey=key,
            owner=owner,
            runtimeMode=runtime_mode,  # type: ignore[arg-type]
            title=title,
        )
        self.worker.stage_session(session)  # committed with the run's first event
        self._cache[sid] = session
        self.hub.set_owner(sid, owner)
        return session

    async def resolve(
        self, owner: str, session_id: str | None, session_key: str | None
    ) -> tuple[Session, bool]:
        """Find the run's session by id or key, or create it; return it and whether it is new."""
        if session_id:
            return self.get_owned(owner, session_id), False
        if session_key:
            try:
                key = canonical_session_key(session_key)
            except SessionKeyError as exc:
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"sessionKey: {exc}") from exc
            for session in self._cache.values():
                if session.sessionKey == key and session.owner == owner:
                    return session, False
            return await self.create(owner, session_key=key), True
        return await self.create(owner), True

    def update(self, session_id: str, **changes: Any) -> Session:
        """Apply changes, stage them, and announce ``session.updated`` (committed first)."""
        current = self._cache[session_id]
        updated = current.model_copy(update={**changes, "updatedAt": utcnow()})
        self.worker.stage_session(updated)
        self._cache[updated.id] = updated
        self.hub.publish(updated.id, SESSION_UPDATED, {"session": updated.wire()})
        return updated

    def adopt(self, session: Session) -> None:
        """Cache a session written by someone else (sync), without staging or announcing it."""
        self._cache[session.id] = session
        self.hub.set_owner(session.id, session.owner)

    def forget(self, session_id: str) -> None:
        """Drop a session from the cache: from now on it is NOT_FOUND."""
        self._cache.pop(session_id, None)

    async def delete(self, session_id: str) -> None:
        """Forget a session and delete its stored events and transcript."""
        self.forget(session_id)
        await self.worker.commit()
        await self.worker.call(self.worker.store.delete_session, session_id)

    async def list(
        self, owner: str, *, limit: int, cursor: str | None, query: str | None
    ) -> tuple[list[Session], str | None]:
        """A page of the owner's sessions, newest first, and the cursor of the next page."""
        before = decode_cursor(cursor) if cursor else None
        await self.worker.commit()
        items = await self.worker.call(
            self.worker.store.list_sessions,
            owner=owner,
            limit=limit + 1,
            before=before,
            query=query,
        )
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            next_cursor = encode_cursor(last.updatedAt, last.id)
        return items, next_cursor
