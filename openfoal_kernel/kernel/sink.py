"""Sends a run's events to the gateway's comm (and, for notebook turns, to the cell's view)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..protocol import events as ev
from ..protocol.kernel_wire import RunSpec
from ..protocol.transcript import ChatMessage
from .channel import GatewayChannel
from .view import NotebookView

#: While deltas stream fast, those of this many seconds leave the kernel as one message.
FLUSH_INTERVAL_S = 0.002


class CommSink:
    """An :class:`~openfoal_kernel.agent.loop.EventSink` publishing on the gateway's comm.

    ``view`` is set for notebook turns: the cell then shows the run (see :mod:`.view`), since
    a notebook front end does not listen on the gateway's comm.

    Deltas are coalesced into one message carrying several (:attr:`KernelEvent.deltas`); the
    gateway still announces one ``agent.delta`` per model delta. A delta after a quiet spell
    leaves as soon as the loop would otherwise idle; while they stream fast, the deltas of
    each :data:`FLUSH_INTERVAL_S` leave together, so a burst costs a few signed Jupyter
    messages per interval instead of one per delta, for at most that much added latency.
    Any other event or transcript entry first sends the deltas before it, keeping the order.
    """

    def __init__(
        self,
        channel: GatewayChannel,
        spec: RunSpec,
        parent: dict[str, Any],
        *,
        view: NotebookView | None = None,
    ) -> None:
        self.channel = channel
        self.spec = spec
        self.parent = parent
        self.view = view
        self._base = {"runId": spec.runId, "sessionId": spec.sessionId, "traceId": spec.traceId}
        self._deltas: list[str] = []
        self._flush_at: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last_flush = 0.0

    def _send(self, data: dict[str, Any]) -> None:
        self.channel.send(data, self.parent)

    def event(self, name: str, payload: dict[str, Any]) -> None:
        """Publish a protocol event (deltas: coalesced, see the class)."""
        if name == ev.AGENT_DELTA and payload.keys() == {"delta"}:
            self._deltas.append(payload["delta"])
            if self._flush_at is None:
                loop = asyncio.get_running_loop()
                wait = self._last_flush + FLUSH_INTERVAL_S - loop.time()
                self._flush_at = (
                    loop.call_later(wait, self.flush) if wait > 0 else loop.call_soon(self.flush)
                )
            return
        self.flush()
        self._send({"kind": "event", **self._base, "event": name, "payload": payload})
        if self.view is not None:
            self.view.event(name, payload)

    def flush(self) -> None:
        """Send the deltas not sent yet, as one message."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self._deltas:
            return
        self._last_flush = asyncio.get_running_loop().time()
        deltas, self._deltas = self._deltas, []
        data: dict[str, Any] = {"kind": "event", **self._base, "event": ev.AGENT_DELTA}
        if len(deltas) == 1:
            data["payload"] = {"delta": deltas[0]}
        else:
            data["payload"] = {}
            data["deltas"] = deltas
        self._send(data)
        if self.view is not None:
            self.view.text("".join(deltas))

    def message(self, message: ChatMessage) -> None:
        """Publish a transcript entry (stored by the gateway, not announced)."""
        self.flush()
        self._send(
            {"kind": "message", **self._base, "message": message.model_dump(exclude_none=True)}
        )

    def ended(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Tell the gateway the kernel is done with this run (after its terminal event)."""
        self.flush()
        data: dict[str, Any] = {"kind": "ended", **self._base, "status": status}
        if error is not None:
            data["error"] = error
        self._send(data)
