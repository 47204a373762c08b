"""Kernel event ingest: store a run's transcript entries and publish its protocol events."""

from __future__ import annotations

from openfoal_kernel.agent.context import FLUSH_KIND
from openfoal_kernel.protocol import ErrorCode, KernelEvent, utcnow
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.session_keys import build_session_key

from ..kernels.bridge import KernelBridge
from ..store import RunRow, StoreWorker
from . import otel
from .execution import RunExecutor
from .gates import GateService
from .hub import EventHub
from .registry import ActiveRun, RunRegistry
from .sessions import SessionService
from .tool_ledger import ToolLedger
from .transcripts import TranscriptService


class KernelEventIngest:
    """Turns what agent kernels report into stored rows and numbered session events."""

    def __init__(
        self,
        *,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        registry: RunRegistry,
        transcripts: TranscriptService,
        executor: RunExecutor,
        gates: GateService,
        ledger: ToolLedger,
        default_owner: str,
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.registry = registry
        self.transcripts = transcripts
        self.executor = executor
        self.gates = gates
        self.ledger = ledger
        self.default_owner = default_owner

    async def on_kernel_event(self, bridge: KernelBridge, ke: KernelEvent) -> None:
        """Ingest one kernel event: store transcript entries, publish protocol events."""
        active = self.registry.get(ke.runId)
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
            await self.transcripts.append(run.session_id, run.id, msg)
            otel.model_message(run.id, msg.role, len(msg.tool_calls or ()))
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
            await self.executor.end(active, ke.event, ke.payload)
            return
        if ke.event in (ev.GATE_REQUESTED, ev.GATE_RESOLVED):
            otel.tool_gated(run.id, ke.payload.get("gate") or {})
            if ke.event == ev.GATE_REQUESTED:
                await self.gates.on_requested(run, ke.payload)
            else:
                await self.gates.on_resolved(run, ke.payload)
            return
        if ke.event == ev.AGENT_TOOL_CALL:
            otel.tool_started(run.id, ke.payload)
            self.ledger.call(active, ke.payload)
        elif ke.event == ev.AGENT_TOOL_RESULT:
            self.ledger.result(active, ke.payload)
            otel.tool_ended(run.id, ke.payload)
        self.hub.publish(run.session_id, ke.event, ke.payload, run_id=run.id, trace_id=run.trace_id)

    async def _external_run(self, bridge: KernelBridge, ke: KernelEvent) -> ActiveRun | None:
        """A notebook cell turned into a run of the notebook's session."""
        if ke.event != ev.AGENT_ACCEPTED:
            return None
        session = self.sessions.peek(ke.sessionId)
        path = ke.payload.get("notebookPath") or ""
        if session is None:
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
        self.registry.add(active)
        self.worker.stage_run(run)
        self.sessions.update(run.session_id, status="running")
        return active

    async def on_kernel_lost(self, bridge: KernelBridge, reason: str) -> None:
        """Fail every run that was executing in a kernel that died."""
        for active in self.registry.on_bridge(bridge):
            await self.executor.fail(active, ErrorCode.RUNTIME_LOST, reason)
