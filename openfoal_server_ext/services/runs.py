"""Runs: accept a turn, hand it to the session's agent kernel, abort it, recover after a crash.

One run per session at a time (SESSION_BUSY otherwise). The kernel's events are numbered
and persisted by the hub; its transcript entries are stored for the next turn. A run ends
with exactly one ``agent.completed`` or ``agent.failed``, including when its kernel dies
(RUNTIME_LOST) or the server restarts mid-run (marked interrupted at start-up). The parts
live beside this module: the registry, launcher, executor, kernel event ingest, modes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from openfoal_kernel.protocol import ChatMessage, ErrorCode, OpenFoalError, utcnow
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.methods import AgentRunParams
from openfoal_kernel.protocol.results import (
    AgentAbortResult,
    AgentRunResult,
    SessionsDeleteResult,
    SetModeResult,
)

from ..kernels.orchestrator import KernelOrchestrator
from ..store import RunRow, StoreWorker
from .audit import AuditService
from .context import RequestContext
from .execution import RunExecutor
from .forced_mode import ForcedLocal
from .hub import EventHub
from .launcher import RunLauncher
from .modes import RuntimeModes
from .registry import RunRegistry
from .sandboxes import SandboxService
from .sessions import SessionService
from .transcripts import TranscriptService

#: How long ``agent.abort`` waits for the kernel to wind the run down before forcing it.
ABORT_GRACE_S = 0.8


class RunService:
    """The gateway's entry to runs: ``agent.run``, ``agent.abort``, deletes and mode changes."""

    def __init__(
        self,
        *,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        kernels: KernelOrchestrator,
        audit: AuditService,
        sandboxes: SandboxService,
        registry: RunRegistry,
        transcripts: TranscriptService,
        launcher: RunLauncher,
        executor: RunExecutor,
        modes: RuntimeModes,
        forced: ForcedLocal,
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.kernels = kernels
        self.audit = audit
        self.sandboxes = sandboxes
        self.registry = registry
        self.transcripts = transcripts
        self.launcher = launcher
        self.executor = executor
        self.modes = modes
        self.forced = forced
        #: On a cloud instance: whether a session's runs live on its owner's server (a pushed
        #: session); a restart here leaves them as they are.
        self.runs_elsewhere: Callable[[str], bool] = lambda session_id: False

    def busy(self, session_id: str) -> bool:
        """True while the session has a run in flight."""
        return self.registry.busy(session_id)

    async def recover(self) -> int:
        """Mark runs left unfinished by a crash as interrupted; free their sessions."""
        runs = [
            run
            for run in await self.worker.call(self.worker.store.unfinished_runs)
            if not self.runs_elsewhere(run.session_id)
        ]
        for run in runs:
            run.status = "interrupted"
            run.ended_at = utcnow()
            run.error = {
                "code": ErrorCode.RUNTIME_LOST.value,
                "retryable": True,
                "message": "the server stopped while this run was in progress",
            }
            self.worker.stage_run(run)
            self.hub.publish(
                run.session_id,
                ev.AGENT_FAILED,
                {"error": {**run.error, "traceId": run.trace_id}, "interrupted": True},
                run_id=run.id,
                trace_id=run.trace_id,
            )
            if self.sessions.peek(run.session_id) is not None:
                self.sessions.update(run.session_id, status="idle")
        for session in list(self.sessions._cache.values()):
            if self.runs_elsewhere(session.id):
                continue
            if session.status != "idle" and not self.registry.busy(session.id):
                self.sessions.update(session.id, status="idle")
        await self.worker.commit()
        return len(runs)

    async def start_run(self, ctx: RequestContext, p: AgentRunParams) -> AgentRunResult:
        """Accept a turn and hand it to the kernel; return the ``accepted`` payload."""
        text = p.input.strip()
        if text == "/new":
            session = await self.sessions.create(ctx.user, runtime_mode=p.runtimeMode or "local")
            ctx.subscribe(session.id)
            return await self.launcher.instant(ctx, session.id, p.input, "Started a new session.")
        session, _ = await self.sessions.resolve(ctx.user, p.sessionId, p.sessionKey)
        ctx.subscribe(session.id)
        if self.registry.busy(session.id) and not await self._kernel_lost(session.id):
            raise OpenFoalError(
                ErrorCode.SESSION_BUSY,
                "this session already has a run in progress; wait or abort it",
            )
        if text == "/reset":
            await self.transcripts.append(
                session.id, None, ChatMessage(role="system", kind="reset", content="context reset")
            )
            self.transcripts.clear(session.id)
            return await self.launcher.instant(
                ctx, session.id, p.input, "Context cleared; the transcript is kept for audit."
            )
        if text == "/compact":
            return await self.launcher.launch(ctx, session.id, p, task="compact")
        return await self.launcher.launch(ctx, session.id, p)

    async def _kernel_lost(self, session_id: str) -> bool:
        """True when the session's run was on a kernel that died (that run ends now)."""
        active = self.registry.in_session(session_id)
        if active is None or active.bridge is None or active.kernel_pid is None:
            return False
        if await self.kernels.check_alive(active.bridge):
            return False
        return not self.registry.busy(session_id)

    async def set_mode(
        self, ctx: RequestContext, session_id: str, mode: str, *, force: bool = False
    ) -> SetModeResult:
        """Switch the session's runtime mode now, or at its next turn when a run is going.

        ``force`` with ``local`` during a cloud run stops that run's sandbox work and
        switches now (:mod:`.forced_mode`); otherwise ``force`` changes nothing.
        """
        session = self.sessions.get_owned(ctx.user, session_id)
        active = self.registry.in_session(session_id)
        if (
            force
            and mode == "local"
            and active is not None
            and session.runtimeMode == "cloud"
            and active.forced_by is None
            and not active.ended.is_set()
        ):
            ctx.subscribe(session_id)
            return await self.forced.force(ctx, active)
        return await self.modes.set_mode(ctx, session_id, mode)

    async def delete_session(self, ctx: RequestContext, session_id: str) -> SessionsDeleteResult:
        """Delete an idle session: its sandbox and kernels go, its audit trail stays."""
        self.sessions.get_owned(ctx.user, session_id)
        if self.registry.busy(session_id):
            raise OpenFoalError(
                ErrorCode.SESSION_BUSY, "the session is running a turn: abort it before deleting"
            )
        self.sessions.forget(session_id)  # no new turn can start from here on
        await self.audit.record_now(
            actor=ctx.user,
            owner=ctx.user,
            action="session.delete",
            resource=f"session:{session_id}",
            trace_id=ctx.trace_id,
            session_id=session_id,
        )
        await self.sandboxes.remove(session_id)
        await self.kernels.release_session(session_id)
        self.transcripts.forget(session_id)
        await self.sessions.delete(session_id)
        return SessionsDeleteResult(sessionId=session_id)

    async def abort(self, ctx: RequestContext, run_id: str) -> AgentAbortResult:
        """Interrupt a run; answer once it has ended (forced after a short grace)."""
        active = self.registry.get(run_id)
        if active is None:
            stored = await self._stored_run(run_id)
            if stored.owner != ctx.user:
                raise OpenFoalError(ErrorCode.FORBIDDEN, "this run belongs to another user")
            return AgentAbortResult(runId=run_id, status=stored.status)
        if active.run.owner != ctx.user:
            raise OpenFoalError(ErrorCode.FORBIDDEN, "this run belongs to another user")
        ctx.subscribe(active.run.session_id)
        if active.bridge is not None:
            with contextlib.suppress(Exception):
                await self.kernels.interrupt(active.bridge)
        try:
            await asyncio.wait_for(active.ended.wait(), ABORT_GRACE_S)
        except asyncio.TimeoutError:
            if active.dispatch is not None:
                active.dispatch.cancel()
            await self.executor.fail(
                active, ErrorCode.RUNTIME_LOST, f"the run was aborted by {ctx.user}", aborted=True
            )
        return AgentAbortResult(runId=run_id, status=active.run.status)

    async def _stored_run(self, run_id: str) -> RunRow:
        await self.worker.commit()
        stored = await self.worker.call(self.worker.store.get_run, run_id)
        if stored is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no run {run_id!r}")
        return stored
