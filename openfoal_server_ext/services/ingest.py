"""Kernel event ingest: store a run's transcript entries and publish its protocol events."""

from __future__ import annotations

from openfoal_kernel.agent.context import FLUSH_KIND
from openfoal_kernel.protocol import ErrorCode, KernelEvent, utcnow
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.kernel_wire import ParkedResult
from openfoal_kernel.protocol.session_keys import build_session_key
from openfoal_kernel.redact import redact_text

from ..kernels.bridge import KernelBridge
from ..store import RunRow, StoreWorker
from . import otel
from .execution import RunExecutor
from .forced_mode import ForcedLocal
from .gates import GateService
from .hub import EventHub
from .registry import ActiveRun, RunRegistry
from .sessions import SessionService
from .tool_ledger import ToolLedger
from .transcripts import TranscriptService

#: How much of a continued call's output and reply a parked cell shows.
_RESULT_CHARS = 64 * 1024


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
        forced: ForcedLocal,
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
        self.forced = forced
        self.default_owner = default_owner
        #: parked notebook gates -> the notebook kernel whose cell parked (told of the result)
        self.parked: dict[str, KernelBridge] = {}

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
            payload = ke.payload
            if active.forced_by is not None:
                payload = await self.forced.on_terminal(active, ke.event, payload)
            await self.executor.end(active, ke.event, payload)
            parked = ke.payload.get("parked") if active.external else None
            if isinstance(parked, dict) and parked.get("gateId"):
                self._forget_gone_kernels()
                self.parked[str(parked["gateId"])] = bridge
            if active.continues_gate is not None:
                await self._tell_parked_cell(active, ke)
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

    def _forget_gone_kernels(self) -> None:
        """Drop parked gates whose notebook kernel is gone (their gates may never end)."""
        for gate_id in [g for g, b in self.parked.items() if b.comm_id is None]:
            del self.parked[gate_id]

    async def _tell_parked_cell(self, active: ActiveRun, ke: KernelEvent) -> None:
        """A run continued after a parked notebook gate ended: the notebook's kernel (still
        attached) updates the parked cell's display with the result."""
        gate = active.continues_gate
        assert gate is not None
        bridge = self.parked.pop(gate.gateId, None)
        if bridge is None or bridge.comm_id is None:
            return  # not parked by a notebook, or its kernel is gone
        run = active.run
        messages = await self.transcripts.get(run.session_id)
        tool_at = next(
            (
                i
                for i in range(len(messages) - 1, -1, -1)
                if messages[i].role == "tool" and messages[i].tool_call_id == gate.toolCallId
            ),
            None,
        )
        tool_output = messages[tool_at].content if tool_at is not None else ""
        later = messages[tool_at + 1 :] if tool_at is not None else []
        text = next((m.content for m in reversed(later) if m.role == "assistant" and m.content), "")
        status = "completed"
        if ke.event == ev.AGENT_FAILED:
            status = "failed"
            error = ke.payload.get("error") or {}
            text = f"{error.get('code', 'ERROR')}: {error.get('message', '')}"
        result = ParkedResult(
            gateId=gate.gateId,
            decision=active.continues_outcome,
            status=status,
            runId=run.id,
            sessionId=run.session_id,
            toolOutput=redact_text(tool_output[:_RESULT_CHARS]),
            text=redact_text(text[:_RESULT_CHARS]),
        )
        bridge.send_parked_result(result)

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
        active = ActiveRun(run=run, bridge=bridge, external=True, kernel_pid=bridge.pid)
        self.registry.add(active)
        self.worker.stage_run(run)
        self.sessions.update(run.session_id, status="running")
        return active

    async def on_kernel_lost(
        self, bridge: KernelBridge, reason: str, pid: int | None = None
    ) -> None:
        """Fail every run that was executing in a kernel that died (``pid``: that process
        only; a turn still waiting for the restarted process is left to run there)."""
        for active in self.registry.on_bridge(bridge):
            if pid is not None and (active.kernel_pid is None or active.kernel_pid != pid):
                continue
            await self.executor.fail(active, ErrorCode.RUNTIME_LOST, reason)
