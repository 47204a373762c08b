"""The Sync panel in JupyterLab: opened from the launcher and the palette, it shows where sync
stands, lists a dead letter (the cloud refused a chunk on its content), discards it, and
pauses and resumes the pushes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

from openfoal_testing.plugin import scripted_env
from openfoal_testing.sync_proxy import SyncProxy

pytestmark = pytest.mark.browser

SYNC = "#openfoal-sync"


@pytest.fixture(scope="module")
def refusing_cloud() -> Iterator[SyncProxy]:
    """A cloud endpoint that refuses every batch on its content (400)."""
    proxy = SyncProxy("http://127.0.0.1:9/")
    proxy.mode = "refuse400"
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def sync_lab(
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: object,
    installed_extension: object,
    refusing_cloud: SyncProxy,
) -> Iterator[LabServer]:
    """JupyterLab whose server pushes to the refusing cloud."""
    env = {
        **scripted_env(scripted_model),  # type: ignore[arg-type]
        "OPENFOAL_CLOUD_URL": refusing_cloud.url,
        "OPENFOAL_CLOUD_TOKEN": "ui-sync-token",
    }
    server = LabServer(tmp_path_factory.mktemp("sync-lab"), env)
    server.start()
    yield server
    server.stop()


def test_the_sync_panel_shows_and_acts_on_dead_letters_and_pauses(
    page: Page, sync_lab: LabServer
) -> None:
    ChatPanel.open_lab(page, sync_lab)
    page.locator(".jp-LauncherCard", has_text="OpenFoal Sync").first.click()
    panel = page.locator(SYNC)
    expect(panel).to_be_visible()
    expect(panel.locator('[data-fact="cloud"]')).to_have_text(sync_lab.env["OPENFOAL_CLOUD_URL"])
    # the refused chunks become dead letters (the panel refreshes on demand)
    refresh = panel.locator('[data-action="refresh"]')
    letters = panel.locator(".jp-OpenFoal-syncDead [role=listitem]")
    for _ in range(60):
        if letters.count():
            break
        refresh.click()
        page.wait_for_timeout(1000)
    expect(letters.first).to_be_visible()
    expect(letters.first.locator(".jp-OpenFoal-syncError")).to_contain_text("refused")
    expect(panel.locator(".jp-OpenFoal-syncConflicts")).to_contain_text("None.")
    # discard: gone from the list (the local rows stay)
    first_id = letters.first.get_attribute("data-id")
    letters.first.locator(".jp-OpenFoal-syncDiscard").click()
    expect(panel.locator(f'.jp-OpenFoal-syncDead [data-id="{first_id}"]')).to_have_count(0)
    # pause and resume
    pause = panel.locator(".jp-OpenFoal-syncPause")
    expect(pause).to_have_text("Pause")
    pause.click()
    expect(panel.locator('[data-fact="state"]')).to_have_text("paused")
    expect(pause).to_have_text("Resume")
    pause.click()
    expect(panel.locator('[data-fact="state"]')).not_to_have_text("paused")
    # the palette opens the same panel
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("OpenFoal Sync")
    page.locator(".lm-CommandPalette-item", has_text="OpenFoal Sync").first.click()
    expect(page.locator(SYNC)).to_have_count(1)
