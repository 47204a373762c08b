"""Page helpers: drive JupyterLab and the OpenFoal chat panel as a user would."""

from __future__ import annotations

from labserver import LabServer
from playwright.sync_api import Locator, Page, expect

PANEL = "#openfoal-chat"


class ChatPanel:
    """The OpenFoal chat panel inside a JupyterLab page."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.root = page.locator(PANEL)

    @classmethod
    def open_lab(cls, page: Page, lab: LabServer) -> ChatPanel:
        """Load JupyterLab and wait until its shell and the OpenFoal sidebar tab are there."""
        page.goto(lab.lab_url)
        page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
        page.locator(".jp-LauncherCard").first.wait_for(timeout=60_000)
        return cls(page)

    @property
    def tab(self) -> Locator:
        """The panel's tab in the right sidebar."""
        return self.page.locator('.jp-SideBar.jp-mod-right li[data-id="openfoal-chat"]')

    def open_from_sidebar(self) -> ChatPanel:
        """Click the sidebar tab and wait for a live connection."""
        self.tab.click()
        self.wait_connected()
        return self

    def wait_connected(self) -> None:
        """Wait until the panel is shown and its gateway connection is open."""
        expect(self.root).to_be_visible()
        expect(self.root.locator('.jp-OpenFoal-connection[data-state="open"]')).to_have_count(
            1, timeout=30_000
        )

    @property
    def textarea(self) -> Locator:
        """The message box."""
        return self.root.get_by_role("textbox", name="Message")

    def dismiss_dialogs(self) -> None:
        """Close JupyterLab dialogs (e.g. "Server Connection Error"), as a user would."""
        dialogs = self.page.locator(".jp-Dialog")
        while dialogs.count():
            dialogs.first.locator(".jp-Dialog-button").last.click()
            self.page.wait_for_timeout(200)

    def send(self, text: str) -> None:
        """Type a message and press Enter; the box empties once the panel took it."""
        self.dismiss_dialogs()
        self.textarea.fill(text)
        self.textarea.press("Enter")
        expect(self.textarea).to_have_value("")

    def button(self, name: str) -> Locator:
        """A control of the panel by its accessible name."""
        return self.root.get_by_role("button", name=name, exact=True)

    @property
    def stop_button(self) -> Locator:
        """The stop button (shown while a run is in progress)."""
        return self.button("Stop the run")

    @property
    def send_button(self) -> Locator:
        """The send button."""
        return self.button("Send message")

    def entries(self, kind: str) -> Locator:
        """Chat entries of one kind: user, assistant, tool, error, notice."""
        return self.root.locator(f".jp-OpenFoal-entry-{kind}")

    def wait_idle(self, timeout: float = 60_000) -> None:
        """Wait until no run is in progress."""
        expect(self.root.locator('.jp-OpenFoal-input[data-running="false"]')).to_have_count(
            1, timeout=timeout
        )
        expect(self.send_button).to_be_enabled(timeout=timeout)

    def new_session(self) -> None:
        """Start a new session with the header button."""
        self.button("New session").click()
        expect(self.root.locator(".jp-OpenFoal-title")).to_have_text("New session")

    def run_command(self, label: str) -> None:
        """Run a command from the command palette by its label."""
        self.page.keyboard.press("Control+Shift+C")
        palette = self.page.locator(".lm-CommandPalette-input")
        palette.fill(label)
        self.page.locator(".lm-CommandPalette-item", has_text=label).first.click()
