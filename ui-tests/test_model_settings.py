"""The model settings form: from the first-run choice to a saved model that answers the chat."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect
from test_approvals import use_theme
from test_first_run import NO_MODEL

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
FORM = "#openfoal-model-settings"
SECRET = "sk-ui-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def bare_lab(
    tmp_path_factory: pytest.TempPathFactory, installed_extension: object
) -> Iterator[LabServer]:
    """JupyterLab with no model configured at all."""
    server = LabServer(tmp_path_factory.mktemp("model-lab"), NO_MODEL)
    server.start()
    yield server
    server.stop()


def test_configure_test_save_and_chat_with_the_saved_model(
    page: Page, bare_lab: LabServer, model: ScriptedModelServer
) -> None:
    """Configure a model opens the form; a refused test says why; a good one passes; saved
    settings answer the next message, and the key is never shown back or kept in the browser."""
    chat = ChatPanel.open_lab(page, bare_lab).open_from_sidebar()
    chat.send("hello")
    notice = chat.root.locator(".jp-OpenFoal-noModel")
    expect(notice).to_be_visible(timeout=60_000)
    chat.wait_idle()
    notice.get_by_role("button", name="Configure a model").click()
    form = page.locator(FORM)
    expect(form).to_be_visible(timeout=30_000)
    expect(form.locator(".jp-OpenFoal-modelActive")).to_have_text("No model is configured yet.")

    form.get_by_label("Provider").select_option("openai")
    form.get_by_label("Model id").fill("scripted")
    # a server that is not there: the test says so, with its code
    form.get_by_label("Base URL (optional)").fill("http://127.0.0.1:9/v1")
    form.get_by_label("API key").fill(SECRET)
    form.get_by_role("button", name="Test connection").click()
    status = form.locator(".jp-OpenFoal-modelStatus")
    expect(status).to_have_attribute("data-kind", "error", timeout=60_000)
    expect(status.locator(".jp-OpenFoal-errorCode")).to_have_text("MODEL_UNAVAILABLE")

    model.enqueue(Reply.of(TextStep(text="ok")))
    form.get_by_label("Base URL (optional)").fill(model.openai_base_url)
    form.get_by_role("button", name="Test connection").click()
    expect(status).to_have_attribute("data-kind", "ok", timeout=60_000)
    expect(status).to_contain_text("Connection works: openai:scripted answered")
    assert model.requests[-1].body["model"] == "scripted"
    SCREENSHOTS.mkdir(exist_ok=True)
    form.screenshot(path=str(SCREENSHOTS / "model-settings-light.png"))
    use_theme(page, chat, "JupyterLab Dark")
    form.screenshot(path=str(SCREENSHOTS / "model-settings-dark.png"))
    use_theme(page, chat, "JupyterLab Light")

    form.get_by_role("button", name="Save").click()
    expect(status).to_contain_text("Saved. New runs use openai:scripted.", timeout=30_000)
    expect(form.get_by_label("API key")).to_have_value("")
    expect(form.locator(".jp-OpenFoal-modelSettings")).to_have_attribute("data-has-key", "true")
    expect(form.locator(".jp-OpenFoal-modelKeyNote")).to_contain_text("A key is saved")
    saved = bare_lab.base / "config" / "openfoal" / "model.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["apiKey"] == SECRET

    # After a reload the form (from the palette) shows the settings but never the key.
    page.goto(bare_lab.lab_url)
    page.locator(".jp-LauncherCard").first.wait_for(timeout=60_000)
    chat = ChatPanel(page)
    chat.run_command("OpenFoal Model Settings")
    form = page.locator(FORM)
    expect(form.get_by_label("Model id")).to_have_value("scripted", timeout=30_000)
    expect(form.get_by_label("API key")).to_have_value("")
    expect(form.locator(".jp-OpenFoal-modelActive")).to_contain_text("openai:scripted")
    assert SECRET not in page.content()
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert SECRET not in stored

    # New runs use the saved model: the chat gets an answer instead of the first-run choice.
    model.enqueue(Reply.of(TextStep(text="Hello from the saved model.")))
    chat.open_from_sidebar()
    chat.send("hello again")
    expect(chat.entries("assistant").last).to_contain_text(
        "Hello from the saved model.", timeout=60_000
    )
    chat.wait_idle()
    headers = {k.lower(): v for k, v in model.requests[-1].headers.items()}
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_the_chat_header_opens_the_form(page: Page, bare_lab: LabServer) -> None:
    """The header's Model settings button opens the same form, keyboard first."""
    chat = ChatPanel.open_lab(page, bare_lab).open_from_sidebar()
    button = chat.button("Model settings")
    button.focus()
    page.keyboard.press("Enter")
    form = page.locator(FORM)
    expect(form).to_be_visible(timeout=30_000)
    expect(form.get_by_label("Provider")).to_be_enabled()
    expect(form.get_by_role("button", name="Save")).to_be_visible()
