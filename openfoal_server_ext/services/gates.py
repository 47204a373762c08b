"""The policy gate on the gateway side: the queue of calls waiting for a human.

A kernel raises a gate (``policy-gate.requested``) and waits. A decision here is audited
and committed *before* it is delivered, then reaches the waiting kernel on its control
channel. If no kernel waits any more (it died, or the server restarted), approving the
gate continues the run from the stored transcript in a fresh kernel; the call runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from openfoal_kernel.protocol import ErrorCode, GateItem, OpenFoalError, utcnow
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.results import AgentRunResult, GateResolveResult
from openfoal_kernel.protocol.types import GatePreview
from openfoal_kernel.redact import redact

from ..store import RunRow, StoreWorker
from .audit import AuditService
from .context import RequestContext
from .hub import EventHub
from .registry import ActiveRun, RunRegistry
from .roles import CrossUserRefusal
from .sessions import SessionService
from .telemetry import GATES

log = logging.getLogger(__name__)


class RunContinuer(Protocol):
    """Starts the run that continues a gate no kernel waits for any more."""

    async def continue_after_gate(
        self, ctx: RequestContext, gate: GateItem, outcome: str
    ) -> AgentRunResult:
        """Start the continuing run; return its ``accepted`` payload."""
        ...


class GateService:
    """Pending and resolved gates, their decisions and their audit trail."""

    def __init__(
        self,
        *,
        worker: StoreWorker,
        hub: EventHub,
        sessions: SessionService,
        audit: AuditService,
        registry: RunRegistry,
        continuer: RunContinuer,
        timeout_s: Callable[[], int],
        preview: Callable[[GateItem], GatePreview | None] | None = None,
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.sessions = sessions
        self.audit = audit
        self.timeout_s = timeout_s
        self.registry = registry
        self.continuer = continuer
        #: What a gated call would change (a file.write's diff), computed when it is raised.
        self.preview = preview
        registry.on_end(self._on_run_end)
        self._gates: dict[str, GateItem] = {}
        self._owners: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._sweeper: asyncio.Task[None] | None = None
        #: On a cloud instance: whether a gate's run lives on its owner's server (a pushed
        #: session). Its decision is recorded here and picked up there; nothing runs here.
        self.runs_elsewhere: Callable[[GateItem], bool] = lambda gate: False

    # -- persistence ----------------------------------------------------------------------

    def _stage(self, gate: GateItem, owner: str) -> None:
        self._gates[gate.gateId] = gate
        self._owners[gate.gateId] = owner
        self.worker.stage_gate(gate, owner)

    async def start(self) -> None:
        """Load pending gates (they survive restarts) and start the expiry sweep."""
        for gate, owner in await self.worker.call(self.worker.store.pending_gates):
            self._gates[gate.gateId] = gate
            self._owners[gate.gateId] = owner
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        """Stop the sweep."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    # -- from kernels ---------------------------------------------------------------------

    async def on_requested(self, run: RunRow, payload: dict[str, Any]) -> None:
        """A kernel raised a gate: queue it, audit it, announce it."""
        raw = dict(payload.get("gate") or {})
        raw["requestedBy"] = run.owner
        gate = GateItem.model_validate({**raw, "sessionId": run.session_id, "runId": run.id})
        if self.preview is not None:
            try:
                preview = await asyncio.to_thread(self.preview, gate)
            except Exception:  # a preview is a help for the reader, never a reason to fail
                log.exception("previewing gate %s", gate.gateId)
                preview = None
            gate = gate.model_copy(update={"preview": preview})
        self._stage(gate, run.owner)
        GATES.labels("requested").inc()
        self.audit.record(
            actor=run.owner,
            owner=run.owner,
            action="gate.requested",
            resource=f"gate:{gate.gateId}",
            trace_id=run.trace_id,
            session_id=run.session_id,
            run_id=run.id,
            detail={
                "toolName": gate.toolName,
                "toolCallId": gate.toolCallId,
                "args": gate.args,
                "risk": gate.risk,
            },
        )
        self.sessions.update(run.session_id, status="waiting_gate")
        await self.hub.publish(
            run.session_id,
            ev.GATE_REQUESTED,
            {"gate": _wire(gate)},
            run_id=run.id,
            trace_id=run.trace_id,
        )

    async def on_resolved(self, run: RunRow, payload: dict[str, Any]) -> None:
        """A kernel reports how its gate ended (our decision, a notebook user's, or expiry)."""
        raw = payload.get("gate") or {}
        gate_id = str(raw.get("gateId", ""))
        async with self._lock(gate_id):
            gate = self._gates.get(gate_id)
            if gate is None:
                return
            if gate.status == "pending":  # decided inside the kernel: notebook user or timeout
                gate = gate.model_copy(
                    update={
                        "status": raw.get("status", "expired"),
                        "decision": raw.get("decision"),
                        "resolvedBy": raw.get("resolvedBy") or None,
                        "resolvedAt": utcnow(),
                    }
                )
                if gate.resolvedBy == "notebook":
                    gate = gate.model_copy(update={"resolvedBy": run.owner})
                self._stage(gate, run.owner)
                await self.audit.record_now(
                    actor=gate.resolvedBy or "system",
                    owner=run.owner,
                    action=f"gate.{gate.status}",
                    resource=f"gate:{gate.gateId}",
                    trace_id=run.trace_id,
                    session_id=run.session_id,
                    run_id=run.id,
                    detail={"via": raw.get("resolvedBy") or "timeout"},
                )
        if self.sessions.peek(run.session_id) is not None:
            self.sessions.update(run.session_id, status="running")
        GATES.labels(gate.status).inc()
        await self.hub.publish(
            run.session_id,
            ev.GATE_RESOLVED,
            {"gate": _wire(gate)},
            run_id=run.id,
            trace_id=run.trace_id,
        )

    # -- from people ----------------------------------------------------------------------

    async def resolve(
        self,
        ctx: RequestContext,
        gate_id: str,
        decision: str,
        reason: str | None,
        *,
        approver_copy: bool = True,
    ) -> GateResolveResult:
        """Approve or reject a pending gate (first decision wins). An approver's decision is
        audited on the owner's trail and, with ``approver_copy``, on the approver's (a
        decision taken on the cloud instance has that copy there already)."""
        async with self._lock(gate_id):
            gate = self._gates.get(gate_id) or await self._load(gate_id)
            owner = self._owners.get(gate_id, "")
            if owner != ctx.user and not ctx.is_approver:
                raise CrossUserRefusal(
                    "this gate belongs to another user's session (resolving it needs an "
                    "approver group)",
                    owner=owner,
                    resource=f"gate:{gate_id}",
                )
            if gate.status != "pending":
                raise OpenFoalError(
                    ErrorCode.VERSION_CONFLICT,
                    f"gate already {gate.status}"
                    + (f" by {gate.resolvedBy}" if gate.resolvedBy else ""),
                    details={"gate": _wire(gate)},
                )
            elsewhere = self.runs_elsewhere(gate)
            active = self.registry.get(gate.runId)
            waiting = active is not None and active.waiting_kernel
            if not waiting and not elsewhere and self.registry.busy(gate.sessionId):
                raise OpenFoalError(
                    ErrorCode.SESSION_BUSY,
                    "the session is running another turn; resolve the gate when it ends",
                )
            status = "approved" if decision == "approve" else "rejected"
            gate = gate.model_copy(
                update={
                    "status": status,
                    "decision": decision,
                    "reason": reason,
                    "resolvedBy": ctx.user,
                    "resolvedAt": utcnow(),
                }
            )
            self._stage(gate, owner)
            detail: dict[str, Any] = {
                "decision": decision,
                "reason": reason,
                "toolName": gate.toolName,
            }
            if owner != ctx.user:  # an approver's decision: on both users' trails
                detail |= {"sessionOwner": owner, "resolvedBy": ctx.user, "crossUser": True}
            if owner != ctx.user and approver_copy:
                self.audit.record(
                    actor=ctx.user,
                    owner=ctx.user,
                    action=f"gate.{status}",
                    resource=f"gate:{gate.gateId}",
                    trace_id=ctx.trace_id,
                    session_id=gate.sessionId,
                    run_id=gate.runId,
                    detail=detail,
                )
            # audited and committed before the call can execute
            await self.audit.record_now(
                actor=ctx.user,
                owner=owner,
                action=f"gate.{status}",
                resource=f"gate:{gate.gateId}",
                trace_id=ctx.trace_id,
                session_id=gate.sessionId,
                run_id=gate.runId,
                detail=detail,
            )
            if waiting:
                assert active is not None and active.bridge is not None
                active.bridge.send_gate_reply(gate.gateId, decision, ctx.user)
                return GateResolveResult(gate=_redacted(gate))
        if elsewhere:
            # the owner's server picks the decision up, announces it and continues the run;
            # the session's history here is what that server pushes (no event added here)
            await self.worker.commit()
            return GateResolveResult(gate=_redacted(gate))
        # no kernel waits for it: announce the decision, then continue the run
        await self.hub.publish(
            gate.sessionId,
            ev.GATE_RESOLVED,
            {"gate": _wire(gate)},
            run_id=gate.runId,
            trace_id=ctx.trace_id,
        )
        outcome = "approved" if decision == "approve" else "rejected"
        continued = await self.continuer.continue_after_gate(ctx, gate, outcome)
        return GateResolveResult(gate=_redacted(gate), continuedRunId=continued.runId)

    async def list(
        self,
        ctx: RequestContext,
        *,
        status: str | None,
        session_id: str | None,
        limit: int,
        tool_name: str | None = None,
        gate_id: str | None = None,
    ) -> list[GateItem]:
        """The caller's gates, newest first (an approver's: every user's in the workspace)."""
        await self.worker.commit()
        rows = await self.worker.call(
            self.worker.store.list_gates,
            owner=None if ctx.is_approver else ctx.user,
            status=status,
            session_id=session_id,
            limit=limit,
            tool_name=tool_name,
            gate_id=gate_id,
        )
        return [_redacted(g) for g in rows]

    def pending(self) -> tuple[GateItem, ...]:
        """The pending gates known here."""
        return tuple(g for g in self._gates.values() if g.status == "pending")

    async def find(self, gate_id: str) -> tuple[GateItem, str] | None:
        """A gate of this server's store and its owner, or ``None``."""
        gate = self._gates.get(gate_id)
        if gate is None:
            try:
                gate = await self._load(gate_id)
            except OpenFoalError as exc:
                if exc.code == ErrorCode.NOT_FOUND:
                    return None
                raise
        return gate, self._owners.get(gate_id, "")

    def owner_of(self, gate_id: str) -> str | None:
        """The owner of a known gate's session (``None`` when not loaded)."""
        return self._owners.get(gate_id)

    # -- helpers --------------------------------------------------------------------------

    def _lock(self, gate_id: str) -> asyncio.Lock:
        return self._locks.setdefault(gate_id, asyncio.Lock())

    async def _load(self, gate_id: str) -> GateItem:
        await self.worker.commit()
        found = await self.worker.call(self.worker.store.get_gate, gate_id)
        if found is None:
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"no gate {gate_id!r}")
        gate, owner = found
        self._gates[gate_id] = gate
        self._owners[gate_id] = owner
        return gate

    async def _on_run_end(self, active: ActiveRun) -> None:
        if active.run.status == "aborted":
            await self.expire_for_run(active.run)

    async def expire_for_run(self, run: RunRow) -> None:
        """An aborted run's pending gates can no longer be answered: expire them."""
        for gate in [
            g for g in self._gates.values() if g.runId == run.id and g.status == "pending"
        ]:
            async with self._lock(gate.gateId):
                gate = gate.model_copy(update={"status": "expired", "resolvedAt": utcnow()})
                self._stage(gate, run.owner)
                self.audit.record(
                    actor="system",
                    owner=run.owner,
                    action="gate.expired",
                    resource=f"gate:{gate.gateId}",
                    trace_id=run.trace_id,
                    session_id=run.session_id,
                    run_id=run.id,
                    detail={"why": "run aborted"},
                )
            self.hub.publish(
                run.session_id,
                ev.GATE_RESOLVED,
                {"gate": _wire(gate)},
                run_id=run.id,
                trace_id=run.trace_id,
            )

    async def expire_stale(self) -> int:
        """Expire pending gates past the timeout that no kernel is waiting on."""
        now = utcnow()
        limit = timedelta(seconds=self.timeout_s())
        count = 0
        for gate in [g for g in self._gates.values() if g.status == "pending"]:
            if gate.runId in self.registry or now - gate.createdAt < limit:
                continue
            if self.runs_elsewhere(gate):  # its owner's server expires it
                continue
            async with self._lock(gate.gateId):
                if self._gates[gate.gateId].status != "pending":
                    continue
                gate = gate.model_copy(update={"status": "expired", "resolvedAt": now})
                owner = self._owners.get(gate.gateId, "")
                self._stage(gate, owner)
                await self.audit.record_now(
                    actor="system",
                    owner=owner,
                    action="gate.expired",
                    resource=f"gate:{gate.gateId}",
                    trace_id=gate.runId,
                    session_id=gate.sessionId,
                    run_id=gate.runId,
                    detail={},
                )
            await self.hub.publish(
                gate.sessionId, ev.GATE_RESOLVED, {"gate": _wire(gate)}, run_id=gate.runId
            )
            count += 1
        return count

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(5)
            try:
                await self.expire_stale()
            except Exception:
                log.exception("expiring stale gates")


def _redacted(gate: GateItem) -> GateItem:
    """The gate as it leaves the server: secrets in its arguments redacted."""
    return gate.model_copy(update={"args": redact(gate.args)})


def _wire(gate: GateItem) -> dict[str, Any]:
    return _redacted(gate).wire()
