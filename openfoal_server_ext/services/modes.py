"""Runtime modes: switch a session between local and cloud, now or at its next turn."""

from __future__ import annotations

from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol import utcnow
from openfoal_kernel.protocol.results import SetModeResult

from ..store import StoreWorker
from .context import RequestContext
from .hub import EventHub
from .registry import RunRegistry
from .sessions import SessionService


class RuntimeModes:
    """``runtime.setMode``: applied at once when idle, queued while a run is going."""

    def __init__(
        self, *, worker: StoreWorker, hub: EventHub, sessions: SessionService, registry: RunRegistry
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.registry = registry

    async def set_mode(self, ctx: RequestContext, session_id: str, mode: str) -> SetModeResult:
        """Switch the session's runtime mode now, or at its next turn when a run is going."""
        session = self.sessions.get_owned(ctx.user, session_id)
        ctx.subscribe(session_id)
        if self.registry.busy(session_id):
            pending = None if mode == session.runtimeMode else mode
            self.sessions.update(session_id, pendingRuntimeMode=pending)
            await self.worker.commit()
            return SetModeResult(
                sessionId=session_id,
                runtimeMode=mode,  # type: ignore[arg-type]
                status="queued-change",
                effectiveOn="next_turn",
            )
        await self.apply(session_id, mode)
        return SetModeResult(
            sessionId=session_id,
            runtimeMode=mode,  # type: ignore[arg-type]
            status="applied",
            effectiveOn="now",
        )

    async def apply_pending(self, session_id: str) -> None:
        """Apply a change queued while the session's run was going."""
        session = self.sessions.peek(session_id)
        if session is not None and session.pendingRuntimeMode is not None:
            await self.apply(session_id, session.pendingRuntimeMode)

    async def apply(self, session_id: str, mode: str) -> None:
        """Set the mode and announce it when it changed."""
        session = self.sessions.peek(session_id)
        if session is None:
            return
        changed = session.runtimeMode != mode
        self.sessions.update(session_id, runtimeMode=mode, pendingRuntimeMode=None)
        if changed:
            await self.hub.publish(
                session_id,
                ev.RUNTIME_MODE_CHANGED,
                {"runtimeMode": mode, "effectiveAt": utcnow().isoformat()},
            )
        else:
            await self.worker.commit()
