"""The session's code kernel, asked of the gateway at a turn's first python.exec.

A gateway turn whose session has no code kernel yet carries ``codeKernelOnRequest``: the
kernel sends a ``code_kernel`` event on the comm when Python first runs, and the gateway
starts (or takes from its pool) the session's code kernel and answers with its connection
info (:class:`~openfoal_kernel.protocol.kernel_wire.CodeKernelAnswer`). A session that never
runs Python never starts one.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from ..protocol import ErrorCode, OpenFoalError
from ..protocol.kernel_wire import CodeKernelAnswer
from .channel import GatewayChannel

#: How long python.exec waits for the gateway to start the session's code kernel.
ANSWER_TIMEOUT_S = 120.0


class CodeKernelRequests:
    """The kernel's open requests for a code kernel, by request id."""

    def __init__(self, channel: GatewayChannel) -> None:
        self.channel = channel
        self.pending: dict[str, asyncio.Future[CodeKernelAnswer]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    async def ask(self, *, session_id: str, run_id: str, parent: dict[str, Any]) -> dict[str, Any]:
        """The connection info of the session's code kernel, as the gateway started it."""
        if not self.channel.attached.is_set():
            raise OpenFoalError(
                ErrorCode.TOOL_EXEC_FAILED,
                "no gateway is attached to start the session's code kernel",
                retryable=True,
            )
        self.loop = asyncio.get_running_loop()
        request_id = uuid.uuid4().hex
        future: asyncio.Future[CodeKernelAnswer] = self.loop.create_future()
        self.pending[request_id] = future
        data = {
            "kind": "code_kernel",
            "runId": run_id,
            "sessionId": session_id,
            "payload": {"requestId": request_id},
        }
        try:
            self.channel.send(data, parent)
            answer = await asyncio.wait_for(future, ANSWER_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise OpenFoalError(
                ErrorCode.TOOL_EXEC_FAILED,
                f"the gateway started no code kernel within {ANSWER_TIMEOUT_S:g} s",
                retryable=True,
            ) from None
        finally:
            self.pending.pop(request_id, None)
        if answer.connection is None:
            message = answer.error or "the gateway could not start a code kernel"
            raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, message, retryable=True)
        return answer.connection

    def answer(self, answer: CodeKernelAnswer) -> bool:
        """Deliver the gateway's answer; ``False`` when no such request is open."""
        if self.loop is None or answer.requestId not in self.pending:
            return False
        self.loop.call_soon_threadsafe(self._resolve, answer)
        return True

    def _resolve(self, answer: CodeKernelAnswer) -> None:
        future = self.pending.get(answer.requestId)
        if future is not None and not future.done():
            future.set_result(answer)
