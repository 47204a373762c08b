"""What crosses the gateway <-> agent kernel boundary, on the Jupyter spec's own mechanisms.

When it attaches, the gateway opens a comm with target :data:`COMM_TARGET`. On that comm it
sends a :class:`RunRequest` (a gateway turn: ``comm_msg`` on shell, cheaper than an
``execute_request``) and :class:`GateAnswer` decisions. The kernel answers with ``comm_msg``
on iopub whose ``data`` is a :class:`KernelEvent`: protocol events (which the gateway numbers,
persists and fans out), transcript entries (which it stores only) and each run's end. A
notebook cell stays an ``execute_request``; its view is ``display_data`` of :data:`RUN_MIME`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from .transcript import ChatMessage
from .types import Policy, RuntimeMode

#: Target name of the comm the gateway opens on each OpenFoal kernel it attaches to.
COMM_TARGET: Final = "openfoal.v1"
#: Vendor MIME type of a notebook cell's view of its turn (a :class:`RunView`).
RUN_MIME: Final = "application/vnd.openfoal.run+json"


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
    #: True when the session has no code kernel yet: the kernel asks the gateway for one
    #: (a ``code_kernel`` event, answered by a :class:`CodeKernelAnswer`) at its first
    #: python.exec, so a session that never runs Python never pays for a code kernel.
    codeKernelOnRequest: bool = False
    #: The session's sandbox handle (cloud mode), as the sandbox manager serialised it.
    sandbox: dict[str, Any] | None = None
    #: Prompt context from memory files, resolved by the gateway for the main session.
    memory: str = ""
    #: Folder of the session owner's memory files (default: the workspace).
    memoryRoot: str | None = None
    #: True for a continuation: the transcript ends with tool calls still to run (a gate
    #: was resolved after its kernel was lost); there is no new user input.
    resume: bool = False
    #: "turn" (answer the input) or "compact" (summarise older context into a compaction entry).
    task: Literal["turn", "compact"] = "turn"
    #: The decision on the gated call of a continuation: {toolCallId, outcome}.
    gateDecision: dict[str, str] | None = None


class RunRequest(BaseModel):
    """Gateway -> kernel (comm ``data``): start a gateway turn."""

    type: Literal["run"] = "run"
    spec: RunSpec
    #: The user's input (empty for a continuation or a compaction).
    code: str = ""


class GateAnswer(BaseModel):
    """Gateway -> kernel (comm ``data``): the decision on a pending gate."""

    type: Literal["gate_reply"] = "gate_reply"
    gateId: str
    decision: Literal["approve", "reject"]
    resolvedBy: str = "console"


class CodeKernelAnswer(BaseModel):
    """Gateway -> kernel (comm ``data``): the session's code kernel, started on request.

    Answers a ``kind="code_kernel"`` :class:`KernelEvent` (``payload.requestId``): the
    kernel's connection info, or an ``error`` message when none could be started."""

    type: Literal["code_kernel_reply"] = "code_kernel_reply"
    requestId: str
    connection: dict[str, Any] | None = None
    error: str | None = None


class ParkedResult(BaseModel):
    """Gateway -> notebook kernel (comm ``data``): how the run a cell parked on ended.

    Sent when the run that continued after the gate's decision has ended; the kernel
    updates the parked cell's display (``display_id`` :func:`parked_display_id`)."""

    type: Literal["parked_result"] = "parked_result"
    gateId: str
    #: ``approved`` or ``rejected``: the decision the run continued with
    decision: str
    #: the continued run's terminal status: ``completed``, ``failed`` or ``aborted``
    status: str
    runId: str
    sessionId: str
    #: the continued call's tool output (cut), empty when there is none
    toolOutput: str = ""
    #: the model's final reply, or the error message of a failed run
    text: str = ""


def parked_display_id(gate_id: str) -> str:
    """The ``display_id`` of a parked cell's output: its update lands there."""
    return f"openfoal-gate-{gate_id}"


class KernelEvent(BaseModel):
    """One message from kernel to gateway (comm ``data``).

    ``kind="event"``: a protocol event (``event`` + ``payload``); the gateway adds ``seq``.
    ``kind="message"``: a transcript entry (``message``) to store, not to announce.
    ``kind="ended"``: the kernel is done with the run (``status``: ok, error or abort), sent
    after its terminal event; for a request the kernel refused, ``error`` says why.
    ``kind="code_kernel"``: the run's first python.exec needs the session's code kernel
    (``payload.requestId``); the gateway answers with a :class:`CodeKernelAnswer`.
    ``deltas``: with ``event="agent.delta"``, several deltas of a burst in one message, in
    order; each is announced as its own ``agent.delta`` with payload ``{"delta": text}``.
    """

    model_config = ConfigDict(extra="allow")

    kind: Literal["event", "message", "ended", "code_kernel"]
    runId: str
    sessionId: str = ""
    traceId: str = ""
    event: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    message: ChatMessage | None = None
    deltas: list[str] | None = None
    status: Literal["ok", "error", "abort"] | None = None
    error: dict[str, Any] | None = None


class RunView(BaseModel):
    """A notebook cell's view of its turn (the :data:`RUN_MIME` bundle, updated by runId)."""

    runId: str
    sessionId: str
    status: Literal["running", "awaiting_approval", "completed", "failed", "aborted"]
    #: The answer streamed so far; at the end it moves to the cell's ``execute_result``.
    text: str = ""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    gates: list[dict[str, Any]] = Field(default_factory=list)
    error: dict[str, Any] | None = None
