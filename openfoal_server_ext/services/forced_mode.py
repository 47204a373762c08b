"""A forced switch back to local mode: ``runtime.setMode`` with ``force: true`` mid cloud run.

The run's sandbox call in flight is stopped at once (the kernel is interrupted; cancelling
the call kills every process it started in the container). The call ends with an
``agent.tool_result`` whose error (``reason: "runtime.mode_forced"``) names the switch, also
stored in the transcript as the tool's answer; the run ends as aborted with an error naming
the switch; the session becomes local before the answer (``runtime.mode_changed``); and the
audit trail gets a ``runtime.mode_forced`` entry. The next turn runs locally. Everything
already stored stays.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from openfoal_kernel.protocol import ChatMessage, ErrorCode, utcnow
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.results import SetModeResult

from ..kernels.orchestrator import KernelOrchestrator
from .audit import AuditService
from .context import RequestContext
from .execution import RunExecutor
from .hub import EventHub
from .modes import RuntimeModes
from .registry import ActiveRun
from .sessions import SessionService
from .tool_ledger import ToolLedger
from .transcripts import TranscriptService

__all__ = ["FORCED_REASON", "ForcedLocal"]

#: ``error.reason`` of a tool call or run a forced switch stopped.
FORCED_REASON = "runtime.mode_forced"
#: How long the kernel may take to wind the run down before the gateway ends it itself.
WIND_DOWN_S = 5.0


def _message(user: str) -> str:
    return f"stopped: {user} forced the session back to local mode (runtime.setMode force)"


class ForcedLocal:
    """Stops a cloud run now and switches its session to local."""

    def __init__(
        self,
        *,
        hub: EventHub,
        sessions: SessionService,
        kernels: KernelOrchestrator,
        audit: AuditService,
        ledger: ToolLedger,
        transcripts: TranscriptService,
        executor: RunExecutor,
        modes: RuntimeModes,
    ) -> None:
        self.hub = hub
        self.sessions = sessions
        self.kernels = kernels
        self.audit = audit
        self.ledger = ledger
        self.transcripts = transcripts
        self.executor = executor
        self.modes = modes

    async def force(self, ctx: RequestContext, active: ActiveRun) -> SetModeResult:
        """Stop ``active`` (a cloud run) now; the session is local when this returns."""
        run = active.run
        session_id = run.session_id
        before = self.sessions.get_owned(ctx.user, session_id).runtimeMode
        active.forced_by = ctx.user
        self.sessions.update(session_id, pendingRuntimeMode="local")  # applied as the run ends
        self.audit.record(
            actor=ctx.user,
            owner=run.owner,
            action="runtime.mode_forced",
            resource=f"session:{session_id}",
            trace_id=ctx.trace_id,
            session_id=session_id,
            run_id=run.id,
            detail={
                "from": before,
                "to": "local",
                "forced": True,
                "openToolCalls": sorted(active.tool_started),
            },
        )
        if active.bridge is not None:
            with contextlib.suppress(Exception):
                await self.kernels.interrupt(active.bridge)
        try:
            await asyncio.wait_for(active.ended.wait(), WIND_DOWN_S)
        except asyncio.TimeoutError:
            if active.dispatch is not None:
                active.dispatch.cancel()
            await self.close_calls(active)
            await self.executor.fail(
                active, ErrorCode.RUNTIME_LOST, _message(ctx.user), aborted=True
            )
        await self.modes.apply(session_id, "local")  # done already unless the end is still going
        return SetModeResult(
            sessionId=session_id, runtimeMode="local", status="applied", effectiveOn="now"
        )

    async def close_calls(self, active: ActiveRun) -> None:
        """End every tool call of ``active`` still open with the forced-switch error."""
        run = active.run
        user = active.forced_by or run.owner
        answers: list[ChatMessage] = []
        # closed synchronously (no await between a call's row and its event): a second
        # close running alongside finds nothing left to close
        for call_id, (started, call) in list(active.tool_started.items()):
            text = f"{ErrorCode.RUNTIME_LOST.value}: the sandbox call was {_message(user)}"
            error = {
                "code": ErrorCode.RUNTIME_LOST.value,
                "message": text,
                "reason": FORCED_REASON,
                "forcedBy": user,
                "runtimeMode": "local",
            }
            payload: dict[str, Any] = {
                "toolCallId": call_id,
                "toolName": call.get("toolName"),
                "status": "failed",
                "output": text,
                "durationMs": round((utcnow() - started).total_seconds() * 1000, 3),
                "error": error,
            }
            self.ledger.result(active, payload)  # takes the call off ``tool_started``
            self.hub.publish(
                run.session_id, ev.AGENT_TOOL_RESULT, payload, run_id=run.id, trace_id=run.trace_id
            )
            tool = str(call.get("toolName") or "")
            answers.append(ChatMessage(role="tool", tool_call_id=call_id, name=tool, content=text))
        for answer in answers:
            await self.transcripts.append(run.session_id, run.id, answer)

    async def on_terminal(
        self, active: ActiveRun, event: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The kernel ended a forced run: close its calls, name the switch in its error."""
        await self.close_calls(active)
        if event != ev.AGENT_FAILED:
            return payload
        error = dict(payload.get("error") or {})
        error.update(
            message=f"the run was {_message(active.forced_by or active.run.owner)}",
            reason=FORCED_REASON,
        )
        return {**payload, "error": error, "aborted": True}
