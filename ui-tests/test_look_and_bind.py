"""Themes (screenshots kept as artifacts) and binding the chat to an open notebook."""

from __future__ import annotations

import json

import pytest
from chat import ChatPanel
from conftest import ARTIFACTS
from labserver import LabServer
from playwright.sync_api import Page, WebSocket, expect

from openfoal_kernel.scripted import ErrorStep, Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser

ANSWER = (
    "The file list is below. A **quick** summary:\n\n"
    "```python\nimport pandas as pd\ndf = pd.read_csv('data.csv')\n```"
)


def luminance(css_color: str) -> float:
    """Relative brightness of an ``rgb(r, g, b)`` colour, 0..255."""
    r, g, b = (float(v) for v in css_color[css_color.index("(") + 1 : -1].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def panel_background(chat: ChatPanel) -> str:
    """The panel's computed background colour."""
    return chat.root.evaluate("node => getComputedStyle(node).backgroundColor")


def test_panel_follows_light_and_dark_themes(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """The same conversation in JupyterLab Light and Dark; screenshots go to test-artifacts/."""
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    model.enqueue(
        Reply.of(ToolCallStep(name="file.list", arguments={"path": "."})),
        Reply.of(TextStep(text=ANSWER)),
        *[Reply.of(ErrorStep(status=400, message="scripted refusal"))] * 3,
    )
    chat.send("What files do I have?")
    chat.wait_idle()
    chat.entries("tool").last.locator(".jp-OpenFoal-toolHeader").click()
    chat.send("and now fail")
    expect(chat.entries("error").last).to_be_visible(timeout=60_000)
    chat.wait_idle()
    chat.textarea.fill("A draft message")
    ARTIFACTS.mkdir(exist_ok=True)

    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true")
    light = panel_background(chat)
    chat.root.screenshot(path=str(ARTIFACTS / "chat-panel-light.png"))
    page.screenshot(path=str(ARTIFACTS / "lab-light.png"))

    chat.run_command("Use Theme: JupyterLab Dark")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    expect(chat.root).to_be_visible()
    page.wait_for_timeout(500)  # the theme's stylesheet applies after the attribute flips
    dark = panel_background(chat)
    chat.root.screenshot(path=str(ARTIFACTS / "chat-panel-dark.png"))
    page.screenshot(path=str(ARTIFACTS / "lab-dark.png"))
    assert luminance(dark) < luminance(light) - 100, (light, dark)

    chat.run_command("Use Theme: JupyterLab Light")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true")


def test_chat_binds_to_the_open_notebook(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """Bound to a notebook, agent.run carries that notebook's kernel id; unbound, it does not."""
    runs: list[dict[str, object]] = []

    def watch(ws: WebSocket) -> None:
        if "/openfoal/ws" not in ws.url:
            return  # kernel sockets carry binary frames

        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("method") == "agent.run":
                runs.append(frame["params"])

        ws.on("framesent", sent)

    page.on("websocket", watch)
    chat = ChatPanel.open_lab(page, lab)
    page.locator(".jp-LauncherCard", has_text="Python 3").first.click()
    expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=30_000)
    # The kernel's status item reads "Idle" once the kernel is connected.
    expect(page.locator("#jp-main-statusbar")).to_contain_text(
        "Python 3 (ipykernel) | Idle", timeout=60_000
    )
    chat.open_from_sidebar()
    bind = chat.root.locator('[data-action="bind-notebook"]')
    expect(bind).to_have_attribute("aria-pressed", "false")
    bind.click()
    expect(bind).to_have_attribute("aria-pressed", "true")
    expect(bind).to_contain_text("Untitled.ipynb")

    chat.new_session()
    chat.send("use my notebook")
    chat.wait_idle()
    sessions = lab.jupyter_api("api/sessions")
    kernel_id = next(s["kernel"]["id"] for s in sessions if s["path"].endswith("Untitled.ipynb"))
    assert runs and runs[-1]["notebookKernelId"] == kernel_id
    assert runs[-1]["notebookPath"] == "Untitled.ipynb"

    bind.click()
    expect(bind).to_have_attribute("aria-pressed", "false")
    chat.send("not bound now")
    chat.wait_idle()
    assert len(runs) == 2 and "notebookKernelId" not in runs[-1]
