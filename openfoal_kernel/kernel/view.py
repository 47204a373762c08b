"""A notebook cell's view of its turn: one ``display_data`` updated in place by ``runId``.

The bundle carries :data:`RUN_MIME` (a :class:`RunView`, drawn by the lab extension's renderer)
and a ``text/markdown`` fallback that any other front end (nbclient, nbconvert, VS Code) shows.
A tool's output goes to the cell as ``stream`` text (stdout, or stderr when the call failed),
its displays as their own ``display_data``; the answer ends as the cell's ``execute_result``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..agent.loop import args_preview
from ..protocol import events as ev
from ..protocol.kernel_wire import RUN_MIME, RunSpec, RunView

#: Send one iopub message: (msg_type, content).
Send = Callable[[str, dict[str, Any]], None]

#: While an answer streams, the view is redrawn at most this often (the end: at once).
UPDATE_INTERVAL_S = 0.05

_END_STATUS = {ev.AGENT_COMPLETED: "completed", ev.AGENT_FAILED: "failed"}


def markdown(view: RunView) -> str:
    """The plain fallback of a view: status, tool calls, gates, the answer so far."""
    lines = [f"**OpenFoal** · {view.status.replace('_', ' ')}"]
    for tool in view.tools:
        done = f" — {tool['status']}" if tool.get("status") else ""
        lines.append(f"- `{tool['toolName']}` {tool['argsPreview']}{done}")
    for gate in view.gates:
        lines.append(f"- approval for `{gate['toolName']}` ({gate['risk']}): {gate['status']}")
    if view.error:
        lines.append(f"\n{view.error.get('code')}: {view.error.get('message')}")
    if view.text:
        lines.append("\n" + view.text)
    return "\n".join(lines)


class NotebookView:
    """Keeps a :class:`RunView` in step with the run's events and redraws the cell's display."""

    def __init__(self, spec: RunSpec, send: Send) -> None:
        self.send = send
        self.view = RunView(runId=spec.runId, sessionId=spec.sessionId, status="running")
        self.answer = ""
        self._shown = False
        self._redraw: asyncio.TimerHandle | None = None

    def _bundle(self) -> dict[str, Any]:
        return {
            "data": {
                RUN_MIME: self.view.model_dump(mode="json"),
                "text/markdown": markdown(self.view),
            },
            "metadata": {},
            "transient": {"display_id": self.view.runId},
        }

    def draw(self) -> None:
        """Send the view now: the first time as display_data, then as its update."""
        if self._redraw is not None:
            self._redraw.cancel()
            self._redraw = None
        self.send("update_display_data" if self._shown else "display_data", self._bundle())
        self._shown = True

    def _soon(self) -> None:
        if self._redraw is None:
            self._redraw = asyncio.get_running_loop().call_later(UPDATE_INTERVAL_S, self.draw)

    def text(self, delta: str) -> None:
        """More of the answer."""
        self.view.text += delta
        self._soon()

    def event(self, name: str, payload: dict[str, Any]) -> None:
        """Fold one protocol event into the view."""
        if name == ev.AGENT_DELTA:
            self.text(payload.get("delta", ""))
        elif name == ev.AGENT_TOOL_CALL:
            self.view.tools.append(
                {
                    "toolCallId": payload["toolCallId"],
                    "toolName": payload["toolName"],
                    "argsPreview": args_preview(payload["args"]),
                    "status": "",
                }
            )
            self.draw()
        elif name == ev.AGENT_TOOL_RESULT:
            self._tool_result(payload)
        elif name in (ev.GATE_REQUESTED, ev.GATE_RESOLVED):
            self._gate(payload["gate"], requested=name == ev.GATE_REQUESTED)
        elif name in _END_STATUS:
            self._end(name, payload)

    def _tool_result(self, payload: dict[str, Any]) -> None:
        for tool in self.view.tools:
            if tool["toolCallId"] == payload["toolCallId"]:
                tool.update(status=payload["status"], durationMs=payload["durationMs"])
        self.draw()
        out = payload.get("output", "")
        if out:
            name = "stdout" if payload["status"] == "success" else "stderr"
            self.send("stream", {"name": name, "text": out if out.endswith("\n") else out + "\n"})
        for bundle in payload.get("displays", []):
            self.send(
                "display_data",
                {
                    "data": bundle.get("data", {}),
                    "metadata": bundle.get("metadata", {}),
                    "transient": {},
                },
            )

    def _gate(self, gate: dict[str, Any], *, requested: bool) -> None:
        entry = {
            "gateId": gate["gateId"],
            "toolName": gate["toolName"],
            "risk": gate["risk"],
            "status": gate["status"],
        }
        self.view.gates = [g for g in self.view.gates if g["gateId"] != gate["gateId"]] + [entry]
        self.view.status = "awaiting_approval" if requested else "running"
        self.draw()

    def _end(self, name: str, payload: dict[str, Any]) -> None:
        error = payload.get("error") or {}
        status = "aborted" if payload.get("aborted") else _END_STATUS[name]
        self.view.status = status  # type: ignore[assignment]
        self.view.error = error or None
        if name == ev.AGENT_COMPLETED:
            # the answer becomes the cell's result; the view keeps the run's steps
            self.answer, self.view.text = self.view.text, ""
        self.draw()
