"""Result models of the gateway methods: the ``payload`` of a successful ``res``.

:data:`METHOD_RESULTS` names the methods this implementation serves; a protocol method
without an entry is answered with ``METHOD_NOT_FOUND``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .frames import EventFrame
from .sync import DeadLetter, SyncConflictItem, SyncRunState
from .transcript import ChatMessage
from .types import AuditEntry, GateItem, Policy, RuntimeMode, Session


class Result(BaseModel):
    """Base of every result model; extension fields are tolerated and kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """Return the JSON-ready payload (``null`` where a field says "none")."""
        return self.model_dump(mode="json", by_alias=True)


class UserInfo(BaseModel):
    """Who the server took the client for."""

    model_config = ConfigDict(extra="allow")
    name: str


class ConnectResult(Result):
    """``connect``."""

    protocolVersion: str
    serverTime: str
    user: UserInfo
    workspaceId: str
    role: Literal["local", "cloud"]
    features: list[str]


class AgentRunResult(Result):
    """``agent.run``: the run is accepted; its events follow."""

    runId: str
    sessionId: str
    status: Literal["accepted"] = "accepted"


class AgentAbortResult(Result):
    """``agent.abort``: ``aborted``, or the final status of a run that had already ended."""

    runId: str
    status: str


class SetModeResult(Result):
    """``runtime.setMode``."""

    sessionId: str
    runtimeMode: RuntimeMode
    status: Literal["applied", "queued-change"]
    effectiveOn: Literal["now", "next_turn"]


class SessionsListResult(Result):
    """``sessions.list``: one page, newest first."""

    items: list[Session]
    nextCursor: str | None = None


class StoredMessage(ChatMessage):
    """A transcript entry as ``sessions.get`` returns it: where it sits and when."""

    idx: int
    runId: str | None = None
    at: str


class SessionsGetResult(Result):
    """``sessions.get``; ``messages`` with ``includeMessages``, ``events`` with ``afterSeq``."""

    session: Session
    messages: list[StoredMessage] | None = None
    events: list[EventFrame] | None = None
    lastSeq: int | None = None

    def wire(self) -> dict[str, Any]:
        """The payload without the parts that were not asked for."""
        return self.model_dump(mode="json", exclude_none=True)


class SessionsDeleteResult(Result):
    """``sessions.delete``."""

    sessionId: str
    deleted: Literal[True] = True


class PolicyFieldChange(BaseModel):
    """One changed field of a policy diff: its value in the older and in the newer version."""

    model_config = ConfigDict(populate_by_name=True)
    from_: Any = Field(alias="from")
    to: Any


class PolicyDiff(BaseModel):
    """``policy.get`` ``diff``: the patchable fields that differ between two versions."""

    model_config = ConfigDict(populate_by_name=True)
    from_: int = Field(alias="from")
    to: int
    changes: dict[str, PolicyFieldChange]


class PolicyResult(Result):
    """``policy.get`` and ``policy.update`` (``history``, ``diff``: when asked for).

    ``history`` holds every version, oldest first; ``diff`` the fields two versions differ in.
    """

    policy: Policy
    history: list[Policy] | None = None
    diff: PolicyDiff | None = None

    def wire(self) -> dict[str, Any]:
        """The payload without the parts that were not asked for."""
        body = super().wire()
        for key in ("history", "diff"):
            if body.get(key) is None:
                body.pop(key, None)
        return body


class GateListResult(Result):
    """``policy-gate.list``."""

    items: list[GateItem]


class GateResolveResult(Result):
    """``policy-gate.resolve``; ``continuedRunId`` when approving continued a lost run."""

    gate: GateItem
    continuedRunId: str | None = None


class AuditQueryResult(Result):
    """``audit.query``: one page, newest first."""

    items: list[AuditEntry]
    nextCursor: str | None = None


class AuditReplayResult(Result):
    """``audit.replay``: the run's timeline (run, message, event and audit entries, in order)."""

    runId: str
    policyVersion: int | None = None
    events: list[dict[str, Any]]


class Metrics(BaseModel):
    """The figures of ``metrics.summary`` (docs/policy.md, "Metrics"); ``null``: no data."""

    model_config = ConfigDict(extra="allow")
    runsTotal: int
    runsCompleted: int
    runsFailed: int
    runsInterrupted: int
    runsAborted: int
    runsActive: int
    p50LatencyMs: float | None = None
    p95LatencyMs: float | None = None
    toolCallsTotal: int
    toolFailures: int
    toolTimeouts: int
    toolDenied: int
    toolRejected: int
    toolP95DurationMs: float | None = None
    gatesTotal: int
    gatePending: int
    gateApproved: int
    gateRejected: int
    gateExpired: int
    gateMedianWaitMs: float | None = None


class MetricsBucket(BaseModel):
    """One time bucket of a bucketed ``metrics.summary``: ``[start, end)``."""

    start: str
    end: str
    runsTotal: int
    runsFailed: int
    p95LatencyMs: float | None = None
    toolCallsTotal: int
    toolFailures: int
    gatesTotal: int
    gatePending: int


class ToolCallCount(BaseModel):
    """Calls of one tool in the window (``failures``: failed or timed out)."""

    toolName: str
    calls: int
    failures: int


class MetricsSummaryResult(Result):
    """``metrics.summary`` over ``[from, to)``; an open end is ``null``."""

    metrics: Metrics
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    bucket: int | None = None
    """Seconds per bucket, when asked for."""
    series: list[MetricsBucket] | None = None
    """Every bucket of the window, oldest first, empty ones included (with ``bucket``)."""
    byTool: list[ToolCallCount] | None = None
    """Tool calls by tool over the window, most called first (with ``bucket``)."""


class MemoryGetResult(Result):
    """``memory.get``."""

    path: str
    content: str


class MemoryAppendResult(Result):
    """``memory.appendDaily``: the note written to and the bytes appended."""

    path: str
    bytes: int


class MemoryArchiveResult(Result):
    """``memory.archive``."""

    archived: bool
    path: str


class SessionsExportResult(Result):
    """``sessions.export``: an nbformat-4 notebook (JSON) of the session, with provenance."""

    sessionId: str
    #: A suggested file name (``<sessionId>.ipynb``).
    filename: str
    #: ``sha256:`` of the session's audit entries the notebook came from (docs/notebooks.md).
    auditHash: str
    #: The notebook itself, as ``nbformat.reads`` takes it (version 4).
    notebook: dict[str, Any]


# -- model settings (the console's model form) -------------------------------------------


class SavedModel(BaseModel):
    """The model settings saved by ``model.update``; the key itself is never sent back."""

    model_config = ConfigDict(extra="allow")
    provider: Literal["openai", "anthropic", "demo"]
    model: str
    baseUrl: str | None = None
    hasKey: bool = False
    updatedAt: str | None = None
    updatedBy: str | None = None


class ModelGetResult(Result):
    """``model.get`` and ``model.update``: the saved settings and what new runs use."""

    saved: SavedModel | None = None
    #: The model new runs use (``provider:model``), or ``null``: none configured.
    active: str | None = None
    #: Where ``active`` comes from: server config/environment, the saved settings, or none.
    source: Literal["config", "saved", "none"] = "none"
    #: Whether the caller may change the settings (only the server's owner may).
    canEdit: bool = False


class ModelTestError(BaseModel):
    """Why a model test failed."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    status: int | None = None


class ModelTestResult(Result):
    """``model.test``: whether one call to the provider answered."""

    ok: bool
    model: str
    latencyMs: int
    #: The start of the model's answer (``ok``).
    reply: str | None = None
    error: ModelTestError | None = None


class SyncStatusResult(Result):
    """``sync.status``: where this server's sync stands."""

    state: SyncRunState
    """disabled (no cloud set), idle, syncing, paused, backoff (retrying), cloud (the
    instance that receives)."""
    lastSyncAt: datetime | None = None
    pending: int
    """Rows waiting in the outbox."""
    deadLetters: list[DeadLetter] = Field(default_factory=list)
    conflicts: list[SyncConflictItem] = Field(default_factory=list)
    lagSeconds: float | None = None
    """Age of the oldest pending row (none pending: null)."""
    cloudUrl: str | None = None
    lastError: str | None = None


class SyncResolveResult(Result):
    """``sync.resolve``: the session after the resolution (``fork``: also the new copy)."""

    session: Session
    forked: Session | None = None


class KernelsAttachResult(Result):
    """``kernels.attach``: the id the gateway knows the attached kernel by."""

    kernelId: str


#: method name -> result model, for every method this implementation serves.
METHOD_RESULTS: dict[str, type[Result]] = {
    "connect": ConnectResult,
    "agent.run": AgentRunResult,
    "agent.abort": AgentAbortResult,
    "runtime.setMode": SetModeResult,
    "sessions.list": SessionsListResult,
    "sessions.get": SessionsGetResult,
    "sessions.delete": SessionsDeleteResult,
    "policy.get": PolicyResult,
    "policy.update": PolicyResult,
    "policy-gate.list": GateListResult,
    "policy-gate.resolve": GateResolveResult,
    "audit.query": AuditQueryResult,
    "audit.replay": AuditReplayResult,
    "metrics.summary": MetricsSummaryResult,
    "memory.get": MemoryGetResult,
    "memory.appendDaily": MemoryAppendResult,
    "memory.archive": MemoryArchiveResult,
    "sessions.export": SessionsExportResult,
    "model.get": ModelGetResult,
    "model.update": ModelGetResult,
    "model.test": ModelTestResult,
    "sync.status": SyncStatusResult,
    "sync.resolve": SyncResolveResult,
    "sync.pause": SyncStatusResult,
    "sync.resume": SyncStatusResult,
    "sync.retry": SyncStatusResult,
    "sync.discard": SyncStatusResult,
    "kernels.attach": KernelsAttachResult,
}
