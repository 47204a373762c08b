"""Exporting a chat session as a notebook from the chat header, then reading it in JupyterLab."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep

pytestmark = pytest.mark.browser


def test_export_button_saves_and_opens_the_session_notebook(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    chat = ChatPanel.open_lab(page, lab).open_from_sidebar()
    export = chat.button("Export the session as a notebook")
    expect(export).to_be_disabled()  # nothing to export before the first turn
    model.enqueue(Reply.of(TextStep(text="The answer is forty-two.")))
    chat.send("what is the answer?")
    chat.wait_idle()
    expect(chat.entries("assistant").last).to_contain_text("forty-two")
    expect(export).to_be_enabled()
    export.click()
    # the notebook opens in the main area as a notebook document with the conversation
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook).to_have_count(1, timeout=30_000)
    cells = notebook.locator(".jp-MarkdownCell")
    expect(cells).to_have_count(2, timeout=30_000)
    expect(cells.first).to_contain_text("User: what is the answer?")
    expect(cells.last).to_contain_text("Assistant: The answer is forty-two.")
    files = list(lab.root.glob("ses_*.ipynb"))
    assert len(files) == 1, files
    saved = _saved_notebook(files[0])
    assert saved["metadata"]["openfoal"]["sessionId"] == files[0].stem
    assert saved["metadata"]["openfoal"]["auditHash"].startswith("sha256:")
    # the session browser exports any listed session the same way
    files[0].unlink()
    chat.button("Browse sessions").click()
    exports = chat.root.locator('.jp-OpenFoal-sessions [data-action="export-session"]')
    expect(exports).to_have_count(1)
    expect(exports.first).to_have_attribute(
        "aria-label", re.compile(r"^Export session .+ notebook$")
    )
    exports.first.click()
    assert _saved_notebook(files[0])["metadata"]["openfoal"]["sessionId"] == files[0].stem


def _saved_notebook(path: Path, timeout_s: float = 30.0) -> dict:
    """The notebook a click saves, once the file is there and whole (the save writes it in
    steps, so an existing file may still be empty for a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # waiting for a condition: the whole file
