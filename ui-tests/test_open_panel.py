"""The panel is there in real JupyterLab: sidebar, launcher, command palette, connection."""

from __future__ import annotations

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_extension_is_installed_and_enabled(installed_extension: dict[str, object]) -> None:
    """`jupyter labextension list` shows the prebuilt extension from the Python package."""
    assert "openfoal v0.1.0" in str(installed_extension["listing"])
    assert "(python, openfoal)" in str(installed_extension["listing"])
    package = installed_extension["package"]
    assert isinstance(package, dict)
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_panel_opens_from_sidebar_launcher_and_palette(page: Page, lab: LabServer) -> None:
    """Each entry point shows the chat panel, which connects to the gateway."""
    chat = ChatPanel.open_lab(page, lab)
    expect(chat.tab).to_be_visible()
    chat.open_from_sidebar()
    expect(chat.textarea).to_be_focused()

    # Collapse the sidebar, then use the launcher card.
    chat.tab.click()
    expect(chat.root).to_be_hidden()
    page.locator(".jp-LauncherCard", has_text="OpenFoal Chat").click()
    expect(chat.root).to_be_visible()

    chat.tab.click()
    expect(chat.root).to_be_hidden()
    chat.run_command("OpenFoal Chat")
    expect(chat.root).to_be_visible()
    chat.wait_connected()
    expect(chat.root.locator(".jp-OpenFoal-title")).to_have_text("New session")
    expect(chat.root.locator(".jp-OpenFoal-empty")).to_contain_text("Enter sends")
