"""Approvals across users on a real JupyterHub: alice's gated call waits in her chat, carol
approves it from the Approvals panel of her own JupyterLab (through the cloud service), and
alice's run continues."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Browser, Locator, Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep
from openfoal_testing.cloud import postgres_server  # noqa: F401  (fixture)
from openfoal_testing.hub import HubProcess, jupyterhub, own_server_options  # noqa: F401
from openfoal_testing.plugin import scripted_env

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

APPROVALS = "#openfoal-approvals"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def own_lab(base: Path, hub: HubProcess, name: str, model: ScriptedModelServer) -> LabServer:
    """``name``'s own JupyterLab, its OpenFoal wired to the cloud with their Hub token."""
    own = own_server_options(hub, hub.login(name))
    return LabServer(
        base,
        {**scripted_env(model), **own["env"]},
        args=[*own["args"], "--SandboxManager.pool_size=0"],
    )


@pytest.fixture
def labs(
    tmp_path: Path,
    jupyterhub: HubProcess,  # noqa: F811
    installed_extension: object,
    scripted_model: ScriptedModelServer,
) -> Iterator[dict[str, LabServer]]:
    """alice's and carol's own JupyterLab servers, started side by side."""
    servers = {n: own_lab(tmp_path / n, jupyterhub, n, scripted_model) for n in ("alice", "carol")}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def carol_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A second browser context, for carol; its console goes to test-artifacts too."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    lines: list[str] = []
    page.on("console", lambda msg: lines.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: lines.append(f"pageerror: {exc}"))
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{request.node.name}.carol.console.txt").write_text("\n".join(lines))
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.carol.failure.png"))
    context.close()


def listed_gate(panel: Locator, gate_id: str, timeout: float = 60) -> Locator:
    """The panel's item of a gate, pressing Refresh until the cloud's answer lists it
    (another user's gate reaches this server by the list, not by a live event)."""
    item = panel.locator(f'.jp-OpenFoal-approvalsItem[data-gate-id="{gate_id}"]')
    refresh = panel.get_by_role("button", name="Refresh")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        refresh.click()
        try:
            item.wait_for(timeout=3_000)
            return item
        except Exception:  # not listed yet: the push to the cloud is still on its way
            continue
    raise AssertionError(f"gate {gate_id} never appeared in carol's Approvals panel")


@pytest.mark.timeout(300)
def test_carol_approves_alices_gate_from_her_own_lab(
    labs: dict[str, LabServer],
    model: ScriptedModelServer,
    page: Page,
    carol_page: Page,
    tmp_path: Path,
) -> None:
    """alice's bash.exec waits; carol sees it marked as alice's, approves it with a reason;
    alice's chat continues to the final reply and the command ran once."""
    marker = tmp_path / "ran.txt"
    model.enqueue(
        Reply.of(ToolCallStep(name="bash.exec", arguments={"command": f"echo ran >> {marker}"})),
        Reply.of(TextStep(text="The marker is written.")),
    )
    alice = ChatPanel.open_lab(page, labs["alice"]).open_from_sidebar()
    alice.send("write the marker")
    card = alice.entries("tool").last.locator(".jp-OpenFoal-gate")
    expect(card).to_have_attribute("data-gate-status", "pending", timeout=60_000)
    expect(card.locator(".jp-OpenFoal-gateTool")).to_have_text("bash.exec")
    gate_id = card.get_attribute("data-gate-id")
    assert gate_id

    # carol, in her own JupyterLab, opens the Approvals panel from the launcher
    ChatPanel.open_lab(carol_page, labs["carol"])
    carol_page.locator(".jp-LauncherCard", has_text="OpenFoal Approvals").first.click()
    panel = carol_page.locator(APPROVALS)
    expect(panel).to_be_visible()
    item = listed_gate(panel, gate_id)
    expect(item).to_have_attribute("data-requested-by", "alice")
    expect(item.locator(".jp-OpenFoal-approvalsOwner")).to_have_text("Requested by alice")
    expect(item.locator(".jp-OpenFoal-approvalsSession")).to_contain_text("alice's session")
    expect(item.locator(".jp-OpenFoal-approvalsOpen")).to_be_hidden()  # not on carol's server
    # nor a session rule: alice's session and its rules live on her server
    expect(item.locator(".jp-OpenFoal-gateAllow")).to_be_hidden()
    theirs = item.locator(".jp-OpenFoal-gate")
    expect(theirs).to_have_attribute("data-gate-status", "pending")
    expect(theirs.locator(".jp-OpenFoal-gateMain")).to_contain_text(str(marker))
    assert not marker.exists()
    SCREENSHOTS.mkdir(exist_ok=True)
    item.screenshot(path=str(SCREENSHOTS / "approvals-other-user.png"))

    theirs.get_by_role("textbox", name="Reason for the decision (optional)").fill("looks fine")
    theirs.get_by_role("button", name="Approve", exact=True).click()
    expect(theirs).to_have_attribute("data-gate-status", "approved", timeout=30_000)

    # alice's server picks the decision up: her chat continues to the final reply
    expect(card).to_have_attribute("data-gate-status", "approved", timeout=60_000)
    expect(alice.entries("tool").last).to_have_attribute("data-status", "success", timeout=60_000)
    reply = alice.entries("assistant").last
    expect(reply).to_contain_text("The marker is written.", timeout=60_000)
    alice.wait_idle()
    assert marker.read_text().splitlines() == ["ran"]
    gates = labs["alice"].api("policy-gate.list", {"status": "approved"})["items"]
    mine = [g for g in gates if g["gateId"] == gate_id]
    assert [(g["resolvedBy"], g["reason"]) for g in mine] == [("carol", "looks fine")]
