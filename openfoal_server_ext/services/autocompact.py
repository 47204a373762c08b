"""Automatic compaction: when a session's context fills, compact it as ``/compact`` would."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from openfoal_kernel.protocol.methods import AgentRunParams

from .context import RequestContext
from .launcher import RunLauncher, new_trace_id
from .registry import RunRegistry
from .sessions import SessionService, new_id

log = logging.getLogger(__name__)


class AutoCompaction:
    """Starts a compaction run once a session is idle with ``contextUsage >= threshold``.

    It waits for a pending memory flush (which saves durable facts before older context is
    summarised away), and compacts at most once per run of the session: the end of its own
    compaction never starts another, so a compaction that fails, or leaves the context still
    above the threshold, cannot start a loop of runs; the next turn's end tries again.
    """

    def __init__(
        self,
        *,
        sessions: SessionService,
        registry: RunRegistry,
        launcher: RunLauncher,
        threshold: float = 0.9,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.launcher = launcher
        self.threshold = threshold
        self._compacting: set[str] = set()  # sessions whose automatic compaction is going

    async def after_run(self, session_id: str) -> None:
        """Start a compaction in the background when the session's context is full enough."""
        if session_id in self._compacting:  # the end of our own compaction
            self._compacting.discard(session_id)
            return
        session = self.sessions.peek(session_id)
        if (
            self.threshold <= 0
            or session is None
            or session.contextUsage < self.threshold
            or session.memoryFlushState == "pending"
            or self.registry.busy(session_id)
        ):
            return
        self._compacting.add(session_id)
        ctx = RequestContext(user=session.owner, trace_id=new_trace_id())
        params = AgentRunParams(
            input="/compact", idempotencyKey=new_id("compact"), sessionId=session_id
        )
        task = asyncio.ensure_future(
            self.launcher.launch(ctx, session_id, params, task="compact", auto=True)
        )
        task.add_done_callback(lambda t: self._launched(session_id, t))

    def _launched(self, session_id: str, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._compacting.discard(session_id)  # no run started, so no end will come
            log.error("automatic compaction failed to start: %s", task.exception())
