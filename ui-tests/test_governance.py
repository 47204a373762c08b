"""The Sessions and Policy panels in JupyterLab: search, open and delete sessions; edit the
policy in its form, compare versions, and meet a concurrent edit (VERSION_CONFLICT)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Locator, Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SESSIONS = "#openfoal-sessions"
POLICY = "#openfoal-policy"


def use_theme(page: Page, chat: ChatPanel, name: str) -> None:
    """Switch JupyterLab's theme from the command palette and wait until it applies."""
    chat.run_command(f"Use Theme: {name}")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", name, timeout=30_000)
    page.wait_for_timeout(500)  # let the theme's stylesheet paint before a screenshot


def screenshots(page: Page, chat: ChatPanel, panel: Locator, name: str) -> None:
    """The panel in the light and the dark theme."""
    SCREENSHOTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / f"{name}-light.png"))
    use_theme(page, chat, "JupyterLab Dark")
    panel.screenshot(path=str(SCREENSHOTS / f"{name}-dark.png"))
    use_theme(page, chat, "JupyterLab Light")


def start_session(lab: LabServer, model: ScriptedModelServer, text: str) -> str:
    """A finished one-turn session made through the REST surface."""
    model.enqueue(Reply.of(TextStep(text=f"answer to {text}")))
    accepted = lab.api("agent.run", {"input": text, "idempotencyKey": uuid.uuid4().hex})
    session_id = str(accepted["sessionId"])
    for _ in range(600):
        session = lab.api("sessions.get", {"sessionId": session_id})["session"]
        if session["status"] == "idle":
            return session_id
        lab.api("sessions.list", {"limit": 1})  # a round trip, not a sleep
    raise AssertionError(f"session {session_id} never became idle")


def rows(panel: Locator) -> Locator:
    return panel.locator("tbody tr[data-session-id]")


def test_sessions_panel_searches_opens_and_deletes(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    marker = uuid.uuid4().hex[:8]
    keep = start_session(lab, model, f"zebra {marker} plan")
    other = start_session(lab, model, f"walrus {marker} notes")

    chat = ChatPanel.open_lab(page, lab)
    chat.run_command("OpenFoal Sessions")
    panel = page.locator(SESSIONS)
    expect(panel).to_be_visible()
    # the chat header has a button for it too (it reveals the same panel)
    chat.open_from_sidebar().button("Open the Sessions panel").click()
    expect(page.locator(SESSIONS)).to_have_count(1)
    expect(panel).to_be_visible()
    expect(panel.locator(f'tr[data-session-id="{keep}"]')).to_be_visible(timeout=30_000)
    row = panel.locator(f'tr[data-session-id="{keep}"]')
    expect(row.locator('[data-col="status"]')).to_have_text("idle")
    expect(row.locator('[data-col="runtimeMode"]')).to_have_text("local")
    expect(row.locator('[data-col="syncState"]')).not_to_be_empty()
    expect(row.locator('[data-col="updatedAt"]')).not_to_be_empty()

    # search goes to the server: only the matching session stays
    search = panel.get_by_role("searchbox", name="Search sessions")
    search.fill(f"zebra {marker}")
    search.press("Enter")
    expect(rows(panel)).to_have_count(1, timeout=30_000)
    expect(rows(panel).first).to_have_attribute("data-session-id", keep)
    screenshots(page, chat, panel, "sessions-panel")

    # keyboard: from the search box, Tab reaches the refresh button and the row's buttons
    search.focus()
    page.keyboard.press("Tab")
    expect(panel.get_by_role("button", name="Refresh")).to_be_focused()
    open_button = row.locator('[data-action="open"]')
    expect(open_button).to_have_attribute("aria-label", re.compile(r"^Open .+ in the chat$"))
    open_button.focus()
    page.keyboard.press("Enter")
    chat.wait_connected()
    expect(chat.entries("user").first).to_contain_text(f"zebra {marker} plan", timeout=30_000)

    # delete: Cancel keeps it, Delete removes it (and only it)
    delete = row.locator('[data-action="delete"]')
    expect(delete).to_have_attribute("aria-label", re.compile(r"^Delete .+"))
    delete.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("This cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(rows(panel)).to_have_count(1)
    delete.click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    expect(rows(panel)).to_have_count(0, timeout=30_000)
    expect(panel.locator(".jp-OpenFoal-consoleEmpty")).to_be_visible()
    listed = lab.api("sessions.list", {"query": marker, "limit": 50})["items"]
    assert [s["id"] for s in listed] == [other]

    # a failure shows its code and trace id; the rows on screen stay
    search.fill(marker)
    search.press("Enter")
    expect(rows(panel)).to_have_count(1, timeout=30_000)
    search.fill("x" * 600)  # longer than sessions.list takes
    search.press("Enter")
    status = panel.locator(".jp-OpenFoal-consoleStatus")
    expect(status).to_contain_text("INVALID_REQUEST", timeout=30_000)
    expect(status).to_contain_text("trace")
    expect(rows(panel)).to_have_count(1)


def open_policy(
    page: Page, lab: LabServer, *, from_chat: bool = False
) -> tuple[ChatPanel, Locator]:
    """Open the Policy panel from the launcher, or from the chat header's button."""
    chat = ChatPanel.open_lab(page, lab)
    if from_chat:
        chat.open_from_sidebar().button("Open policy").click()
    else:
        page.locator(".jp-LauncherCard", has_text="OpenFoal Policy").first.click()
    panel = page.locator(POLICY)
    expect(panel).to_be_visible()
    version = lab.api("policy.get", {})["policy"]["version"]
    expect(panel.locator(".jp-OpenFoal-policyPanel")).to_have_attribute(
        "data-version", str(version), timeout=30_000
    )
    return chat, panel


def test_policy_form_edit_saves_a_new_version_and_the_history_diffs_it(
    page: Page, lab: LabServer
) -> None:
    chat, panel = open_policy(page, lab)
    before = lab.api("policy.get", {})["policy"]
    v = before["version"]

    panel.get_by_role("combobox", name="High-risk rule").select_option("deny")
    panel.get_by_role("spinbutton", name="Gate timeout (seconds)").fill("120")
    panel.get_by_role("textbox", name="Network allowlist").fill("example.org\n*.example.net")
    panel.get_by_role("button", name="Add tool rule").click()
    tool = panel.get_by_role("textbox", name="Tool name").last
    expect(tool).to_be_focused()
    tool.fill("bash.exec")
    panel.get_by_role("combobox", name="Rule for new tool").last.select_option("allow")
    panel.get_by_role("button", name="Save").click()

    body = panel.locator(".jp-OpenFoal-policyPanel")
    expect(body).to_have_attribute("data-version", str(v + 1), timeout=30_000)
    after = lab.api("policy.get", {})["policy"]
    assert after["version"] == v + 1
    assert after["highRisk"] == "deny" and after["gateTimeoutSec"] == 120
    assert after["tools"].get("bash.exec") == "allow"
    assert after["network"]["allow"] == ["example.org", "*.example.net"]
    assert after["bashMode"] == before["bashMode"]

    # the history lists the new version; the diff names exactly the fields changed
    expect(panel.locator(f'tr[data-version="{v + 1}"]')).to_be_visible()
    panel.get_by_role("combobox", name="Compare from version").select_option(str(v))
    panel.get_by_role("combobox", name="Compare to version").select_option(str(v + 1))
    panel.get_by_role("button", name="Show diff").click()
    diff = panel.locator(".jp-OpenFoal-policyDiff tr[data-field]")
    expect(diff).to_have_count(4, timeout=30_000)
    expect(panel.locator('.jp-OpenFoal-policyDiff tr[data-field="highRisk"]')).to_contain_text(
        "deny"
    )
    screenshots(page, chat, panel, "policy-panel")

    # a malformed edit: a clear message naming the field, and the store loses nothing
    panel.get_by_role("spinbutton", name="Gate timeout (seconds)").fill("1.5")
    panel.get_by_role("button", name="Save").click()
    status = panel.locator(".jp-OpenFoal-consoleStatus")
    expect(status).to_contain_text("INVALID_REQUEST", timeout=30_000)
    expect(status).to_contain_text("gateTimeoutSec")
    assert lab.api("policy.get", {})["policy"] == after
    expect(panel.get_by_role("spinbutton", name="Gate timeout (seconds)")).to_have_value("1.5")


def test_a_concurrent_api_edit_shows_as_a_conflict_and_reloads(page: Page, lab: LabServer) -> None:
    _chat, panel = open_policy(page, lab, from_chat=True)
    before = lab.api("policy.get", {})["policy"]
    v = before["version"]
    panel.get_by_role("spinbutton", name="Gate timeout (seconds)").fill("333")

    # someone else saves first, through the REST API
    other_mode = "sandbox" if before["bashMode"] == "host" else "host"
    lab.api(
        "policy.update",
        {
            "patch": {"bashMode": other_mode},
            "expectedVersion": v,
            "idempotencyKey": uuid.uuid4().hex,
        },
    )
    panel.get_by_role("button", name="Save").click()
    conflict = panel.locator(".jp-OpenFoal-policyConflict")
    expect(conflict).to_be_visible(timeout=30_000)
    expect(conflict).to_contain_text(f"version {v + 1} (yours was {v})")
    expect(conflict.locator('tr[data-field="bashMode"]')).to_contain_text(other_mode)
    expect(panel.locator(".jp-OpenFoal-consoleStatus")).to_contain_text("VERSION_CONFLICT")
    # never silently overwritten: the other edit stands, ours was not written
    now = lab.api("policy.get", {})["policy"]
    assert now["version"] == v + 1 and now["bashMode"] == other_mode
    assert now["gateTimeoutSec"] == before["gateTimeoutSec"]
    reload = conflict.get_by_role("button", name="Reload the latest version")
    expect(reload).to_be_focused()
    SCREENSHOTS.mkdir(exist_ok=True)
    conflict.screenshot(path=str(SCREENSHOTS / "policy-conflict-light.png"))
    page.keyboard.press("Enter")

    body = panel.locator(".jp-OpenFoal-policyPanel")
    expect(body).to_have_attribute("data-version", str(v + 1), timeout=30_000)
    expect(conflict).to_be_hidden()
    expect(panel.get_by_role("combobox", name="Bash mode")).to_have_value(other_mode)
    # after the reload, the same edit goes through on top of the other one
    panel.get_by_role("spinbutton", name="Gate timeout (seconds)").fill("333")
    panel.get_by_role("button", name="Save").click()
    expect(body).to_have_attribute("data-version", str(v + 2), timeout=30_000)
    final = lab.api("policy.get", {})["policy"]
    assert final["gateTimeoutSec"] == 333 and final["bashMode"] == other_mode
