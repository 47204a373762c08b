"""A gated file.write shows its diff; the Approvals panel filters, links into the session, and
answers a double decision, an unknown gate and a lost server clearly."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Locator, Page, WebSocketRoute, expect
from test_approvals import APPROVALS, gate_card, use_theme

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


class Wire:
    """The page's gateway socket, passed through to the real server; a test can hold back
    ``policy-gate.resolved`` events, send a decision for a gate the server does not know, or
    cut the connection as a server that went away would."""

    def __init__(self, page: Page) -> None:
        self.hold_resolved = False
        self.unknown_gate = False
        self.down = False
        self.sockets: list[WebSocketRoute] = []
        page.route_web_socket(re.compile(r".*/openfoal/ws.*"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if self.down:
            ws.close(code=1011, reason="server gone")
            return
        server = ws.connect_to_server()
        self.sockets.append(ws)

        def to_page(message: str | bytes) -> None:
            if self.hold_resolved and "policy-gate.resolved" in str(message):
                return
            ws.send(message)

        def to_server(message: str | bytes) -> None:
            if self.unknown_gate and "policy-gate.resolve" in str(message):
                frame = json.loads(message)
                frame["params"]["gateId"] = "gate_that_never_was"
                message = json.dumps(frame)
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)

    def cut(self) -> None:
        """Close every open socket and refuse new ones."""
        self.down = True
        for ws in self.sockets:
            ws.close(code=1011, reason="server gone")
        self.sockets.clear()


def _gate_file_writes(lab: LabServer) -> None:
    lab.api(
        "policy.update",
        {"patch": {"tools": {"file.write": "gate"}}, "idempotencyKey": uuid.uuid4().hex},
    )


def _write_call(model: ScriptedModelServer, path: str, content: str) -> None:
    model.enqueue(
        Reply.of(ToolCallStep(name="file.write", arguments={"path": path, "content": content})),
        Reply.of(TextStep(text="Written.")),
    )


def _item(panel: Locator, text: str) -> Locator:
    return panel.locator(".jp-OpenFoal-approvalsItem", has_text=text)


def test_file_write_card_shows_the_diff_and_approvals_filter(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """The card shows -beta +gamma; filters by tool and session narrow the list; the link
    opens the chat on that session."""
    (lab.root / "notes.txt").write_text("alpha\nbeta\n")
    _gate_file_writes(lab)
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    _write_call(model, "notes.txt", "alpha\ngamma\n")
    chat.send("edit the notes")
    card = gate_card(chat)
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    diff = card.get_by_role("region", name="Diff of notes.txt")
    expect(diff.locator(".jp-OpenFoal-diffFile")).to_have_text(
        ["--- a/notes.txt", "+++ b/notes.txt"]
    )
    expect(diff.locator(".jp-OpenFoal-diffDel")).to_have_text(["-beta"])
    expect(diff.locator(".jp-OpenFoal-diffAdd")).to_have_text(["+gamma"])
    expect(card.locator(".jp-OpenFoal-gateDiffTitle")).to_have_text("Changes to notes.txt · +1 -1")
    SCREENSHOTS.mkdir(exist_ok=True)
    card.screenshot(path=str(SCREENSHOTS / "gate-diff-light.png"))
    use_theme(page, chat, "JupyterLab Dark")
    card.screenshot(path=str(SCREENSHOTS / "gate-diff-dark.png"))
    use_theme(page, chat, "JupyterLab Light")
    session_id = lab.api("policy-gate.list", {"status": "pending", "toolName": "file.write"})[
        "items"
    ][0]["sessionId"]

    chat.button("Open approvals").click()
    panel = page.locator(APPROVALS)
    expect(_item(panel, "notes.txt")).to_have_count(1, timeout=30_000)
    tool = panel.get_by_role("combobox", name="Show gates of tool")
    tool.select_option("bash.exec")
    expect(panel.locator(".jp-OpenFoal-approvalsEmpty")).to_have_text("No gates to show.")
    tool.select_option("file.write")
    expect(_item(panel, "notes.txt")).to_have_count(1)
    session = panel.get_by_role("searchbox", name="Show gates of session")
    session.fill("ses_somebody_else")
    session.press("Enter")
    expect(panel.locator(".jp-OpenFoal-approvalsEmpty")).to_be_visible()
    session.fill(session_id)
    session.press("Enter")
    item = _item(panel, "notes.txt")
    expect(item).to_have_attribute("data-session-id", session_id)
    expect(item.locator(".jp-OpenFoal-gateDiff")).to_contain_text("+gamma")
    panel.screenshot(path=str(SCREENSHOTS / "approvals-filters-light.png"))
    use_theme(page, chat, "JupyterLab Dark")
    panel.screenshot(path=str(SCREENSHOTS / "approvals-filters-dark.png"))
    use_theme(page, chat, "JupyterLab Light")

    # The link opens the chat on that session: from a new, empty chat, with the chat closed.
    chat.new_session()
    expect(gate_card(chat)).to_have_count(0)
    chat.tab.click()
    expect(chat.root).to_be_hidden()
    item.get_by_role("button", name=f"Open session {session_id} in the chat").click()
    expect(chat.root).to_be_visible(timeout=30_000)
    expect(gate_card(chat)).to_have_attribute("data-gate-status", "pending", timeout=30_000)
    expect(chat.entries("user").last).to_have_text("edit the notes")
    approve = item.get_by_role("button", name="Approve", exact=True)
    expect(approve).to_be_enabled()
    approve.click()
    expect(item.locator(".jp-OpenFoal-gate")).to_have_attribute(
        "data-gate-status", "approved", timeout=60_000
    )
    expect(gate_card(chat)).to_have_attribute("data-gate-status", "approved", timeout=60_000)
    chat.wait_idle()
    assert (lab.root / "notes.txt").read_text() == "alpha\ngamma\n"


def test_double_decision_unknown_gate_and_lost_server(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """Someone else decides first: one winner, and this panel says its decision was not
    applied. A gate the server does not know, and a server gone, each get a message."""
    wire = Wire(page)
    _gate_file_writes(lab)
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    _write_call(model, "race.txt", "one\n")
    chat.send("write race.txt")
    expect(gate_card(chat)).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    chat.button("Open approvals").click()
    panel = page.locator(APPROVALS)
    item = _item(panel, "race.txt")
    expect(item.locator(".jp-OpenFoal-gate")).to_have_attribute("data-gate-status", "pending")
    gate: dict[str, Any] = next(
        g
        for g in lab.api("policy-gate.list", {"status": "pending"})["items"]
        if g["args"].get("path") == "race.txt"
    )

    # An unknown gate: the server answers NOT_FOUND, the panel says so and keeps the card.
    wire.unknown_gate = True
    item.get_by_role("button", name="Reject", exact=True).click()
    expect(item.locator(".jp-OpenFoal-errorCode")).to_have_text("NOT_FOUND", timeout=30_000)
    expect(item.locator(".jp-OpenFoal-approvalsNote")).to_contain_text("unknown to the server")
    wire.unknown_gate = False

    # Another person approves first (this page does not hear of it yet), then we reject.
    wire.hold_resolved = True
    lab.api(
        "policy-gate.resolve",
        {"gateId": gate["gateId"], "decision": "approve", "idempotencyKey": uuid.uuid4().hex},
    )
    item.get_by_role("button", name="Reject", exact=True).click()
    note = item.locator(".jp-OpenFoal-approvalsNote")
    expect(note).to_contain_text("Already approved by", timeout=30_000)
    expect(note).to_contain_text("your rejection was not applied")
    expect(item.locator(".jp-OpenFoal-gate")).to_have_attribute("data-gate-status", "approved")
    wire.hold_resolved = False
    stored = lab.api("policy-gate.list", {"status": "approved"})["items"]
    assert [g["decision"] for g in stored if g["gateId"] == gate["gateId"]] == ["approve"]

    # The server goes away: a banner says so and the list stays; it clears when it is back.
    wire.cut()
    banner = panel.locator(".jp-OpenFoal-approvalsBanner")
    expect(banner).to_be_visible(timeout=30_000)
    expect(banner).to_contain_text("connection to the server is lost")
    expect(item).to_be_visible()
    wire.down = False
    expect(banner).to_be_hidden(timeout=60_000)
    expect(_item(panel, "race.txt")).to_have_count(0, timeout=30_000)  # pending list reloaded
