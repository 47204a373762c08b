"""Sends a run's events to the gateway on iopub (and, for notebook turns, renders them)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..protocol import events as ev
from ..protocol.kernel_wire import KERNEL_EVENT_MSG_TYPE, RunSpec
from ..protocol.transcript import ChatMessage

#: While deltas stream fast, those of this many seconds leave the kernel as one message.
FLUSH_INTERVAL_S = 0.002


class IopubSink:
    """An :class:`~openfoal_kernel.agent.loop.EventSink` that publishes ``openfoal_event``s.

    ``render`` is set for notebook turns: the answer then also appears as the cell's output
    (``stream`` text and ``display_data``), since a notebook front end ignores our events.

    Deltas are coalesced into one message carrying several (:attr:`KernelEvent.deltas`); the
    gateway still announces one ``agent.delta`` per model delta. A delta after a quiet spell
    leaves as soon as the loop would otherwise idle; while they stream fast, the deltas of
    each :data:`FLUSH_INTERVAL_S` leave together, so a burst costs a few signed Jupyter
    messages per interval instead of one per delta, for at most that much added latency.
    Any other event or transcript entry first sends the deltas before it, keeping the order.
    """

    def __init__(self, kernel: Any, spec: RunSpec, parent: dict[str, Any], *, render: bool) -> None:
        self.kernel = kernel
        self.spec = spec
        self.parent = parent
        self.render = render
        self.failed: dict[str, Any] | None = None
        self._base = {"runId": spec.runId, "sessionId": spec.sessionId, "traceId": spec.traceId}
        self._deltas: list[str] = []
        self._flush_at: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last_flush = 0.0

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        k = self.kernel
        k.session.send(
            k.iopub_socket, msg_type, content, parent=self.parent, ident=k._topic(msg_type)
        )

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
        self._send(
            KERNEL_EVENT_MSG_TYPE,
            {"kind": "event", **self._base, "event": name, "payload": payload},
        )
        if name == ev.AGENT_FAILED:
            self.failed = payload.get("error")
        if self.render:
            self._render(name, payload)

    def flush(self) -> None:
        """Send the deltas not sent yet, as one message."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self._deltas:
            return
        self._last_flush = asyncio.get_running_loop().time()
        deltas, self._deltas = self._deltas, []
        content: dict[str, Any] = {"kind": "event", **self._base, "event": ev.AGENT_DELTA}
        if len(deltas) == 1:
            content["payload"] = {"delta": deltas[0]}
        else:
            content["payload"] = {}
            content["deltas"] = deltas
        self._send(KERNEL_EVENT_MSG_TYPE, content)
        if self.render:
            self._stream("stdout", "".join(deltas))

    def message(self, message: ChatMessage) -> None:
        """Publish a transcript entry (stored by the gateway, not announced)."""
        self.flush()
        self._send(
            KERNEL_EVENT_MSG_TYPE,
            {"kind": "message", **self._base, "message": message.model_dump(exclude_none=True)},
        )

    def _stream(self, name: str, text: str) -> None:
        self._send("stream", {"name": name, "text": text})

    def _render(self, name: str, payload: dict[str, Any]) -> None:
        if name == ev.AGENT_DELTA:
            self._stream("stdout", payload["delta"])  # a delta with more fields, sent alone
        elif name == ev.AGENT_TOOL_CALL:
            from ..agent.loop import args_preview

            self._stream(
                "stdout", f"\n\n> tool {payload['toolName']} {args_preview(payload['args'])}\n"
            )
        elif name == ev.AGENT_TOOL_RESULT:
            head = f"> {payload['status']} in {payload['durationMs']:.0f} ms\n"
            out = payload.get("output", "")
            self._stream("stdout", head + (out if out.endswith("\n") or not out else out + "\n"))
            for bundle in payload.get("displays", []):
                self._send(
                    "display_data",
                    {
                        "data": bundle.get("data", {}),
                        "metadata": bundle.get("metadata", {}),
                        "transient": {},
                    },
                )
        elif name == ev.AGENT_COMPLETED:
            self._stream("stdout", "\n")
