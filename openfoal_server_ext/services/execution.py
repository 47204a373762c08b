"""Run execution: place a run, hand it to its agent kernel, and end it exactly once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from openfoal_kernel.agent.context import build_context, estimate_tokens
from openfoal_kernel.protocol import ErrorCode, OpenFoalError, RunSpec, utcnow
from openfoal_kernel.protocol import events as ev

from ..kernels.bridge import KernelBridge
from ..kernels.orchestrator import KernelOrchestrator
from ..store import StoreWorker
from .budgets import TokenBudgets
from .hub import EventHub
from .modes import RuntimeModes
from .registry import ActiveRun, RunRegistry
from .sandboxes import SandboxService
from .sessions import SessionService
from .telemetry import RUN_SECONDS, RUNS
from .transcripts import TranscriptService

log = logging.getLogger(__name__)

#: How long after the kernel's execute_reply (and after its last iopub message) the run's
#: terminal event may still arrive.
REPLY_GRACE_S = 2.0

#: Called with a session id once its run has ended and the session is idle again.
IdleListener = Callable[[str], Awaitable[None]]


class RunExecutor:
    """Dispatches accepted runs to kernels and ends them (completed, failed or aborted)."""

    def __init__(
        self,
        *,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        kernels: KernelOrchestrator,
        sandboxes: SandboxService,
        registry: RunRegistry,
        transcripts: TranscriptService,
        modes: RuntimeModes,
        workspace: str,
        context_window: int = 128_000,
        budgets: TokenBudgets | None = None,
    ) -> None:
        self.worker = worker
        self.budgets = budgets
        self.hub = hub
        self.sessions = sessions
        self.kernels = kernels
        self.sandboxes = sandboxes
        self.registry = registry
        self.transcripts = transcripts
        self.modes = modes
        self.workspace = workspace
        self.context_window = context_window
        self._idle_listeners: list[IdleListener] = []

    def on_idle(self, listener: IdleListener) -> None:
        """Call ``listener`` with the session id after each run's end has been committed."""
        self._idle_listeners.append(listener)

    def start(self, active: ActiveRun, spec: RunSpec, text: str) -> None:
        """Dispatch an accepted run in the background."""
        active.dispatch = asyncio.create_task(self._dispatch(active, spec, text))

    async def _dispatch(self, active: ActiveRun, spec: RunSpec, text: str) -> None:
        try:
            if spec.runtimeMode == "cloud":
                await self._place(active, spec)
        except OpenFoalError as exc:
            await self.fail(active, exc.code, exc.message)
            return
        except Exception as exc:  # never a hang: any failure to place the turn ends it
            log.exception("could not prepare the sandbox of run %s", spec.runId)
            await self.fail(
                active,
                ErrorCode.SANDBOX_UNAVAILABLE,
                f"could not prepare the session's sandbox: {exc}",
            )
            return
        if active.ended.is_set():  # aborted while its sandbox was being prepared
            if active.sandboxed:
                await self.sandboxes.release(active.run.session_id)
            return
        try:
            if spec.runtimeMode == "local":
                spec.codeKernel = self._code_kernel(spec.sessionId, active.notebook_kernel_id)
                # none yet: the kernel asks for one at its first python.exec (a session that
                # never runs Python never starts one)
                spec.codeKernelOnRequest = spec.codeKernel is None
            queued: list[bool] = []

            def waiting() -> None:  # visible: the session is "queued" until a kernel is free
                queued.append(True)
                self.sessions.update(spec.sessionId, status="queued")

            bridge = await self.kernels.acquire(
                spec.sessionId, owner=active.run.owner, on_wait=waiting
            )
            if queued and not active.ended.is_set():
                self.sessions.update(spec.sessionId, status="running")
            await bridge.wait_up()  # a kernel just killed: its restarted process
            if active.ended.is_set():
                return
            active.bridge = bridge
            active.kernel_pid = bridge.pid
            active.run.status = "running"
            self.worker.stage_run(active.run)
            reply = await bridge.execute(spec, text)
        except Exception as exc:
            log.exception("could not start run %s", spec.runId)
            await self.fail(
                active, ErrorCode.RUNTIME_LOST, f"could not start the agent kernel: {exc}"
            )
            return
        await reply
        if active.ended.is_set():
            return
        await self._await_end(active, bridge)

    async def _await_end(self, active: ActiveRun, bridge: KernelBridge) -> None:
        """Wait for a terminal event still on its way behind the kernel's iopub backlog."""
        while True:
            try:
                await asyncio.wait_for(active.ended.wait(), REPLY_GRACE_S)
                return
            except asyncio.TimeoutError:
                if time.monotonic() - bridge.last_iopub >= REPLY_GRACE_S:
                    break
        await self.fail(
            active,
            ErrorCode.INTERNAL_ERROR,
            "the agent kernel finished the turn without reporting its end",
        )

    async def _place(self, active: ActiveRun, spec: RunSpec) -> None:
        """Give a cloud turn its sandbox, or run it locally when the policy allows a fallback."""
        run = active.run
        placement = await self.sandboxes.place(
            session_id=run.session_id,
            owner=run.owner,
            workspace=self.workspace,
            policy=spec.policy,
            trace_id=run.trace_id,
            run_id=run.id,
        )
        active.sandboxed = placement.sandbox is not None
        spec.runtimeMode = placement.runtime_mode  # type: ignore[assignment]
        spec.sandbox = placement.sandbox
        if placement.policy is not None:
            spec.policy = placement.policy
        if placement.fallback_reason is not None:
            run.runtime_mode = placement.runtime_mode
            self.worker.stage_run(run)

    def _code_kernel(
        self, session_id: str, notebook_kernel_id: str | None
    ) -> dict[str, Any] | None:
        if notebook_kernel_id:
            return self.kernels.connection_info(notebook_kernel_id, "notebook")
        return self.kernels.running_code_kernel(session_id)

    async def end(self, active: ActiveRun, event: str, payload: dict[str, Any]) -> None:
        """End a run once: store its outcome, free its session, publish the terminal event."""
        run = active.run
        if active.ended.is_set():
            return
        active.ended.set()
        run.ended_at = utcnow()
        if event == ev.AGENT_COMPLETED:
            run.status = "completed"
            run.usage = payload.get("usage") or {}
        else:
            run.status = "aborted" if payload.get("aborted") else "failed"
            run.error = payload.get("error")
            run.usage = payload.get("usage") or {}
        if self.budgets is not None:
            self.budgets.charge(run.session_id, run.usage)
        self.worker.stage_run(run)
        self.registry.discard(active)
        if active.sandboxed:
            await self.sandboxes.release(run.session_id)
        RUNS.labels(run.status).inc()
        RUN_SECONDS.observe((run.ended_at - run.created_at).total_seconds())
        await self.registry.finish(active)
        if active.bridge is not None:
            active.bridge.last_used = time.monotonic()
        if active.silent:
            payload = {**payload, "silent": True}
        if active.auto:
            payload = {**payload, "auto": True}
        done = self.hub.publish(
            run.session_id, event, payload, run_id=run.id, trace_id=run.trace_id
        )
        self.sessions.update(
            run.session_id, status="idle", **await self._context_changes(active, event)
        )
        await self.modes.apply_pending(run.session_id)
        await done
        for listener in self._idle_listeners:
            await listener(run.session_id)

    async def _context_changes(self, active: ActiveRun, event: str) -> dict[str, Any]:
        """Session bookkeeping after a run: context usage, compactions, the flush cycle."""
        transcript = await self.transcripts.get(active.run.session_id)
        usage = min(1.0, estimate_tokens(build_context(transcript)) / max(1, self.context_window))
        changes: dict[str, Any] = {"contextUsage": round(usage, 4)}
        session = self.sessions.peek(active.run.session_id)
        if active.task == "compact" and event == ev.AGENT_COMPLETED and session is not None:
            changes["compactionCount"] = session.compactionCount + 1
            changes["memoryFlushState"] = "idle"  # a new compaction cycle
        if active.silent:
            flushed = active.wrote_memory and event == ev.AGENT_COMPLETED
            changes["memoryFlushState"] = "flushed" if flushed else "skipped"
            changes["memoryFlushAt"] = utcnow()
        return changes

    async def fail(self, active: ActiveRun, code: ErrorCode, message: str, **extra: Any) -> None:
        """End a run with ``agent.failed`` carrying a structured error."""
        error = {
            "code": code.value,
            "message": message,
            "retryable": OpenFoalError(code, message).retryable,
            "traceId": active.run.trace_id,
        }
        await self.end(active, ev.AGENT_FAILED, {"error": error, **extra})
