"""Payload models of the gateway events (PROTOCOL.md, "Events").

Every payload has ``sessionId`` (``policy.updated``, a server-wide event, excepted) and
``runId`` + ``traceId`` where a run is involved. Extension fields (docs/protocol.md) are
declared where the implementation sends them; others are tolerated and kept.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import events as ev
from .frames import ErrorBody
from .types import GateItem, Policy, RuntimeMode, Session, SyncState, ToolStatus


class EventPayload(BaseModel):
    """Fields every session event carries."""

    model_config = ConfigDict(extra="allow")

    sessionId: str
    runId: str | None = None
    traceId: str | None = None


class RunPayload(EventPayload):
    """An event of a run: ``runId`` and ``traceId`` are always there."""

    runId: str
    traceId: str


class DisplayBundle(BaseModel):
    """One rich output: a Jupyter mime bundle with its metadata (display_data content)."""

    model_config = ConfigDict(extra="allow")
    data: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Tokens a run used."""

    model_config = ConfigDict(extra="allow")
    inputTokens: int = 0
    outputTokens: int = 0


class AcceptedPayload(RunPayload):
    """``agent.accepted``; ``continues``/``gateId`` on a run continued after a gate."""

    runtimeMode: RuntimeMode
    model: str
    notebookPath: str | None = None
    continues: str | None = None
    gateId: str | None = None


class DeltaPayload(RunPayload):
    """``agent.delta``: the next piece of the answer's text."""

    delta: str


class ToolCallPayload(RunPayload):
    """``agent.tool_call``."""

    toolCallId: str
    toolName: str
    args: dict[str, Any]
    runtimeMode: RuntimeMode


class ToolResultPayload(RunPayload):
    """``agent.tool_result``; ``displays`` holds the rich outputs of ``python.exec``."""

    toolCallId: str
    toolName: str
    status: ToolStatus
    output: Any = None
    durationMs: float
    error: ErrorBody | dict[str, Any] | str | None = None
    displays: list[DisplayBundle] | None = None


class CompletedPayload(RunPayload):
    """``agent.completed``; ``silent`` for a memory flush run."""

    status: Literal["completed"] = "completed"
    usage: Usage
    summary: str | None = None
    silent: bool | None = None


class FailedPayload(RunPayload):
    """``agent.failed``; ``aborted`` after ``agent.abort``, ``interrupted`` after a crash."""

    error: ErrorBody
    aborted: bool | None = None
    interrupted: bool | None = None
    silent: bool | None = None


class GatePayload(EventPayload):
    """``policy-gate.requested`` and ``policy-gate.resolved``."""

    gate: GateItem


class ModeChangedPayload(EventPayload):
    """``runtime.mode_changed``."""

    runtimeMode: RuntimeMode
    effectiveAt: str


class SessionUpdatedPayload(EventPayload):
    """``session.updated``."""

    session: Session


class TeamPolicyRef(BaseModel):
    """Which version of the team's policy (pulled from the cloud instance) is in force."""

    model_config = ConfigDict(extra="allow")
    version: int
    updatedBy: str


class PolicyUpdatedPayload(BaseModel):
    """``policy.updated``: a server-wide event, so no ``sessionId``."""

    model_config = ConfigDict(extra="allow")
    policy: Policy
    #: Extension: set when a new team policy version was pulled (``policy`` is then the one
    #: in force: the stricter of the team's and the server's own).
    team: TeamPolicyRef | None = None


class SyncStatePayload(EventPayload):
    """``sync.state_changed``."""

    syncState: SyncState
    detail: str | dict[str, Any] | None = None


#: event name -> payload model, one for every event of the protocol.
EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    ev.AGENT_ACCEPTED: AcceptedPayload,
    ev.AGENT_DELTA: DeltaPayload,
    ev.AGENT_TOOL_CALL: ToolCallPayload,
    ev.AGENT_TOOL_RESULT: ToolResultPayload,
    ev.AGENT_COMPLETED: CompletedPayload,
    ev.AGENT_FAILED: FailedPayload,
    ev.GATE_REQUESTED: GatePayload,
    ev.GATE_RESOLVED: GatePayload,
    ev.RUNTIME_MODE_CHANGED: ModeChangedPayload,
    ev.SESSION_UPDATED: SessionUpdatedPayload,
    ev.POLICY_UPDATED: PolicyUpdatedPayload,
    ev.SYNC_STATE_CHANGED: SyncStatePayload,
}
