"""The single writer: store calls on one thread, and a write-behind batch with commit points.

Services *stage* rows (sessions, runs, transcript, events, audit); a ``commit()`` writes all
that is staged in one transaction. Callers that promise durability (a non-delta event, an
audit entry) await ``commit()`` before announcing; deltas rely on ``schedule_commit()``,
which commits within the configured window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from openfoal_kernel.protocol import AuditEntry, GateItem, Policy, Session

from .base import AuditRow, EventRow, MessageRow, RunRow, Store, ToolRunRow, WriteBatch

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger(__name__)


class StoreWorker:
    """Serialises every call to a :class:`Store` on one thread (the only writer)."""

    def __init__(self, store: Store, *, window_s: float = 0.05) -> None:
        self.store = store
        self.window_s = window_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openfoal-store")
        self._batch = WriteBatch()
        self._commit_lock: asyncio.Lock | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the store thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    # -- staging --------------------------------------------------------------------------

    def stage_session(self, session: Session) -> None:
        """Stage the latest version of a session."""
        self._batch.sessions[session.id] = session

    def stage_run(self, run: RunRow) -> None:
        """Stage the latest version of a run."""
        self._batch.runs[run.id] = run

    def stage_event(self, row: EventRow) -> None:
        """Stage an event row."""
        self._batch.events.append(row)

    def stage_message(self, row: MessageRow) -> None:
        """Stage a transcript entry."""
        self._batch.messages.append(row)

    def stage_audit(self, entry: AuditEntry, owner: str) -> None:
        """Stage an audit entry of ``owner``'s trail."""
        self._batch.audit.append(AuditRow(entry=entry, owner=owner))

    def stage_policy(self, policy: Policy) -> None:
        """Stage a new policy version."""
        self._batch.policies.append(policy)

    def stage_gate(self, gate: GateItem, owner: str) -> None:
        """Stage the latest state of a gate."""
        self._batch.gates[gate.gateId] = (gate, owner)

    def stage_tool_run(self, row: ToolRunRow) -> None:
        """Stage a finished tool call."""
        self._batch.tool_runs.append(row)

    # -- commit points --------------------------------------------------------------------

    async def commit(self) -> None:
        """Write everything staged so far in one transaction."""
        if self._commit_lock is None:
            self._commit_lock = asyncio.Lock()
        async with self._commit_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._batch:
                return
            batch, self._batch = self._batch, WriteBatch()
            try:
                await self.call(self.store.write_batch, batch)
            except Exception:
                _restage(self._batch, batch)  # keep it for the next commit; lose nothing
                self._batch = batch
                raise

    def schedule_commit(self) -> None:
        """Commit within the window (for deltas and other write-behind rows)."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.window_s, self._timed_commit)

    def _timed_commit(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.commit())
        task.add_done_callback(_log_failure)

    def close(self) -> None:
        """Write what is staged, close the store on its thread, stop the thread."""
        if self._batch:
            self._pool.submit(self.store.write_batch, self._batch).result()
            self._batch = WriteBatch()
        self._pool.submit(self.store.close).result()
        self._pool.shutdown(wait=True)


def _restage(newer: WriteBatch, older: WriteBatch) -> None:
    older.sessions.update(newer.sessions)
    older.runs.update(newer.runs)
    older.events.extend(newer.events)
    older.messages.extend(newer.messages)
    older.audit.extend(newer.audit)
    older.policies.extend(newer.policies)
    older.gates.update(newer.gates)
    older.tool_runs.extend(newer.tool_runs)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("OpenFoal store commit failed", exc_info=task.exception())
