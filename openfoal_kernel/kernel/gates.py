"""Gated tool calls inside the kernel: wait for a human decision.

A notebook user answers inline on the stdin channel (an ``input_request``); the gateway
answers with a ``gate_reply`` on its comm (the console's decision, or the one a notebook user
gave elsewhere). The first answer wins; no answer
within the policy's ``gateTimeoutSec`` expires the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from typing import Any

import zmq

from ..agent.loop import EventSink, GateOutcome
from ..protocol import GateItem, utcnow
from ..protocol import events as ev
from ..protocol.kernel_wire import GateAnswer, RunSpec
from ..protocol.transcript import ToolCall
from .park import GateParked

_APPROVE = {"y", "yes", "approve", "approved", "ok"}
_REJECT = {"n", "no", "reject", "rejected", "deny"}


def args_fingerprint(tool_name: str, args: dict[str, Any]) -> str:
    """A stable fingerprint of a call (tool + canonical arguments)."""
    text = json.dumps({"tool": tool_name, "args": args}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class GateKeeper:
    """The kernel's pending gates."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.pending: dict[str, asyncio.Future[tuple[str, str]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def answer(self, answer: GateAnswer) -> bool:
        """Deliver the gateway's decision; ``False`` when no such gate is pending."""
        if self.loop is None or answer.gateId not in self.pending:
            return False
        self.loop.call_soon_threadsafe(
            self._resolve, answer.gateId, answer.decision, answer.resolvedBy
        )
        return True

    def _resolve(self, gate_id: str, decision: str, by: str) -> None:
        fut = self.pending.get(gate_id)
        if fut is not None and not fut.done():
            fut.set_result((decision, by))

    async def ask(
        self,
        *,
        spec: RunSpec,
        sink: EventSink,
        call: ToolCall,
        reason: str,
        stdin: tuple[Any, dict[str, Any]] | None,
        park_after: float | None = None,
    ) -> GateOutcome:
        """Raise the gate, wait for the first decision or the timeout, report the result.

        With ``park_after`` (an unattended cell, see :mod:`.park`) and no stdin, a gate still
        undecided after that many seconds parks: it stays pending and :class:`GateParked`
        ends the turn."""
        self.loop = asyncio.get_running_loop()
        gate_id = f"gate_{uuid.uuid4().hex[:20]}"
        gate = GateItem(
            gateId=gate_id,
            sessionId=spec.sessionId,
            runId=spec.runId,
            toolCallId=call.id,
            toolName=call.name,
            args=call.arguments,
            argsFingerprint=args_fingerprint(call.name, call.arguments),
            risk=reason,
            requestedBy="",
        )
        fut: asyncio.Future[tuple[str, str]] = self.loop.create_future()
        self.pending[gate_id] = fut
        sink.event(ev.GATE_REQUESTED, {"gate": gate.wire()})
        asker = asyncio.ensure_future(self._ask_stdin(gate_id, gate, stdin)) if stdin else None
        parks = stdin is None and park_after is not None and park_after >= 0
        timeout: float = spec.policy.gateTimeoutSec
        if parks:
            assert park_after is not None
            timeout = min(timeout, park_after)
        try:
            decision, by = await asyncio.wait_for(asyncio.shield(fut), timeout)
            status = "approved" if decision == "approve" else "rejected"
        except asyncio.TimeoutError:
            if parks:
                self.pending.pop(gate_id, None)
                raise GateParked(gate.wire()) from None
            decision, by, status = "", "", "expired"
        finally:
            self.pending.pop(gate_id, None)
            if asker is not None:
                asker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asker
        update: dict[str, Any] = {"status": status, "resolvedAt": utcnow()}
        if decision:
            update.update(decision=decision, resolvedBy=by)
        sink.event(ev.GATE_RESOLVED, {"gate": gate.model_copy(update=update).wire()})
        return status  # type: ignore[return-value]

    async def _ask_stdin(
        self, gate_id: str, gate: GateItem, stdin: tuple[Any, dict[str, Any]]
    ) -> None:
        """Ask a notebook user inline; keep asking until a clear yes or no."""
        ident, parent = stdin
        k = self.kernel
        prompt = (
            f"OpenFoal wants to run {gate.toolName} {json.dumps(gate.args)[:300]} "
            f"({gate.risk}). Approve? [y/n] "
        )
        while gate_id in self.pending:
            k.session.send(
                k.stdin_socket,
                "input_request",
                {"prompt": prompt, "password": False},
                parent,
                ident=ident,
            )
            value = await self._read_reply()
            answer = value.strip().lower()
            if answer in _APPROVE:
                self._resolve(gate_id, "approve", "notebook")
                return
            if answer in _REJECT:
                self._resolve(gate_id, "reject", "notebook")
                return
            prompt = "Please answer y (approve) or n (reject): "

    async def _read_reply(self) -> str:
        sock = self.kernel.stdin_socket
        while True:
            try:
                _ident, reply = self.kernel.session.recv(sock, mode=zmq.NOBLOCK)
            except zmq.ZMQError:
                reply = None
            if reply is not None:
                return str((reply.get("content") or {}).get("value", ""))
            await asyncio.sleep(0.02)
