"""First run without a model: the chat offers the demo model and how to configure one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

NO_MODEL = {
    "OPENFOAL_MODEL": "",
    "OPENFOAL_FALLBACK_MODELS": "",
    "OPENAI_API_KEY": "",
    "ANTHROPIC_API_KEY": "",
}


@pytest.fixture(scope="module")
def bare_lab(
    tmp_path_factory: pytest.TempPathFactory, installed_extension: object
) -> Iterator[LabServer]:
    """JupyterLab with no model configured at all."""
    server = LabServer(tmp_path_factory.mktemp("bare-lab"), NO_MODEL)
    server.start()
    yield server
    server.stop()


def test_no_model_offers_the_demo_and_the_configuration_help(
    page: Page, bare_lab: LabServer
) -> None:
    """No red error: two buttons; the help names OPENFOAL_MODEL; Configure opens the form; the
    demo answers the message."""
    chat = ChatPanel.open_lab(page, bare_lab).open_from_sidebar()
    chat.send("hello there")
    notice = chat.root.locator(".jp-OpenFoal-noModel")
    expect(notice).to_be_visible(timeout=60_000)
    expect(notice).to_have_attribute("role", "status")
    chat.wait_idle()
    # The server's own instructions stay one click away, for configuring by environment.
    help_ = notice.locator(".jp-OpenFoal-noModelHelp")
    help_.locator("summary").click()
    expect(help_).to_contain_text("OPENFOAL_MODEL")
    # "Configure a model" opens the settings form (ui-tests/test_model_settings.py).
    notice.get_by_role("button", name="Configure a model").click()
    expect(page.locator("#openfoal-model-settings")).to_be_visible(timeout=30_000)
    notice.get_by_role("button", name="Try the demo model").click()
    expect(chat.entries("assistant").first).to_contain_text("[demo model]", timeout=60_000)
    expect(chat.entries("user")).to_have_text(["hello there", "hello there"])
    # The tour goes on to gated calls; stop it here.
    chat.stop_button.click()
    chat.wait_idle()
