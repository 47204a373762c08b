"""Parameter models of the gateway methods (PROTOCOL.md, "Methods").

Each model validates ``params``; ``extra="allow"`` keeps unknown extension fields tolerated.
Side-effect methods inherit from :class:`SideEffectParams` and so require ``idempotencyKey``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .types import RuntimeMode

_ID = Field(min_length=1, max_length=200)


class Params(BaseModel):
    """Base of every params model."""

    model_config = ConfigDict(extra="allow")


class SideEffectParams(Params):
    """Params of a method with a side effect: an idempotency key is mandatory."""

    idempotencyKey: str = Field(min_length=1, max_length=200)


class ClientInfo(BaseModel):
    """Who is connecting."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(default="", max_length=100)


class AuthParams(BaseModel):
    """Optional credentials inside ``connect``."""

    model_config = ConfigDict(extra="allow")
    token: str | None = None


class ProtocolRange(BaseModel):
    """Protocol versions the client speaks (major numbers or semver strings)."""

    model_config = ConfigDict(extra="allow")
    min: str | int = "1"
    max: str | int = "1"


class ConnectParams(Params):
    """``connect``: the first frame of every connection."""

    client: ClientInfo
    auth: AuthParams | None = None
    workspaceId: str | None = Field(default=None, max_length=200)
    protocol: ProtocolRange | None = None


class ModelChoice(BaseModel):
    """A per-run model override: ``"provider:model"`` or an object with ``id``."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=200)


class AgentRunParams(SideEffectParams):
    """``agent.run``: one turn of a session (a new session when neither id nor key is given)."""

    sessionId: str | None = Field(default=None, max_length=200)
    sessionKey: str | None = Field(default=None, max_length=1000)
    input: str = Field(max_length=1_000_000)
    runtimeMode: RuntimeMode | None = None
    model: str | ModelChoice | None = None

    def model_id(self) -> str | None:
        """The requested model as ``provider:model``, if any."""
        if isinstance(self.model, ModelChoice):
            return self.model.id
        return self.model


class AgentAbortParams(SideEffectParams):
    """``agent.abort``."""

    runId: str = _ID


class RuntimeSetModeParams(SideEffectParams):
    """``runtime.setMode``."""

    sessionId: str = _ID
    runtimeMode: RuntimeMode
    force: StrictBool = False
    """With ``runtimeMode: "local"`` during a cloud run: stop the run's sandbox call now and
    switch at once (``applied``/``now``) instead of queueing the change for the next turn."""


class SessionsListParams(Params):
    """``sessions.list``."""

    workspaceId: str | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None
    query: str | None = Field(default=None, max_length=500)


class SessionsGetParams(Params):
    """``sessions.get``."""

    sessionId: str = _ID
    includeMessages: bool = False
    afterSeq: int | None = Field(default=None, ge=0)
    limit: int = Field(default=1000, ge=1, le=10_000)


class SessionsDeleteParams(SideEffectParams):
    """``sessions.delete`` (an OpenFoal extension: the console's delete button)."""

    sessionId: str = _ID


class PolicyDiffRange(BaseModel):
    """``policy.get`` ``diff``: the two versions of the scope to compare (either order)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: int = Field(alias="from", ge=1)
    to: int = Field(ge=1)


class PolicyGetParams(Params):
    """``policy.get`` (``history`` and ``diff`` are OpenFoal extensions: the Policy panel)."""

    scopeKey: str = "default"
    history: bool = False
    diff: PolicyDiffRange | None = None


class PolicyUpdateParams(SideEffectParams):
    """``policy.update``."""

    scopeKey: str = "default"
    patch: dict[str, Any]
    expectedVersion: int | None = None


class GateListParams(Params):
    """``policy-gate.list``."""

    status: Literal["pending", "approved", "rejected", "expired"] | None = None
    sessionId: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    #: Only gates of this tool (an OpenFoal extension: the Approvals panel's tool filter).
    toolName: str | None = Field(default=None, max_length=200)
    #: Only this gate (an OpenFoal extension: a link to one gate, whatever its age).
    gateId: str | None = Field(default=None, max_length=200)


class GateResolveParams(SideEffectParams):
    """``policy-gate.resolve``."""

    gateId: str = _ID
    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=2000)


class AuditQueryParams(Params):
    """``audit.query``."""

    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    actor: str | None = None
    action: str | None = None
    sessionId: str | None = None
    runId: str | None = None
    traceId: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = None


class AuditReplayParams(Params):
    """``audit.replay``."""

    runId: str = _ID


class MetricsSummaryParams(Params):
    """``metrics.summary``."""

    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    bucket: int | None = Field(default=None, ge=60, le=31 * 86_400)
    """Seconds per bucket: with it the answer adds ``series`` and ``byTool`` (``from`` needed)."""


class MemoryGetParams(Params):
    """``memory.get``."""

    path: str = Field(min_length=1, max_length=100)


class MemoryAppendDailyParams(SideEffectParams):
    """``memory.appendDaily``."""

    text: str = Field(min_length=1, max_length=100_000)
    alsoLongTerm: bool = False


class MemoryArchiveParams(SideEffectParams):
    """``memory.archive``."""

    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    clearDaily: bool = False


class SyncStatusParams(Params):
    """``sync.status``."""


class SyncResolveParams(SideEffectParams):
    """``sync.resolve``."""

    sessionId: str = _ID
    resolution: Literal["keep_local", "keep_cloud", "fork"]


class SessionsExportParams(Params):
    """``sessions.export`` (an OpenFoal extension): the session as a Jupyter notebook."""

    sessionId: str = _ID


# -- model settings (the console's model form) -------------------------------------------

#: Providers a saved model setting may name (``demo``: the built-in scripted demo).
ModelProviderName = Literal["openai", "anthropic", "demo"]


class ModelGetParams(Params):
    """``model.get``: the saved model settings (never the key) and the model runs use."""


class ModelUpdateParams(SideEffectParams):
    """``model.update``: save the model settings in the owner's Jupyter config (owner only)."""

    provider: ModelProviderName
    model: str = Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")
    baseUrl: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    #: A new key; absent or ``null`` keeps the saved one.
    apiKey: str | None = Field(default=None, min_length=1, max_length=4000)
    #: Forget the saved key.
    clearKey: bool = False


class ModelTestParams(Params):
    """``model.test``: call the provider once with these settings, the saved ones filling gaps."""

    provider: ModelProviderName | None = None
    model: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\s]+$")
    baseUrl: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    apiKey: str | None = Field(default=None, min_length=1, max_length=4000)


class SyncPauseParams(SideEffectParams):
    """``sync.pause``: stop pushing (local work goes on and queues in the outbox)."""


class SyncResumeParams(SideEffectParams):
    """``sync.resume``: push again."""


class SyncRetryParams(SideEffectParams):
    """``sync.retry``: put dead letters back in the queue (``ids`` omitted: all of them)."""

    ids: list[int] | None = Field(default=None, max_length=10_000)


class SyncDiscardParams(SideEffectParams):
    """``sync.discard``: drop dead letters from the outbox (the local rows stay)."""

    ids: list[int] | None = Field(default=None, max_length=10_000)


class KernelConnection(BaseModel):
    """A Jupyter kernel's connection info (its connection file), on this machine only."""

    model_config = ConfigDict(extra="ignore")

    transport: Literal["tcp", "ipc"] = "tcp"
    ip: str = Field(min_length=1, max_length=200)
    shell_port: int = Field(ge=0, le=65535)
    iopub_port: int = Field(ge=0, le=65535)
    stdin_port: int = Field(ge=0, le=65535)
    control_port: int = Field(ge=0, le=65535)
    hb_port: int = Field(ge=0, le=65535)
    key: str = Field(min_length=1, max_length=500)
    signature_scheme: Literal["hmac-sha256"] = "hmac-sha256"


class KernelsAttachParams(SideEffectParams):
    """``kernels.attach`` (an OpenFoal extension): an OpenFoal kernel started outside this
    server (papermill's or nbclient's own) asks the gateway to listen on it, so its notebook
    turns are the server's sessions and an unattended gated call parks (owner only)."""

    connection: KernelConnection


#: method name -> params model; the single list both the gateway and the schema export use.
METHOD_PARAMS: dict[str, type[Params]] = {
    "connect": ConnectParams,
    "agent.run": AgentRunParams,
    "agent.abort": AgentAbortParams,
    "runtime.setMode": RuntimeSetModeParams,
    "sessions.list": SessionsListParams,
    "sessions.get": SessionsGetParams,
    "sessions.delete": SessionsDeleteParams,
    "policy.get": PolicyGetParams,
    "policy.update": PolicyUpdateParams,
    "policy-gate.list": GateListParams,
    "policy-gate.resolve": GateResolveParams,
    "audit.query": AuditQueryParams,
    "audit.replay": AuditReplayParams,
    "metrics.summary": MetricsSummaryParams,
    "memory.get": MemoryGetParams,
    "memory.appendDaily": MemoryAppendDailyParams,
    "memory.archive": MemoryArchiveParams,
    "sync.status": SyncStatusParams,
    "sync.resolve": SyncResolveParams,
    "sessions.export": SessionsExportParams,
    "model.get": ModelGetParams,
    "model.update": ModelUpdateParams,
    "model.test": ModelTestParams,
    "sync.pause": SyncPauseParams,
    "sync.resume": SyncResumeParams,
    "sync.retry": SyncRetryParams,
    "sync.discard": SyncDiscardParams,
    "kernels.attach": KernelsAttachParams,
}


def is_side_effect(method: str) -> bool:
    """True when the method needs ``params.idempotencyKey``."""
    model = METHOD_PARAMS.get(method)
    return model is not None and issubclass(model, SideEffectParams)
