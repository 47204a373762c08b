"""The chat header's runtime toggle: cloud runs tools in the session's Docker sandbox.

Needs the Docker engine and the sandbox images (the test script installs and builds them);
without them the run fails with SANDBOX_UNAVAILABLE and so does this test.
"""

from __future__ import annotations

import re

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser


def test_cloud_toggle_runs_tools_in_the_sandbox(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    chat.new_session()
    cloud = chat.root.locator('.jp-OpenFoal-modeButton[data-mode="cloud"]')
    local = chat.root.locator('.jp-OpenFoal-modeButton[data-mode="local"]')
    cloud.click()
    expect(cloud).to_have_attribute("aria-pressed", "true")
    expect(local).to_have_attribute("aria-pressed", "false")

    model.enqueue(
        Reply.of(ToolCallStep(name="bash.exec", arguments={"command": "echo uid=$(id -u)"})),
        Reply.of(TextStep(text="Ran it in the sandbox.")),
    )
    chat.send("who runs my commands?")
    card = chat.entries("tool").last
    expect(card).to_have_attribute("data-tool", "bash.exec")
    expect(card).to_have_attribute("data-status", "success", timeout=60_000)
    chat.wait_idle()
    expect(card.locator(".jp-OpenFoal-badge")).to_have_text("cloud")
    card.locator(".jp-OpenFoal-toolHeader").click()
    output = card.locator(".jp-OpenFoal-toolOutput")
    expect(output).to_contain_text(re.compile(r"uid=[1-9]\d*"))  # not root: the sandbox user
    expect(chat.entries("assistant").last).to_contain_text("Ran it in the sandbox.")

    # back to local: applied at once while idle
    local.click()
    expect(local).to_have_attribute("aria-pressed", "true")
