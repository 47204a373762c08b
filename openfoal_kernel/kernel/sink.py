"""Sends a run's events to the gateway on iopub (and, for notebook turns, renders them)."""

from __future__ import annotations

from typing import Any

from ..protocol import events as ev
from ..protocol.kernel_wire import KERNEL_EVENT_MSG_TYPE, RunSpec
from ..protocol.transcript import ChatMessage


class IopubSink:
    """An :class:`~openfoal_kernel.agent.loop.EventSink` that publishes ``openfoal_event``s.

    ``render`` is set for notebook turns: the answer then also appears as the cell's output
    (``stream`` text and ``display_data``), since a notebook front end ignores our events.
    """

    def __init__(self, kernel: Any, spec: RunSpec, parent: dict[str, Any], *, render: bool) -> None:
        self.kernel = kernel
        self.spec = spec
        self.parent = parent
        self.render = render
        self.failed: dict[str, Any] | None = None
        self._base = {"runId": spec.runId, "sessionId": spec.sessionId, "traceId": spec.traceId}

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        k = self.kernel
        k.session.send(k.iopub_socket, msg_type, content, parent=self.parent,
                       ident=k._topic(msg_type))

    def event(self, name: str, payload: dict[str, Any]) -> None:
        """Publish a protocol event."""
        self._send(KERNEL_EVENT_MSG_TYPE, {"kind": "event", **self._base, "event": name,
                                           "payload": payload})
        if name == ev.AGENT_FAILED:
            self.failed = payload.get("error")
        if self.render:
            self._render(name, payload)

    def message(self, message: ChatMessage) -> None:
        """Publish a transcript entry (stored by the gateway, not announced)."""
        self._send(KERNEL_EVENT_MSG_TYPE, {"kind": "message", **self._base,
                                           "message": message.model_dump(exclude_none=True)})

    def _stream(self, name: str, text: str) -> None:
        self._send("stream", {"name": name, "text": text})

    def _render(self, name: str, payload: dict[str, Any]) -> None:
        if name == ev.AGENT_DELTA:
            self._stream("stdout", payload["delta"])
        elif name == ev.AGENT_TOOL_CALL:
            from ..agent.loop import args_preview

            self._stream("stdout", f"\n\n> tool {payload['toolName']} {args_preview(payload['args'])}\n")
        elif name == ev.AGENT_TOOL_RESULT:
            head = f"> {payload['status']} in {payload['durationMs']:.0f} ms\n"
            out = payload.get("output", "")
            self._stream("stdout", head + (out if out.endswith("\n") or not out else out + "\n"))
            for bundle in payload.get("displays", []):
                self._send("display_data", {"data": bundle.get("data", {}),
                                            "metadata": bundle.get("metadata", {}), "transient": {}})
        elif name == ev.AGENT_COMPLETED:
            self._stream("stdout", "\n")
