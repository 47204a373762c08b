"""The Audit, Replay and Metrics panels in JupyterLab, checked against the gateway's own answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Locator, Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
AUDIT = "#openfoal-audit"
METRICS = "#openfoal-metrics"
FIGURES = [
    "runsTotal",
    "runsFailed",
    "runsActive",
    "p95LatencyMs",
    "toolCallsTotal",
    "toolFailures",
    "gatePending",
    "gatesTotal",
]


@pytest.fixture
def chat(page: Page, lab: LabServer) -> ChatPanel:
    """JupyterLab with the chat panel open and connected."""
    return ChatPanel.open_lab(page, lab).open_from_sidebar()


def step_kind(step: dict[str, Any]) -> str:
    """The panel's `data-step` for one `audit.replay` item (replay.ts `stepKind`)."""
    if step["kind"] == "event":
        return {
            "agent.tool_call": "tool-call",
            "agent.tool_result": "tool-result",
            "policy-gate.requested": "gate",
            "policy-gate.resolved": "gate",
        }.get(step["event"], "event")
    return str(step["kind"])


def js_number(value: float | None) -> str:
    """A figure as the panel prints it (JavaScript's String of a number, or a dash)."""
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else str(value)


def shoot(page: Page, chat: ChatPanel, node: Locator, name: str) -> None:
    """Screenshots of one panel in the light and the dark theme."""
    SCREENSHOTS.mkdir(exist_ok=True)
    node.screenshot(path=str(SCREENSHOTS / f"{name}-light.png"))
    chat.run_command("Use Theme: JupyterLab Dark")
    expect(page.locator("body")).to_have_attribute(
        "data-jp-theme-name", "JupyterLab Dark", timeout=30_000
    )
    page.wait_for_timeout(500)  # let the theme's stylesheet paint before a screenshot
    node.screenshot(path=str(SCREENSHOTS / f"{name}-dark.png"))
    chat.run_command("Use Theme: JupyterLab Light")
    expect(page.locator("body")).to_have_attribute(
        "data-jp-theme-name", "JupyterLab Light", timeout=30_000
    )


def gated_turn(chat: ChatPanel, model: ScriptedModelServer, secret: str) -> None:
    """A turn whose python.exec is gated, approved in the chat, and prints a secret."""
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": f"print('{secret}')"})),
        Reply.of(TextStep(text="done inspecting")),
    )
    chat.send("run something to audit")
    card = chat.entries("tool").last.locator(".jp-OpenFoal-gate")
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    card.get_by_role("button", name="Approve").click()
    expect(chat.entries("assistant").last).to_contain_text("done inspecting", timeout=60_000)
    chat.wait_idle()


def test_find_a_run_in_audit_and_its_replay_matches_audit_replay(
    chat: ChatPanel, model: ScriptedModelServer, page: Page, lab: LabServer
) -> None:
    """Audit filtered by run lists its entries; its Replay shows the steps of audit.replay."""
    secret = "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"
    gated_turn(chat, model, secret)
    entries = lab.api("audit.query", {"action": "tool.call", "limit": 1})["items"]
    run_id = entries[0]["runId"]
    expected = lab.api("audit.query", {"runId": run_id})["items"]

    page.locator(".jp-LauncherCard", has_text="OpenFoal Audit").first.click()
    panel = page.locator(AUDIT)
    expect(panel).to_be_visible()
    expect(panel.locator("tbody tr").first).to_be_visible(timeout=30_000)
    run_box = panel.get_by_role("textbox", name="Run")
    run_box.fill(run_id)
    run_box.press("Enter")
    rows = panel.locator("tbody tr")
    expect(rows).to_have_count(len(expected), timeout=30_000)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.entry)") == [e["id"] for e in expected]
    # the secret in the tool call's arguments shows as a redaction, never in clear
    expect(panel.locator(".jp-OpenFoal-redacted").first).to_be_visible()
    expect(panel).not_to_contain_text(secret)

    # an inverted range is refused with a message; the rows stay
    panel.get_by_label("From", exact=True).fill("2030-01-02T00:00:00")
    panel.get_by_label("To", exact=True).fill("2030-01-01T00:00:00")
    panel.get_by_role("button", name="Apply").click()
    status = panel.locator(".jp-OpenFoal-consoleStatus")
    expect(status).to_have_attribute("data-state", "invalid")
    expect(status).to_contain_text("inverted")
    expect(rows).to_have_count(len(expected))
    panel.get_by_label("From", exact=True).fill("")
    panel.get_by_label("To", exact=True).fill("")
    panel.get_by_role("button", name="Apply").click()
    expect(status).to_have_attribute("data-state", "ready", timeout=30_000)
    shoot(page, chat, panel, "audit-panel")

    panel.get_by_role("button", name=f"Replay run {run_id}").first.click()
    replay = page.locator(f"#openfoal-replay-{run_id}")
    expect(replay).to_be_visible()
    timeline = lab.api("audit.replay", {"runId": run_id})
    steps = replay.locator(".jp-OpenFoal-replayStep")
    expect(steps).to_have_count(len(timeline["events"]), timeout=30_000)
    kinds = steps.evaluate_all("ss => ss.map(s => s.dataset.step)")
    assert kinds == [step_kind(s) for s in timeline["events"]]
    assert {"run", "message", "tool-call", "tool-result", "gate", "audit"} <= set(kinds)
    gate_steps = replay.locator('.jp-OpenFoal-replayStep[data-event="policy-gate.resolved"]')
    expect(gate_steps.first).to_contain_text(re.compile(r"Gate approved by \S+ at "))
    result = replay.locator('.jp-OpenFoal-replayStep[data-step="tool-result"]').first
    expect(result).to_contain_text("success")
    expect(result.locator(".jp-OpenFoal-redacted")).to_have_count(1)
    version = replay.locator('[data-fact="policy-version"]')
    expect(version).to_contain_text(str(timeline["policyVersion"]))
    shoot(page, chat, replay, "replay-panel")

    # both come back after a reload
    page.goto(lab.lab_url.replace("lab?reset&", "lab?"))
    expect(page.locator(AUDIT)).to_be_attached(timeout=60_000)
    expect(page.locator(f"#openfoal-replay-{run_id}")).to_be_attached(timeout=60_000)


def test_metrics_figures_equal_metrics_summary_and_follow_runs(
    chat: ChatPanel, model: ScriptedModelServer, page: Page, lab: LabServer
) -> None:
    """The panel's figures are metrics.summary's for its window; a new run updates them live."""
    model.enqueue(Reply.of(TextStep(text="a counted run")))
    chat.send("count this")
    chat.wait_idle()
    chat.run_command("OpenFoal Metrics")
    panel = page.locator(METRICS)
    expect(panel).to_be_visible()
    status = panel.locator(".jp-OpenFoal-consoleStatus")
    expect(status).to_have_attribute("data-state", "ready", timeout=30_000)

    def check_against_api() -> dict[str, Any]:
        content = panel.locator(".jp-OpenFoal-metrics")
        span = content.evaluate("n => [n.dataset.from, n.dataset.to]")
        got = lab.api("metrics.summary", {"from": span[0], "to": span[1], "bucket": 300})
        for key in FIGURES:
            value = got["metrics"][key]
            shown = panel.locator(f'[data-figure="{key}"]')
            expect(shown).to_have_text(js_number(value))
        return got

    first = check_against_api()
    assert first["metrics"]["runsTotal"] >= 1
    # four charts drawn by Chart.js
    charts = panel.locator("canvas[data-chart]")
    expect(charts).to_have_count(4)
    assert all(charts.evaluate_all("cs => cs.map(c => c.width > 0 && c.height > 0)"))

    model.enqueue(Reply.of(TextStep(text="another counted run")))
    chat.send("count this too")
    chat.wait_idle()
    total = str(first["metrics"]["runsTotal"] + 1)
    expect(panel.locator('[data-figure="runsTotal"]')).to_have_text(total, timeout=30_000)
    expect(status).to_have_attribute("data-state", "ready", timeout=30_000)
    check_against_api()
    shoot(page, chat, panel, "metrics-panel")


def test_a_server_that_went_away_is_shown_and_nothing_blanks(
    chat: ChatPanel, model: ScriptedModelServer, page: Page, lab: LabServer
) -> None:
    """With the server stopped, the panels say so and keep their rows; a refresh shows the error."""
    model.enqueue(Reply.of(TextStep(text="an audited run")))
    chat.send("audit this")
    chat.wait_idle()
    chat.run_command("OpenFoal Audit")
    panel = page.locator(AUDIT)
    rows = panel.locator("tbody tr")
    expect(rows.first).to_be_visible(timeout=30_000)
    count = rows.count()
    lab.stop()
    try:
        expect(panel.locator(".jp-OpenFoal-serverLine")).to_contain_text(
            "cannot be reached", timeout=60_000
        )
        panel.get_by_role("button", name="Refresh").click()
        status = panel.locator(".jp-OpenFoal-consoleStatus")
        expect(status).to_have_attribute("data-state", "error", timeout=60_000)
        expect(status).to_contain_text(re.compile(r"^[A-Z_]+: "))
        expect(rows).to_have_count(count)
    finally:
        lab.start()
    chat.dismiss_dialogs()
    expect(panel.locator(".jp-OpenFoal-serverLine")).to_be_hidden(timeout=60_000)
    panel.get_by_role("button", name="Refresh").click()
    expect(panel.locator(".jp-OpenFoal-consoleStatus")).to_have_attribute(
        "data-state", "ready", timeout=60_000
    )
