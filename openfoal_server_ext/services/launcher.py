"""Run launching: turn an accepted request into a registered run and its kernel spec."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal

from openfoal_kernel.agent.context import FLUSH_KIND
from openfoal_kernel.protocol import (
    ChatMessage,
    ErrorCode,
    GateItem,
    ModelSettings,
    OpenFoalError,
    Policy,
    RunSpec,
    utcnow,
)
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.methods import AgentRunParams
from openfoal_kernel.protocol.results import AgentRunResult

from ..kernels.orchestrator import KernelOrchestrator
from ..store import RunRow, StoreWorker
from .audit import AuditService
from .budgets import TokenBudgets
from .context import RequestContext
from .execution import RunExecutor
from .hub import EventHub
from .memory import MemoryService
from .registry import ActiveRun, RunRegistry
from .sessions import SessionService, new_id
from .transcripts import TranscriptService

log = logging.getLogger(__name__)


class RunLauncher:
    """Starts runs: new turns, compactions, memory flushes, and runs continued after a gate."""

    def __init__(
        self,
        *,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        kernels: KernelOrchestrator,
        registry: RunRegistry,
        transcripts: TranscriptService,
        executor: RunExecutor,
        memory: MemoryService,
        audit: AuditService,
        model_settings: Callable[[str | None], ModelSettings],
        policy: Callable[[str], Policy],
        workspace: str,
        budgets: TokenBudgets,
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.kernels = kernels
        self.registry = registry
        self.transcripts = transcripts
        self.executor = executor
        self.memory = memory
        self.audit = audit
        self.model_settings = model_settings
        self.policy = policy
        self.workspace = workspace
        self.budgets = budgets

    def new_run(self, ctx: RequestContext, session_id: str, text: str, model: str | None) -> RunRow:
        """A fresh run row of the caller's session, accepted under the policy in force."""
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

    async def instant(
        self, ctx: RequestContext, session_id: str, text: str, summary: str
    ) -> AgentRunResult:
        """A command answered by the gateway itself: accepted + completed, no kernel."""
        run = self.new_run(ctx, session_id, text, model=None)
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
        return AgentRunResult(runId=run.id, sessionId=session_id)

    async def _memory_prompt(self, session_key: str, owner: str) -> str:
        """The memory part of the prompt; a memory file that cannot be read leaves it out."""
        try:
            return await self.memory.prompt_for(session_key, owner)
        except Exception:
            log.exception("OpenFoal: cannot read the memory files for the prompt")
            return ""

    async def launch(
        self,
        ctx: RequestContext,
        session_id: str,
        p: AgentRunParams,
        *,
        task: Literal["turn", "compact"] = "turn",
        silent: bool = False,
        auto: bool = False,
    ) -> AgentRunResult:
        """Register a run, store its input, announce it, and dispatch it to a kernel."""
        settings = self.model_settings(p.model_id())
        session = self.sessions.get_owned(ctx.user, session_id)
        if task == "turn" and not silent:
            left = await self.budgets.check(session_id)
        else:
            left = await self.budgets.remaining(session_id)
        if left is not None:
            settings = settings.model_copy(update={"tokenBudget": left})
        changes: dict[str, Any] = {"status": "running"}
        if p.runtimeMode and p.runtimeMode != session.runtimeMode:
            changes["runtimeMode"] = p.runtimeMode
        if task == "turn" and not silent:
            if not session.title:
                changes["title"] = title_of(p.input)
            changes["preview"] = title_of(p.input, 120)
        run = self.new_run(ctx, session_id, p.input, settings.model)
        active = ActiveRun(
            run=run,
            notebook_kernel_id=notebook_kernel_id(p),
            task=task,
            silent=silent,
            auto=auto,
        )
        if active.notebook_kernel_id and active.notebook_kernel_id not in self.kernels.mkm:
            raise OpenFoalError(
                ErrorCode.NOT_FOUND,
                f"notebookKernelId {active.notebook_kernel_id!r} is not a running kernel",
            )
        self.registry.add(active)
        try:
            self.worker.stage_run(run)
            prior = list(await self.transcripts.get(session_id))
            if task == "turn":
                user = ChatMessage(
                    role="user", content=p.input, kind=FLUSH_KIND if silent else None
                )
                await self.transcripts.append(session_id, run.id, user)
            session = self.sessions.update(session_id, **changes)
            accepted = self.hub.publish(
                session_id,
                ev.AGENT_ACCEPTED,
                {"runtimeMode": session.runtimeMode, "model": settings.model or ""}
                | ({"auto": True} if auto else {}),
                run_id=run.id,
                trace_id=run.trace_id,
            )
            # read while agent.accepted is being committed (it is on the first token's path)
            memory = (
                await self._memory_prompt(session.sessionKey, session.owner)
                if task == "turn"
                else ""
            )
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
                memoryRoot=str(self.memory.root_for(session.owner)),
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
                    "auto": auto,
                    "model": settings.model,
                    "policyVersion": run.policy_version,
                },
            )
            self.executor.start(active, spec, p.input)
            await accepted
        except BaseException:
            self.registry.discard(active)
            raise
        return AgentRunResult(runId=run.id, sessionId=session_id)

    async def continue_after_gate(
        self, ctx: RequestContext, gate: GateItem, outcome: str
    ) -> AgentRunResult:
        """Continue a run whose kernel was lost while its gate waited: a new run resumes the
        stored transcript, running the decided call first (and only once)."""
        session = self.sessions.peek(gate.sessionId)
        if session is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no session {gate.sessionId!r}")
        if self.registry.busy(session.id):
            raise OpenFoalError(ErrorCode.SESSION_BUSY, "the session is running another turn")
        settings = self.model_settings(None)
        left = await self.budgets.remaining(session.id)
        if left is not None:
            settings = settings.model_copy(update={"tokenBudget": left})
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
        active = ActiveRun(run=run, continues_gate=gate, continues_outcome=outcome)
        self.registry.add(active)
        self.worker.stage_run(run)
        prior = list(await self.transcripts.get(session.id))
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
            memoryRoot=str(self.memory.root_for(session.owner)),
            resume=True,
            gateDecision={"toolCallId": gate.toolCallId, "outcome": outcome},
        )
        self.executor.start(active, spec, "")
        await accepted
        return AgentRunResult(runId=run.id, sessionId=session.id)


def notebook_kernel_id(p: AgentRunParams) -> str | None:
    """The extension param ``notebookKernelId``: bind python.exec to that notebook's kernel."""
    value = (p.model_extra or {}).get("notebookKernelId")
    if value is not None and not isinstance(value, str):
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST, "notebookKernelId must be a kernel id string"
        )
    return value or None


def title_of(text: str, limit: int = 60) -> str:
    """One line of ``text``, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def new_trace_id() -> str:
    """A W3C trace id (32 hex digits)."""
    return uuid.uuid4().hex
