"""Approving and rejecting gated calls in JupyterLab: the chat gate card, the Approvals panel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Locator, Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
APPROVALS = "#openfoal-approvals"


@pytest.fixture
def chat(page: Page, lab: LabServer) -> ChatPanel:
    """JupyterLab with the chat panel open and connected."""
    return ChatPanel.open_lab(page, lab).open_from_sidebar()


@pytest.fixture(scope="module")
def demo_lab(
    tmp_path_factory: pytest.TempPathFactory, installed_extension: object
) -> Iterator[LabServer]:
    """JupyterLab whose agent talks to the built-in demo model."""
    server = LabServer(tmp_path_factory.mktemp("demo-lab"), {"OPENFOAL_MODEL": "demo"})
    server.start()
    yield server
    server.stop()


def gate_card(chat: ChatPanel) -> Locator:
    """The gate card of the newest tool call in the chat."""
    return chat.entries("tool").last.locator(".jp-OpenFoal-gate")


def use_theme(page: Page, chat: ChatPanel, name: str) -> None:
    """Switch JupyterLab's theme from the command palette and wait until it applies."""
    chat.run_command(f"Use Theme: {name}")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", name, timeout=30_000)
    page.wait_for_timeout(500)  # let the theme's stylesheet paint before a screenshot


def open_approvals_from_launcher(page: Page) -> Locator:
    """Click the Approvals card in the launcher's OpenFoal section."""
    page.locator(".jp-LauncherCard", has_text="OpenFoal Approvals").first.click()
    panel = page.locator(APPROVALS)
    expect(panel).to_be_visible()
    return panel


def test_gated_call_approved_in_the_chat_shows_its_output(
    chat: ChatPanel, model: ScriptedModelServer, page: Page
) -> None:
    """A gated python.exec shows a card with its code and why; Approve runs it."""
    code = "print('approved', 6 * 7)"
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": code})),
        Reply.of(TextStep(text="The code ran.")),
    )
    chat.send("compute something")
    card = gate_card(chat)
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    expect(card.locator(".jp-OpenFoal-gateTool")).to_have_text("python.exec")
    expect(card.locator(".jp-OpenFoal-gateMain")).to_have_text(code)
    expect(card.locator(".jp-OpenFoal-gateRule")).to_have_text("highRisk")
    expect(card.locator(".jp-OpenFoal-gateRisk")).not_to_be_empty()
    expect(card.get_by_role("textbox", name="Reason for the decision (optional)")).to_be_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    card.screenshot(path=str(SCREENSHOTS / "gate-card-light.png"))
    use_theme(page, chat, "JupyterLab Dark")
    card.screenshot(path=str(SCREENSHOTS / "gate-card-dark.png"))
    use_theme(page, chat, "JupyterLab Light")

    card.get_by_role("button", name="Approve", exact=True).click()
    expect(card).to_have_attribute("data-gate-status", "approved", timeout=30_000)
    tool = chat.entries("tool").last
    expect(tool).to_have_attribute("data-status", "success", timeout=60_000)
    chat.wait_idle()
    tool.locator(".jp-OpenFoal-toolHeader").click()
    expect(tool.locator(".jp-OpenFoal-toolOutput")).to_contain_text("approved 42")
    expect(chat.entries("assistant").last).to_contain_text("The code ran.")

    # The chat header opens the Approvals panel; the decision is listed there as approved.
    chat.button("Open approvals").click()
    panel = page.locator(APPROVALS)
    expect(panel).to_be_visible()
    panel.get_by_role("combobox", name="Show gates with status").select_option("approved")
    expect(panel.locator(".jp-OpenFoal-gate", has_text=code).first).to_have_attribute(
        "data-gate-status", "approved"
    )


def test_keyboard_enter_on_the_card_approves(chat: ChatPanel, model: ScriptedModelServer) -> None:
    """With the focus in the card, Enter approves it (Escape would reject)."""
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": "print('by keyboard')"})),
        Reply.of(TextStep(text="Done.")),
    )
    chat.send("run by keyboard")
    card = gate_card(chat)
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    reason = card.get_by_role("textbox", name="Reason for the decision (optional)")
    reason.fill("looks harmless")
    reason.press("Enter")
    expect(card).to_have_attribute("data-gate-status", "approved", timeout=30_000)
    expect(chat.entries("tool").last).to_have_attribute("data-status", "success", timeout=60_000)
    chat.wait_idle()
    # The command palette opens the Approvals panel too; nothing is pending any more.
    chat.run_command("OpenFoal Approvals")
    panel = chat.page.locator(APPROVALS)
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-OpenFoal-approvalsEmpty")).to_have_text("No gates to show.")


def test_rejected_from_the_approvals_panel_and_the_chat_card_follows(
    chat: ChatPanel, model: ScriptedModelServer, page: Page, lab: LabServer
) -> None:
    """A gate rejected with a reason in the Approvals panel shows as rejected in the chat too."""
    command = "rm -rf ./build-output"
    model.enqueue(
        Reply.of(ToolCallStep(name="bash.exec", arguments={"command": command})),
        Reply.of(TextStep(text="I did not run it.")),
    )
    chat.send("clean the build")
    card = gate_card(chat)
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)

    panel = open_approvals_from_launcher(page)
    item = panel.locator(".jp-OpenFoal-gate", has_text=command)
    expect(item).to_have_attribute("data-gate-status", "pending", timeout=30_000)
    expect(item.locator(".jp-OpenFoal-gateTool")).to_have_text("bash.exec")
    SCREENSHOTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "approvals-panel-light.png"))
    use_theme(page, chat, "JupyterLab Dark")
    panel.screenshot(path=str(SCREENSHOTS / "approvals-panel-dark.png"))
    use_theme(page, chat, "JupyterLab Light")

    item.get_by_role("textbox", name="Reason for the decision (optional)").fill("not today")
    item.get_by_role("button", name="Reject", exact=True).click()
    expect(item).to_have_attribute("data-gate-status", "rejected", timeout=30_000)
    expect(item.locator(".jp-OpenFoal-gateResolved")).to_contain_text("not today")
    # The chat card follows the live policy-gate.resolved event.
    expect(card).to_have_attribute("data-gate-status", "rejected", timeout=30_000)
    expect(chat.entries("tool").last).to_have_attribute("data-status", "rejected", timeout=60_000)
    chat.wait_idle()
    gates = lab.api("policy-gate.list", {"status": "rejected"})["items"]
    assert any(g["args"].get("command") == command and g["reason"] == "not today" for g in gates)

    # The panel comes back with the workspace after a reload.
    page.goto(lab.lab_url.replace("lab?reset&", "lab?"))
    expect(page.locator(APPROVALS)).to_be_visible(timeout=60_000)


def test_demo_tour_completes_in_the_browser(page: Page, demo_lab: LabServer) -> None:
    """OPENFOAL_MODEL=demo: the tour's gated python.exec and bash.exec are approved by clicks."""
    chat = ChatPanel.open_lab(page, demo_lab).open_from_sidebar()
    chat.send("show me the tour")
    for tool in ("python.exec", "bash.exec"):
        card = chat.root.locator(f'.jp-OpenFoal-entry-tool[data-tool="{tool}"] .jp-OpenFoal-gate')
        expect(card).to_have_attribute("data-gate-status", "pending", timeout=90_000)
        card.get_by_role("button", name="Approve", exact=True).click()
        expect(card).to_have_attribute("data-gate-status", "approved", timeout=30_000)
    chat.wait_idle(timeout=90_000)
    expect(chat.entries("assistant").last).to_contain_text(
        "That was the whole tour", timeout=30_000
    )
    expect(chat.entries("assistant").last).to_contain_text(re.compile(r"bash\.exec.*it ran"))


def test_allow_for_this_session_stops_gating_the_tool_there(
    chat: ChatPanel, model: ScriptedModelServer, lab: LabServer
) -> None:
    """ "Allow python.exec for this session" approves the call and opens the tool in the session."""
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": "print('first')"})),
        Reply.of(TextStep(text="First done.")),
    )
    chat.new_session()
    chat.send("first call")
    card = gate_card(chat)
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    card.get_by_role("button", name="Allow python.exec for this session").click()
    expect(card).to_have_attribute("data-gate-status", "approved", timeout=30_000)
    chat.wait_idle()
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": "print('second')"})),
        Reply.of(TextStep(text="Second done.")),
    )
    chat.send("second call")
    expect(chat.entries("assistant").last).to_contain_text("Second done.", timeout=60_000)
    chat.wait_idle()
    second = chat.entries("tool").last
    expect(second).to_have_attribute("data-status", "success")
    expect(second.locator(".jp-OpenFoal-gate")).to_have_count(0)
