"""The panel survives a server restart: it reconnects, resumes after its last seq, and shows
nothing twice and nothing lost."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, WebSocketRoute, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep

pytestmark = pytest.mark.browser


def stored_answer(lab: LabServer, session_id: str, run_id: str) -> str:
    """The run's answer as the store has it: its agent.delta events joined in seq order."""
    events = lab.api("sessions.get", {"sessionId": session_id, "afterSeq": 0})["events"]
    deltas = [e for e in events if e["event"] == "agent.delta" and e["payload"]["runId"] == run_id]
    return "".join(e["payload"]["delta"] for e in sorted(deltas, key=lambda e: e["seq"]))


def test_reconnects_after_a_server_restart(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """After a restart the panel reconnects by itself and goes on in the same session."""
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    chat.send("before restart")
    expect(chat.entries("assistant").last).to_contain_text("echo: before restart")
    chat.wait_idle()

    dot = chat.root.locator(".jp-OpenFoal-connection")
    lab.stop()
    expect(dot).to_have_attribute("data-state", "reconnecting", timeout=30_000)
    lab.start()
    expect(dot).to_have_attribute("data-state", "open", timeout=60_000)

    chat.send("after restart")
    expect(chat.entries("assistant").last).to_contain_text("echo: after restart")
    chat.wait_idle()
    expect(chat.entries("user")).to_have_text(["before restart", "after restart"])
    expect(chat.entries("assistant")).to_have_count(2)
    assert lab.api("sessions.list", {})["items"][0]["preview"]


def test_resumes_a_run_streamed_across_a_reconnect(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """Deltas missed while away come back from sessions.get afterSeq, each exactly once."""
    accepted: list[dict[str, str]] = []
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    sent: list[tuple[int, dict[str, Any]]] = []

    def route(ws: WebSocketRoute) -> None:
        # Pass frames through, noting run acceptances; keep both ends to cut them later.
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "res" and (frame.get("payload") or {}).get("runId"):
                accepted.append(frame["payload"])
            ws.send(message)

        def to_server(message: str | bytes) -> None:
            sent.append((len(sockets), json.loads(message)))
            server.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)
        sockets.append((ws, server))

    page.route_web_socket(re.compile(r".*/openfoal/ws.*"), route)
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    chat.new_session()
    words = " ".join(f"w{i}" for i in range(120))
    model.enqueue(Reply.of(TextStep(text=words, chunk_size=6, chunk_delay_s=0.05)))
    chat.send("count slowly")
    assistant = chat.entries("assistant").last
    expect(assistant).to_contain_text("w5", timeout=30_000)
    # A network blip: both ends of the socket drop while the run goes on streaming.
    page_end, server_end = sockets[-1]
    page_end.close()
    server_end.close()
    dot = chat.root.locator(".jp-OpenFoal-connection")
    expect(dot).to_have_attribute("data-state", "open", timeout=30_000)
    assert len(sockets) == 2, "the panel did not reconnect"
    chat.wait_idle(timeout=60_000)
    expect(assistant).to_contain_text("w119")
    run = next(r for r in accepted if r.get("status") == "accepted")
    shown = assistant.inner_text().strip()
    resumes = [
        f["params"]
        for n, f in sent
        if n == 2 and f.get("method") == "sessions.get" and f["params"].get("afterSeq")
    ]
    assert resumes and resumes[0]["sessionId"] == run["sessionId"], sent
    assert shown == stored_answer(lab, run["sessionId"], run["runId"]).strip() == words
