"""The memory flush: near the context limit, one silent turn that saves what matters."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from openfoal_kernel.agent.context import FLUSH_PROMPT
from openfoal_kernel.protocol.methods import AgentRunParams

from .context import RequestContext
from .launcher import RunLauncher, new_trace_id
from .registry import RunRegistry
from .sessions import SessionService, new_id

log = logging.getLogger(__name__)


class MemoryFlush:
    """Starts one silent memory flush per compaction cycle once a session is idle."""

    def __init__(
        self,
        *,
        sessions: SessionService,
        registry: RunRegistry,
        launcher: RunLauncher,
        threshold: float = 0.75,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.launcher = launcher
        self.threshold = threshold

    async def after_run(self, session_id: str) -> None:
        """Start a flush in the background when the session is near its context limit."""
        session = self.sessions.peek(session_id)
        if (
            session is None
            or session.memoryFlushState != "idle"
            or self.registry.busy(session_id)
            or session.contextUsage < self.threshold
        ):
            return
        self.sessions.update(session_id, memoryFlushState="pending")
        ctx = RequestContext(user=session.owner, trace_id=new_trace_id())
        params = AgentRunParams(
            input=FLUSH_PROMPT, idempotencyKey=new_id("flush"), sessionId=session_id
        )
        task = asyncio.ensure_future(self.launcher.launch(ctx, session_id, params, silent=True))
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("memory flush failed: %s", task.exception())
