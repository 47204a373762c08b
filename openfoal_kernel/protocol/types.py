"""Shared wire types of PROTOCOL.md: Session, Policy, GateItem, AuditEntry.

Field names are the wire names (camelCase) so that one definition serves both sides and the
JSON Schema export without an alias layer.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

RuntimeMode = Literal["local", "cloud"]
SessionStatus = Literal["idle", "running", "waiting_gate", "queued"]
SyncState = Literal["local_only", "syncing", "synced", "conflict"]
MemoryFlushState = Literal["idle", "pending", "flushed", "skipped"]
Rule = Literal["allow", "deny", "gate"]
GateStatus = Literal["pending", "approved", "rejected", "expired"]
ToolStatus = Literal["success", "failed", "denied", "rejected", "timeout"]


def utcnow() -> datetime:
    """Return an aware UTC timestamp (all stored and wire times are UTC)."""
    return datetime.now(timezone.utc)


class WireModel(BaseModel):
    """Base for wire types: unknown fields are tolerated and kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_serializer(mode="wrap")
    def _without_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave out optionals that are ``None``, also when nested in a result."""
        return {k: v for k, v in handler(self).items() if v is not None}

    def wire(self) -> dict[str, Any]:
        """Return the JSON-ready wire form (ISO times, no ``None`` optionals)."""
        return self.model_dump(mode="json", exclude_none=True)


class Session(WireModel):
    """A conversation: its key, owner, status and context bookkeeping."""

    id: str
    sessionKey: str
    title: str = ""
    preview: str = ""
    owner: str
    status: SessionStatus = "idle"
    runtimeMode: RuntimeMode = "local"
    pendingRuntimeMode: RuntimeMode | None = None
    syncState: SyncState = "local_only"
    contextUsage: float = Field(default=0.0, ge=0.0, le=1.0)
    compactionCount: int = 0
    memoryFlushState: MemoryFlushState = "idle"
    memoryFlushAt: datetime | None = None
    createdAt: datetime = Field(default_factory=utcnow)
    updatedAt: datetime = Field(default_factory=utcnow)


class NetworkPolicy(WireModel):
    """Hosts the tools may reach (patterns such as ``api.example.com`` or ``*.example.org``)."""

    allow: list[str] = Field(default_factory=list)


class Policy(WireModel):
    """What the agent may do, versioned per scope."""

    scopeKey: str = "default"
    toolDefault: Rule = "allow"
    highRisk: Rule = "gate"
    bashMode: Literal["sandbox", "host"] = "host"
    tools: dict[str, Rule] = Field(default_factory=dict)
    network: NetworkPolicy = Field(default_factory=NetworkPolicy)
    gateTimeoutSec: int = Field(default=900, ge=1)
    version: int = 1
    updatedAt: datetime = Field(default_factory=utcnow)
    updatedBy: str = "system"
    #: What a cloud turn does when its sandbox cannot be had (Docker down, cap reached):
    #: ``local`` runs it on the host, ``read-only`` runs it on the host with only the tools
    #: that change nothing, ``fail`` ends it with ``SANDBOX_UNAVAILABLE``; unset, ``bashMode``
    #: decides (``host``: local, ``sandbox``: fail).
    sandboxDegrade: Literal["local", "read-only", "fail"] | None = None


class GatePreview(WireModel):
    """What a gated call would change, computed by the gateway when the gate is raised.

    For ``file.write``: a unified diff of the workspace file as it is against what the call
    would leave (an extension field of ``GateItem``, docs/protocol.md)."""

    kind: Literal["file.diff"] = "file.diff"
    path: str
    #: False: the call creates the file.
    exists: bool = False
    #: Unified diff (``---``/``+++`` headers, ``@@`` hunks); empty when nothing changes.
    diff: str = ""
    added: int = 0
    removed: int = 0
    #: The diff was cut at the preview limit.
    truncated: bool = False
    #: Why no diff could be made (a binary or unreadable file, a path outside the workspace).
    note: str | None = None


class GateItem(WireModel):
    """A tool call waiting for (or resolved by) a human decision."""

    gateId: str
    sessionId: str
    runId: str
    toolCallId: str
    toolName: str
    args: dict[str, Any]
    argsFingerprint: str
    risk: str
    status: GateStatus = "pending"
    decision: Literal["approve", "reject"] | None = None
    reason: str | None = None
    requestedBy: str
    resolvedBy: str | None = None
    createdAt: datetime = Field(default_factory=utcnow)
    resolvedAt: datetime | None = None
    #: What the call would change (``file.write``: a diff), when the gateway could tell.
    preview: GatePreview | None = None


class AuditEntry(WireModel):
    """One audited action, with the trace it belongs to."""

    id: str
    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    resource: str
    sessionId: str | None = None
    runId: str | None = None
    traceId: str
    detail: dict[str, Any] = Field(default_factory=dict)
