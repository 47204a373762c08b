"""Session transcripts: read once from the store, appended as a run goes."""

from __future__ import annotations

from openfoal_kernel.protocol import ChatMessage, utcnow

from ..store import MessageRow, StoreWorker


class TranscriptService:
    """The cached transcript of each session, and the one way to add to it."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker
        self._cache: dict[str, list[ChatMessage]] = {}

    async def get(self, session_id: str) -> list[ChatMessage]:
        """The session's transcript (cached after the first read)."""
        cached = self._cache.get(session_id)
        if cached is None:
            await self.worker.commit()
            rows = await self.worker.call(self.worker.store.get_messages, session_id)
            cached = self._cache.setdefault(session_id, [r.message for r in rows])
        return cached

    async def append(self, session_id: str, run_id: str | None, msg: ChatMessage) -> None:
        """Store one entry and add it to the cached transcript."""
        transcript = await self.get(session_id)
        row = MessageRow(
            session_id=session_id, idx=len(transcript), message=msg, at=utcnow(), run_id=run_id
        )
        transcript.append(msg)
        self.worker.stage_message(row)
        self.worker.schedule_commit()

    def clear(self, session_id: str) -> None:
        """Start the next turn from an empty context (the stored rows stay)."""
        self._cache[session_id] = []

    def forget(self, session_id: str) -> None:
        """Drop a deleted session's cached transcript."""
        self._cache.pop(session_id, None)
