"""The kernel's end of the gateway's comm (target ``openfoal.v1``).

The gateway opens the comm once it receives this kernel's iopub; from then on every event of
every turn (the gateway's and the notebook's) goes out as a ``comm_msg`` on it. What comes in
on the comm (a turn to start, a gate decision, the code kernel it asked for) is checked
against its model; a message that does not fit is answered with a ``kind="ended"`` error
instead of being dropped in silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ipykernel.comm import CommManager
from pydantic import ValidationError

from ..protocol import ErrorCode
from ..protocol.kernel_wire import (
    COMM_TARGET,
    CodeKernelAnswer,
    GateAnswer,
    ParkedResult,
    RunRequest,
)

#: Start a gateway turn: (request, the comm_msg that carried it).
RunHandler = Callable[[RunRequest, dict[str, Any]], None]
#: Deliver a gate decision; returns whether a pending gate took it.
GateHandler = Callable[[GateAnswer], bool]
#: Show how a parked cell's run ended (the comm_msg that carried it).
ResultHandler = Callable[[ParkedResult, dict[str, Any]], None]
#: Deliver the session's code kernel the kernel asked for; returns whether a request took it.
CodeKernelHandler = Callable[[CodeKernelAnswer], bool]


class GatewayChannel:
    """Routes the comm's messages and publishes kernel events on it."""

    def __init__(
        self,
        kernel: Any,
        *,
        on_run: RunHandler,
        on_gate: GateHandler,
        on_result: ResultHandler | None = None,
        on_code_kernel: CodeKernelHandler | None = None,
    ) -> None:
        self.kernel = kernel
        self.on_run = on_run
        self.on_gate = on_gate
        self.on_result = on_result
        self.on_code_kernel = on_code_kernel
        self.comm_id: str | None = None
        self.attached = asyncio.Event()
        self.manager = CommManager(kernel=kernel)
        self.manager.register_target(COMM_TARGET, self._opened)
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            kernel.shell_handlers[msg_type] = getattr(self.manager, msg_type)

    def _opened(self, comm: Any, msg: dict[str, Any]) -> None:
        self.comm_id = comm.comm_id
        comm.on_msg(self._received)
        comm.on_close(self._closed)
        self.attached.set()

    def _closed(self, msg: dict[str, Any]) -> None:
        if msg["content"].get("comm_id") == self.comm_id:
            self.comm_id = None
            self.attached.clear()

    def send(self, data: dict[str, Any], parent: dict[str, Any]) -> None:
        """Publish ``data`` on the comm (nothing listens when no gateway opened one)."""
        if self.comm_id is None:
            return
        k = self.kernel
        k.session.send(
            k.iopub_socket,
            "comm_msg",
            {"comm_id": self.comm_id, "data": data},
            parent=parent,
            ident=k._topic("comm_msg"),
        )

    def refuse(self, run_id: str, message: str, parent: dict[str, Any]) -> None:
        """Answer a request the kernel cannot take with a structured error."""
        error = {"code": ErrorCode.INVALID_REQUEST.value, "retryable": False, "message": message}
        self.send({"kind": "ended", "runId": run_id, "status": "error", "error": error}, parent)

    def _received(self, msg: dict[str, Any]) -> None:
        raw = msg["content"].get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        kind = data.get("type")
        try:
            if kind == "run":
                self.on_run(RunRequest.model_validate(data), msg)
            elif kind == "gate_reply":
                self.on_gate(GateAnswer.model_validate(data))
            elif kind == "parked_result" and self.on_result is not None:
                self.on_result(ParkedResult.model_validate(data), msg)
            elif kind == "code_kernel_reply" and self.on_code_kernel is not None:
                self.on_code_kernel(CodeKernelAnswer.model_validate(data))
            else:
                self.refuse("", f"unknown request type {kind!r} on {COMM_TARGET}", msg)
        except ValidationError as exc:
            spec = data.get("spec")
            run_id = spec.get("runId", "") if isinstance(spec, dict) else ""
            self.refuse(str(run_id), f"invalid {kind} request: {exc}", msg)
