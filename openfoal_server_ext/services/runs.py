"""Runs: accept a turn, hand it to the session's agent kernel, ingest what comes back.

One run per session at a time (SESSION_BUSY otherwise). The kernel's events are numbered
and persisted by the hub; its transcript entries are stored for the next turn. A run ends
with exactly one ``agent.completed`` or ``agent.failed``, including when its kernel dies
(RUNTIME_LOST) or the server restarts mid-run (marked interrupted at start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from openfoal_kernel.agent.context import FLUSH_KIND, FLUSH_PROMPT, build_context, estimate_tokens
from openfoal_kernel.protocol import (
    ChatMessage,
    ErrorCode,
    GateItem,
    KernelEvent,
    ModelSettings,
    OpenFoalError,
    Policy,
    RunSpec,
    utcnow,
)
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.methods import AgentRunParams
from openfoal_kernel.redact import redact

from ..kernels.bridge import KernelBridge
from ..kernels.orchestrator import KernelOrchestrator
from ..store import MessageRow, RunRow, StoreWorker, ToolRunRow
from .audit import AuditService
from .context import RequestContext
from .gates import GateService
from .hub import EventHub
from .memory import MemoryService
from .sandboxes import SandboxService
from .sessions import SessionService, new_id
from .telemetry import ACTIVE_RUNS, RUN_SECONDS, RUNS, TOOL_CALLS, TOOL_SECONDS

log = logging.getLogger(__name__)

#: How long ``agent.abort`` waits for the kernel to wind the run down before forcing it.
ABORT_GRACE_S = 0.8
#: How long after the kernel's execute_reply (and after its last iopub message) the run's
#: terminal event may still arrive.
REPLY_GRACE_S = 2.0


@dataclass(kw_only=True)
class ActiveRun:
    """A run in flight."""

    run: RunRow
    bridge: KernelBridge | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    external: bool = False  # a notebook cell, not started through the gateway
    task: str = "turn"  # "turn" or "compact"
    silent: bool = False  # a memory flush: stored, its text never shown
    tool_started: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    wrote_memory: bool = False
    notebook_kernel_id: str | None = None  # python.exec bound to this notebook kernel
    dispatch: asyncio.Task[None] | None = None
    sandboxed: bool = False  # holds the session's sandbox until it ends


def _log_flush_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("memory flush failed: %s", task.exception())


class RunService:
    """Starts, tracks, aborts and ends runs."""

    def __init__(
        self,
        *,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        kernels: KernelOrchestrator,
        model_settings: Callable[[str | None], ModelSettings],
        policy: Callable[[str], Policy],
        workspace: str,
        default_owner: str,
        memory: MemoryService,
        gates: GateService,
        audit: AuditService,
        sandboxes: SandboxService,
        context_window: int = 128_000,
        flush_threshold: float = 0.75,
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.kernels = kernels
        self.model_settings = model_settings
        self.policy = policy
        self.workspace = workspace
        self.default_owner = default_owner
        self.memory = memory
        self.context_window = context_window
        self.flush_threshold = flush_threshold
        self.gates = gates
        gates.runs = self
        self.audit = audit
        self.sandboxes = sandboxes
        self.by_session: dict[str, ActiveRun] = {}
        self.by_id: dict[str, ActiveRun] = {}
        self._transcripts: dict[str, list[ChatMessage]] = {}

    def busy(self, session_id: str) -> bool:
        """True while the session has a run in flight."""
        return session_id in self.by_session

    # -- start-up -------------------------------------------------------------------------

    async def recover(self) -> int:
        """Mark runs left unfinished by a crash as interrupted; free their sessions."""
        runs = await self.worker.call(self.worker.store.unfinished_runs)
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
            if session.status != "idle" and session.id not in self.by_session:
                self.sessions.update(session.id, status="idle")
        await self.worker.commit()
        return len(runs)

    # -- transcript -----------------------------------------------------------------------

    async def transcript(self, session_id: str) -> list[ChatMessage]:
        """The session's transcript (cached after the first read)."""
        cached = self._transcripts.get(session_id)
        if cached is None:
            await self.worker.commit()
            rows = await self.worker.call(self.worker.store.get_messages, session_id)
            cached = self._transcripts.setdefault(session_id, [r.message for r in rows])
        return cached

    async def _append_message(self, session_id: str, run_id: str | None, msg: ChatMessage) -> None:
        transcript = await self.transcript(session_id)
        row = MessageRow(
            session_id=session_id, idx=len(transcript), message=msg, at=utcnow(), run_id=run_id
        )
        transcript.append(msg)
        self.worker.stage_message(row)
        self.worker.schedule_commit()

    # -- agent.run ------------------------------------------------------------------------

    async def start_run(self, ctx: RequestContext, p: AgentRunParams) -> dict[str, Any]:
        """Accept a turn and hand it to the kernel; return the ``accepted`` payload."""
        text = p.input.strip()
        if text == "/new":
            session = await self.sessions.create(ctx.user, runtime_mode=p.runtimeMode or "local")
            ctx.subscribe(session.id)
            return await self._instant(ctx, session.id, p.input, "Started a new session.")
        session, _ = await self.sessions.resolve(ctx.user, p.sessionId, p.sessionKey)
        ctx.subscribe(session.id)
        if session.id in self.by_session:
            raise OpenFoalError(
                ErrorCode.SESSION_BUSY,
                "this session already has a run in progress; wait or abort it",
            )
        if text == "/reset":
            await self._append_message(
                session.id, None, ChatMessage(role="system", kind="reset", content="context reset")
            )
            self._transcripts[session.id] = []
            return await self._instant(
                ctx, session.id, p.input, "Context cleared; the transcript is kept for audit."
            )
        if text == "/compact":
            return await self._launch(ctx, session.id, p, task="compact")
        return await self._launch(ctx, session.id, p)

    async def _instant(
        self, ctx: RequestContext, session_id: str, text: str, summary: str
    ) -> dict[str, Any]:
        """A command answered by the gateway itself: accepted + completed, no kernel."""
        run = self._new_run(ctx, session_id, text, model=None)
        self.worker.stage_run(run)
        self.hub.publish(
            session_id,
            ev.AGENT_ACCEPTED,
            {"runtimeMode": self.sessions.get_owned(ctx.user, session_id).runtimeMode, "model": ""},
            run_id=run.id,
            trace_id=run.trace_id,
        )
        run.status, run.ended_at = "completed", utcnow()
        self.worker.stage_run(run)
        await self.hub.publish(
            session_id,
            ev.AGENT_COMPLETED,
            {
                "status": "completed",
                "usage": {"inputTokens": 0, "outputTokens": 0},
                "summary": summary,
            },
            run_id=run.id,
            trace_id=run.trace_id,
        )
        return {"runId": run.id, "sessionId": session_id, "status": "accepted"}

    async def _memory_prompt(self, session_key: str) -> str:
        """The memory part of the prompt; a memory file that cannot be read leaves it out."""
        try:
            return await self.memory.prompt_for(session_key)
        except Exception:
            log.exception("OpenFoal: cannot read the memory files for the prompt")
            return ""

    def _new_run(
        self, ctx: RequestContext, session_id: str, text: str, model: str | None
    ) -> RunRow:
        session = self.sessions.get_owned(ctx.user, session_id)
        return RunRow(
            id=new_id("run"),
            new=True,
            session_id=session_id,
            owner=ctx.user,
            trace_id=ctx.trace_id,
            status="accepted",
            created_at=utcnow(),
            input=text,
            model=model,
            runtime_mode=session.runtimeMode,
            policy_version=self.policy(session_id).version,
        )

    async def _launch(
        self,
        ctx: RequestContext,
        session_id: str,
        p: AgentRunParams,
        *,
        task: Literal["turn", "compact"] = "turn",
        silent: bool = False,
    ) -> dict[str, Any]:
        settings = self.model_settings(p.model_id())
        session = self.sessions.get_owned(ctx.user, session_id)
        changes: dict[str, Any] = {"status": "running"}
        if p.runtimeMode and p.runtimeMode != session.runtimeMode:
            changes["runtimeMode"] = p.runtimeMode
        if task == "turn" and not silent:
            if not session.title:
                changes["title"] = _title(p.input)
            changes["preview"] = _title(p.input, 120)
        run = self._new_run(ctx, session_id, p.input, settings.model)
        active = ActiveRun(
            run=run, notebook_kernel_id=_notebook_kernel_id(p), task=task, silent=silent
        )
        if active.notebook_kernel_id and active.notebook_kernel_id not in self.kernels.mkm:
            raise OpenFoalError(
                ErrorCode.NOT_FOUND,
                f"notebookKernelId {active.notebook_kernel_id!r} is not a running kernel",
            )
        self.by_session[session_id] = active
        self.by_id[run.id] = active
        ACTIVE_RUNS.set(len(self.by_id))
        try:
            self.worker.stage_run(run)
            prior = list(await self.transcript(session_id))
            if task == "turn":
                user = ChatMessage(
                    role="user", content=p.input, kind=FLUSH_KIND if silent else None
                )
                await self._append_message(session_id, run.id, user)
            session = self.sessions.update(session_id, **changes)
            accepted = self.hub.publish(
                session_id,
                ev.AGENT_ACCEPTED,
                {"runtimeMode": session.runtimeMode, "model": settings.model or ""},
                run_id=run.id,
                trace_id=run.trace_id,
            )
            # read while agent.accepted is being committed (it is on the first token's path)
            memory = await self._memory_prompt(session.sessionKey) if task == "turn" else ""
            spec = RunSpec(
                runId=run.id,
                sessionId=session_id,
                traceId=run.trace_id,
                runtimeMode=session.runtimeMode,
                policy=self.policy(session_id),
                model=settings,
                transcript=prior,
                workspace=self.workspace,
                memory=memory,
                task=task,
            )
            self.audit.record(
                actor=ctx.user,
                owner=ctx.user,
                action="run.start",
                resource=f"run:{run.id}",
                trace_id=run.trace_id,
                session_id=session_id,
                run_id=run.id,
                detail={
                    "input": p.input,
                    "task": task,
                    "model": settings.model,
                    "policyVersion": run.policy_version,
                },
            )
            active.dispatch = asyncio.create_task(self._dispatch(active, spec, p.input))
            await accepted
        except BaseException:
            self.by_session.pop(session_id, None)
            self.by_id.pop(run.id, None)
            raise
        return {"runId": run.id, "sessionId": session_id, "status": "accepted"}

    async def continue_after_gate(
        self, ctx: RequestContext, gate: GateItem, outcome: str
    ) -> dict[str, Any]:
        """Continue a run whose kernel was lost while its gate waited: a new run resumes the
        stored transcript, running the decided call first (and only once)."""
        session = self.sessions.peek(gate.sessionId)
        if session is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no session {gate.sessionId!r}")
        if session.id in self.by_session:
            raise OpenFoalError(ErrorCode.SESSION_BUSY, "the session is running another turn")
        settings = self.model_settings(None)
        policy = self.policy(session.id)
        run = RunRow(
            id=new_id("run"),
            new=True,
            session_id=session.id,
            owner=session.owner,
            trace_id=ctx.trace_id,
            status="accepted",
            created_at=utcnow(),
            input="",
            model=settings.model,
            runtime_mode=session.runtimeMode,
            policy_version=policy.version,
        )
        active = ActiveRun(run=run)
        self.by_session[session.id] = active
        self.by_id[run.id] = active
        self.worker.stage_run(run)
        prior = list(await self.transcript(session.id))
        session = self.sessions.update(session.id, status="running")
        accepted = self.hub.publish(
            session.id,
            ev.AGENT_ACCEPTED,
            {
                "runtimeMode": session.runtimeMode,
                "model": settings.model or "",
                "continues": gate.runId,
                "gateId": gate.gateId,
            },
            run_id=run.id,
            trace_id=run.trace_id,
        )
        spec = RunSpec(
            runId=run.id,
            sessionId=session.id,
            traceId=run.trace_id,
            runtimeMode=session.runtimeMode,
            policy=policy,
            model=settings,
            transcript=prior,
            workspace=self.workspace,
            resume=True,
            gateDecision={"toolCallId": gate.toolCallId, "outcome": outcome},
        )
        active.dispatch = asyncio.create_task(self._dispatch(active, spec, ""))
        await accepted
        return {"runId": run.id, "sessionId": session.id, "status": "accepted"}

    def _tool_call(self, active: ActiveRun, payload: dict[str, Any]) -> None:
        active.tool_started[str(payload.get("toolCallId"))] = (utcnow(), payload)
        run = active.run
        self.audit.record(
            actor=run.owner,
            owner=run.owner,
            action="tool.call",
            resource=f"tool:{payload.get('toolName')}",
            trace_id=run.trace_id,
            session_id=run.session_id,
            run_id=run.id,
            detail={
                "toolCallId": payload.get("toolCallId"),
                "args": payload.get("args"),
                "runtimeMode": payload.get("runtimeMode"),
            },
        )

    def _tool_result(self, active: ActiveRun, payload: dict[str, Any]) -> None:
        run = active.run
        call_id = str(payload.get("toolCallId"))
        started, call = active.tool_started.pop(call_id, (utcnow(), {}))
        tool = str(payload.get("toolName"))
        TOOL_CALLS.labels(tool, str(payload.get("status"))).inc()
        TOOL_SECONDS.labels(tool).observe(float(payload.get("durationMs") or 0) / 1000)
        self.worker.stage_tool_run(
            ToolRunRow(
                id=call_id,
                session_id=run.session_id,
                run_id=run.id,
                trace_id=run.trace_id,
                tool_name=str(payload.get("toolName")),
                args=redact(call.get("args") or {}),
                status=str(payload.get("status")),
                duration_ms=float(payload.get("durationMs") or 0),
                runtime_mode=str(call.get("runtimeMode") or run.runtime_mode),
                started_at=started,
                ended_at=utcnow(),
                output=redact(str(payload.get("output", "")))[:16384],
                error=payload.get("error"),
            )
        )
        self.audit.record(
            actor=run.owner,
            owner=run.owner,
            action="tool.result",
            resource=f"tool:{payload.get('toolName')}",
            trace_id=run.trace_id,
            session_id=run.session_id,
            run_id=run.id,
            detail={
                "toolCallId": call_id,
                "status": payload.get("status"),
                "durationMs": payload.get("durationMs"),
                "error": payload.get("error"),
                "output": payload.get("output"),
            },
        )

    async def _dispatch(self, active: ActiveRun, spec: RunSpec, text: str) -> None:
        try:
            if spec.runtimeMode == "cloud":
                await self._place(active, spec)
        except OpenFoalError as exc:
            await self._fail(active, exc.code, exc.message)
            return
        except Exception as exc:  # never a hang: any failure to place the turn ends it
            log.exception("could not prepare the sandbox of run %s", spec.runId)
            await self._fail(
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
                spec.codeKernel = await self._code_kernel(spec.sessionId, active.notebook_kernel_id)
            bridge = await self.kernels.acquire(spec.sessionId)
            active.bridge = bridge
            active.run.status = "running"
            self.worker.stage_run(active.run)
            reply = await bridge.execute(spec, text)
        except Exception as exc:
            log.exception("could not start run %s", spec.runId)
            await self._fail(
                active, ErrorCode.RUNTIME_LOST, f"could not start the agent kernel: {exc}"
            )
            return
        await reply
        if active.ended.is_set():
            return
        # iopub and shell are separate sockets: the terminal event may still be on its way,
        # behind a backlog of events (a long burst) still being read; wait while they come
        while True:
            try:
                await asyncio.wait_for(active.ended.wait(), REPLY_GRACE_S)
                return
            except asyncio.TimeoutError:
                if time.monotonic() - bridge.last_iopub >= REPLY_GRACE_S:
                    break
        await self._fail(
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
        if placement.fallback_reason is not None:
            run.runtime_mode = placement.runtime_mode
            self.worker.stage_run(run)

    async def _code_kernel(self, session_id: str, notebook_kernel_id: str | None) -> dict[str, Any]:
        if notebook_kernel_id:
            return self.kernels.connection_info(notebook_kernel_id, "notebook")
        return await self.kernels.code_kernel(session_id)

    # -- events from kernels --------------------------------------------------------------

    async def on_kernel_event(self, bridge: KernelBridge, ke: KernelEvent) -> None:
        """Ingest one kernel event: store transcript entries, publish protocol events."""
        active = self.by_id.get(ke.runId)
        if active is None:
            if bridge.owned:
                return  # a late event of a run already ended (e.g. forced abort)
            active = await self._external_run(bridge, ke)
            if active is None:
                return
        run = active.run
        if ke.kind == "message" and ke.message is not None:
            msg = (
                ke.message.model_copy(update={"kind": FLUSH_KIND}) if active.silent else ke.message
            )
            await self._append_message(run.session_id, run.id, msg)
            return
        if active.silent and ke.event == ev.AGENT_DELTA:
            return  # a memory flush's text is never shown
        if ke.deltas is not None:  # a burst the kernel coalesced: one agent.delta per delta
            for text in ke.deltas:
                self.hub.publish(
                    run.session_id,
                    ev.AGENT_DELTA,
                    {"delta": text},
                    run_id=run.id,
                    trace_id=run.trace_id,
                )
            return
        if (
            ke.event == ev.AGENT_TOOL_RESULT
            and ke.payload.get("toolName") == "memory.append"
            and ke.payload.get("status") == "success"
        ):
            active.wrote_memory = True
        if ke.event is None:
            return
        if ke.event in ev.TERMINAL_EVENTS:
            await self._end(active, ke.event, ke.payload)
            return
        if ke.event == ev.GATE_REQUESTED:
            await self.gates.on_requested(run, ke.payload)
            return
        if ke.event == ev.GATE_RESOLVED:
            await self.gates.on_resolved(run, ke.payload)
            return
        if ke.event == ev.AGENT_TOOL_CALL:
            self._tool_call(active, ke.payload)
        elif ke.event == ev.AGENT_TOOL_RESULT:
            self._tool_result(active, ke.payload)
        self.hub.publish(run.session_id, ke.event, ke.payload, run_id=run.id, trace_id=run.trace_id)

    async def _external_run(self, bridge: KernelBridge, ke: KernelEvent) -> ActiveRun | None:
        """A notebook cell turned into a run of the notebook's session."""
        if ke.event != ev.AGENT_ACCEPTED:
            return None
        session = self.sessions.peek(ke.sessionId)
        path = ke.payload.get("notebookPath") or ""
        if session is None:
            from openfoal_kernel.protocol.session_keys import build_session_key

            key = build_session_key(
                self.sessions.workspace_id, "main", "dm", "notebook", ke.sessionId
            )
            await self.sessions.create(
                self.default_owner,
                session_key=key,
                session_id=ke.sessionId,
                title=path or "Notebook conversation",
            )
        run = RunRow(
            id=ke.runId,
            session_id=ke.sessionId,
            owner=self.default_owner,
            trace_id=ke.traceId,
            status="running",
            created_at=utcnow(),
            model=ke.payload.get("model"),
        )
        active = ActiveRun(run=run, bridge=bridge, external=True)
        self.by_id[run.id] = active
        self.by_session[run.session_id] = active
        self.worker.stage_run(run)
        self.sessions.update(run.session_id, status="running")
        return active

    async def _end(self, active: ActiveRun, event: str, payload: dict[str, Any]) -> None:
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
        self.worker.stage_run(run)
        self.by_session.pop(run.session_id, None)
        self.by_id.pop(run.id, None)
        if active.sandboxed:
            await self.sandboxes.release(run.session_id)
        RUNS.labels(run.status).inc()
        RUN_SECONDS.observe((run.ended_at - run.created_at).total_seconds())
        ACTIVE_RUNS.set(len(self.by_id))
        if run.status == "aborted":
            await self.gates.expire_for_run(run)
        if active.bridge is not None:
            active.bridge.last_used = time.monotonic()
        if active.silent:
            payload = {**payload, "silent": True}
        done = self.hub.publish(
            run.session_id, event, payload, run_id=run.id, trace_id=run.trace_id
        )
        self.sessions.update(
            run.session_id, status="idle", **await self._context_changes(active, event)
        )
        pending = self.sessions.peek(run.session_id)
        if pending is not None and pending.pendingRuntimeMode is not None:
            await self._apply_mode(run.session_id, pending.pendingRuntimeMode)
        await done
        self._maybe_flush(run.session_id)

    async def _context_changes(self, active: ActiveRun, event: str) -> dict[str, Any]:
        """Session bookkeeping after a run: context usage, compactions, the flush cycle."""
        transcript = await self.transcript(active.run.session_id)
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

    def _maybe_flush(self, session_id: str) -> None:
        """Near the context limit, run one silent memory flush per compaction cycle."""
        session = self.sessions.peek(session_id)
        if (
            session is None
            or session.memoryFlushState != "idle"
            or session_id in self.by_session
            or session.contextUsage < self.flush_threshold
        ):
            return
        self.sessions.update(session_id, memoryFlushState="pending")
        ctx = RequestContext(user=session.owner, trace_id=new_trace_id())
        params = AgentRunParams(
            input=FLUSH_PROMPT, idempotencyKey=new_id("flush"), sessionId=session_id
        )
        task = asyncio.ensure_future(self._launch(ctx, session_id, params, silent=True))
        task.add_done_callback(_log_flush_failure)

    async def _fail(self, active: ActiveRun, code: ErrorCode, message: str, **extra: Any) -> None:
        error = {
            "code": code.value,
            "message": message,
            "retryable": OpenFoalError(code, message).retryable,
            "traceId": active.run.trace_id,
        }
        await self._end(active, ev.AGENT_FAILED, {"error": error, **extra})

    async def on_kernel_lost(self, bridge: KernelBridge, reason: str) -> None:
        """Fail every run that was executing in a kernel that died."""
        for active in [a for a in self.by_id.values() if a.bridge is bridge]:
            await self._fail(active, ErrorCode.RUNTIME_LOST, reason)

    # -- sessions.delete ------------------------------------------------------------------

    async def delete_session(self, ctx: RequestContext, session_id: str) -> dict[str, Any]:
        """Delete an idle session: its sandbox and kernels go, its audit trail stays."""
        self.sessions.get_owned(ctx.user, session_id)
        if session_id in self.by_session:
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
        self._transcripts.pop(session_id, None)
        await self.sessions.delete(session_id)
        return {"sessionId": session_id, "deleted": True}

    # -- runtime.setMode ------------------------------------------------------------------

    async def set_mode(self, ctx: RequestContext, session_id: str, mode: str) -> dict[str, Any]:
        """Switch the session's runtime mode now, or at its next turn when a run is going."""
        session = self.sessions.get_owned(ctx.user, session_id)
        ctx.subscribe(session_id)
        if session_id in self.by_session:
            if mode == session.runtimeMode:
                self.sessions.update(session_id, pendingRuntimeMode=None)
            else:
                self.sessions.update(session_id, pendingRuntimeMode=mode)
            await self.worker.commit()
            return {
                "sessionId": session_id,
                "runtimeMode": mode,
                "status": "queued-change",
                "effectiveOn": "next_turn",
            }
        await self._apply_mode(session_id, mode)
        return {
            "sessionId": session_id,
            "runtimeMode": mode,
            "status": "applied",
            "effectiveOn": "now",
        }

    async def _apply_mode(self, session_id: str, mode: str) -> None:
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

    # -- agent.abort ----------------------------------------------------------------------

    async def abort(self, ctx: RequestContext, run_id: str) -> dict[str, Any]:
        """Interrupt a run; answer once it has ended (forced after a short grace)."""
        active = self.by_id.get(run_id)
        if active is None:
            stored = await self._stored_run(run_id)
            if stored.owner != ctx.user:
                raise OpenFoalError(ErrorCode.FORBIDDEN, "this run belongs to another user")
            return {"runId": run_id, "status": stored.status}
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
            await self._fail(
                active, ErrorCode.RUNTIME_LOST, f"the run was aborted by {ctx.user}", aborted=True
            )
        return {
            "runId": run_id,
            "status": "aborted" if active.run.status == "aborted" else active.run.status,
        }

    async def _stored_run(self, run_id: str) -> RunRow:
        await self.worker.commit()
        stored = await self.worker.call(self.worker.store.get_run, run_id)
        if stored is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no run {run_id!r}")
        return stored


def _notebook_kernel_id(p: AgentRunParams) -> str | None:
    """The extension param ``notebookKernelId``: bind python.exec to that notebook's kernel."""
    value = (p.model_extra or {}).get("notebookKernelId")
    if value is not None and not isinstance(value, str):
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST, "notebookKernelId must be a kernel id string"
        )
    return value or None


def _title(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def new_trace_id() -> str:
    """A W3C trace id (32 hex digits)."""
    return uuid.uuid4().hex
