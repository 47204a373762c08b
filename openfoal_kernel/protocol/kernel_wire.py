"""What crosses the gateway <-> agent kernel boundary on the Jupyter channels.

The gateway sends a run as an ``execute_request`` whose ``code`` is the user's input and whose
message ``metadata["openfoal"]`` is a :class:`RunSpec`. The kernel answers on iopub with
``openfoal_event`` messages whose content is a :class:`KernelEvent`: protocol events (which the
gateway numbers, persists and fans out) and transcript entries (which it stores only).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from .transcript import ChatMessage
from .types import Policy, RuntimeMode

#: iopub message type of kernel events.
KERNEL_EVENT_MSG_TYPE: Final = "openfoal_event"
#: Key of the run spec inside the execute_request metadata.
RUN_METADATA_KEY: Final = "openfoal"
#: Control message from the gateway to a notebook's OpenFoal kernel. ``{"synced": false}``
#: probes iopub (its busy/idle status comes back there); ``{"synced": true}`` then says the
#: gateway receives iopub, so the kernel's notebook turns are seen (and stored) whole.
GATEWAY_ATTACH_MSG_TYPE: Final = "openfoal_gateway_attach"


class ModelSettings(BaseModel):
    """Model configuration resolved by the gateway (or read from the environment)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    fallback: list[str] = Field(default_factory=list)
    openaiApiKey: str | None = None
    openaiBaseUrl: str | None = None
    anthropicApiKey: str | None = None
    anthropicBaseUrl: str | None = None
    timeoutSec: float = 60.0
    maxRetries: int = 2
    backoffCapSec: float = 8.0
    maxOutputTokens: int | None = None
    tokenBudget: int | None = None


class RunSpec(BaseModel):
    """Everything a kernel needs to run one turn; the kernel keeps no durable state."""

    model_config = ConfigDict(extra="allow")

    runId: str
    sessionId: str
    traceId: str
    runtimeMode: RuntimeMode = "local"
    policy: Policy = Field(default_factory=Policy)
    model: ModelSettings = Field(default_factory=ModelSettings)
    transcript: list[ChatMessage] = Field(default_factory=list)
    workspace: str | None = None
    #: Connection info of the session's code kernel (started by the gateway), for python.exec.
    codeKernel: dict[str, Any] | None = None
    #: The session's sandbox handle (cloud mode), as the sandbox manager serialised it.
    sandbox: dict[str, Any] | None = None
    #: Prompt context from memory files, resolved by the gateway for the main session.
    memory: str = ""
    #: True for a continuation: the transcript ends with tool calls still to run (a gate
    #: was resolved after its kernel was lost); there is no new user input.
    resume: bool = False
    #: "turn" (answer the input) or "compact" (summarise older context into a compaction entry).
    task: Literal["turn", "compact"] = "turn"
    #: The decision on the gated call of a continuation: {toolCallId, outcome}.
    gateDecision: dict[str, str] | None = None


class KernelEvent(BaseModel):
    """One message from kernel to gateway.

    ``kind="event"``: a protocol event (``event`` + ``payload``); the gateway adds ``seq``.
    ``kind="message"``: a transcript entry (``message``) to store, not to announce.
    ``deltas``: with ``event="agent.delta"``, several deltas of a burst in one message, in
    order; each is announced as its own ``agent.delta`` with payload ``{"delta": text}``.
    """

    model_config = ConfigDict(extra="allow")

    kind: Literal["event", "message"]
    runId: str
    sessionId: str
    traceId: str
    event: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    message: ChatMessage | None = None
    deltas: list[str] | None = None
