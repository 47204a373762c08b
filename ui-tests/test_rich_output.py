"""Rich outputs of python.exec (a table, an image) render inline in the tool card."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser

#: An 8x8 red PNG.
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGM4ISeHFTEMLQkAkL9BAbK"
    "fPiIAAAAASUVORK5CYII="
)
CODE = (
    "import base64\n"
    "from IPython.display import HTML, Image, display\n"
    "display(HTML('<table><tr><th>city</th><th>visits</th></tr>"
    "<tr><td>Oslo</td><td>3</td></tr></table>'))\n"
    f"display(Image(data=base64.b64decode('{PNG_B64}')))\n"
    "'shown'"
)


@pytest.fixture
def python_allowed(lab: LabServer) -> Iterator[None]:
    """Local python.exec is high risk (gated by default); this test opens it explicitly."""

    def update(tools: dict[str, str]) -> None:
        version = lab.api("policy.get")["policy"]["version"]
        lab.api(
            "policy.update",
            {
                "patch": {"tools": tools},
                "expectedVersion": version,
                "idempotencyKey": uuid.uuid4().hex,
            },
        )

    update({"python.exec": "allow"})
    yield
    update({})


def test_python_displays_render_in_the_card(
    page: Page, lab: LabServer, model: ScriptedModelServer, python_allowed: None
) -> None:
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    chat.new_session()
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": CODE})),
        Reply.of(TextStep(text="Here is the table and the chart.")),
    )
    chat.send("show me the visits")
    card = chat.entries("tool").last
    expect(card).to_have_attribute("data-tool", "python.exec")
    expect(card).to_have_attribute("data-status", "success", timeout=60_000)
    chat.wait_idle()
    table = card.locator(".jp-OpenFoal-display table")
    expect(table).to_be_visible()
    expect(table.locator("td").first).to_have_text("Oslo")
    image = card.locator(".jp-OpenFoal-display img")
    expect(image).to_be_visible()
    width = image.evaluate("img => img.naturalWidth")
    assert width == 8, f"the PNG did not decode (naturalWidth {width})"
    expect(chat.entries("assistant").last).to_contain_text("Here is the table and the chart.")
