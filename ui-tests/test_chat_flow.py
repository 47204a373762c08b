"""Chatting through the real gateway and agent kernel, with the scripted model."""

from __future__ import annotations

import re
import time

import pytest
from chat import ChatPanel
from labserver import LabServer
from playwright.sync_api import Page, expect

from openfoal_kernel.scripted import (
    ErrorStep,
    Reply,
    ScriptedModelServer,
    TextStep,
    ToolCallStep,
)

pytestmark = pytest.mark.browser

ANSWER = (
    "Here is **bold** text and a list:\n\n- one\n- two\n\n"
    "```python\ndef square(x):\n    return x * x\n```\n\nThat is all."
)


@pytest.fixture
def chat(page: Page, lab: LabServer) -> ChatPanel:
    """JupyterLab with the chat panel open and connected."""
    return ChatPanel.open_lab(page, lab).open_from_sidebar()


def slow_text(text: str, seconds: float) -> Reply:
    """A reply that streams ``text`` over about ``seconds``."""
    chunks = max(1, len(text) // 4)
    return Reply.of(TextStep(text=text, chunk_size=4, chunk_delay_s=seconds / chunks))


def test_answer_streams_in_as_markdown(chat: ChatPanel, model: ScriptedModelServer) -> None:
    """Deltas render progressively; the end result is Markdown with a highlighted code block."""
    model.enqueue(slow_text(ANSWER, 2.0))
    chat.send("show me markdown")
    expect(chat.entries("user")).to_have_text(["show me markdown"])
    assistant = chat.entries("assistant").last
    expect(chat.stop_button).to_be_visible()
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rendered = assistant.get_attribute("data-rendered") if assistant.count() else None
        if rendered:
            seen.add(int(rendered))
        if rendered and int(rendered) == len(ANSWER):
            break
        time.sleep(0.05)
    assert len(ANSWER) in seen, seen
    assert any(0 < n < len(ANSWER) for n in seen), f"no partial render seen: {seen}"
    chat.wait_idle()
    expect(assistant.locator("strong")).to_have_text("bold")
    expect(assistant.locator("li")).to_have_count(2)
    code = assistant.locator("pre code")
    expect(code).to_contain_text("def square(x):")
    assert code.locator("span").count() > 0, "the code block is not highlighted"
    expect(assistant).not_to_have_class(re.compile("jp-OpenFoal-streaming"))
    expect(chat.stop_button).to_be_hidden()


def test_tool_call_shows_as_a_card(chat: ChatPanel, model: ScriptedModelServer) -> None:
    """agent.tool_call / agent.tool_result become a card: name, args, status, duration, output."""
    model.enqueue(
        Reply.of(ToolCallStep(name="file.list", arguments={"path": "."})),
        Reply.of(TextStep(text="Listed the files.")),
    )
    chat.send("list my files")
    card = chat.entries("tool").last
    expect(card).to_have_attribute("data-tool", "file.list")
    expect(card).to_have_attribute("data-status", re.compile("success|failed"), timeout=30_000)
    chat.wait_idle()
    header = card.locator(".jp-OpenFoal-toolHeader")
    expect(header).to_have_attribute("aria-expanded", "false")
    expect(card.locator(".jp-OpenFoal-toolDuration")).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    expect(card.locator(".jp-OpenFoal-toolBody")).to_be_hidden()
    header.click()
    expect(header).to_have_attribute("aria-expanded", "true")
    expect(card.locator(".jp-OpenFoal-toolArgs")).to_contain_text('"path": "."')
    expect(card.locator(".jp-OpenFoal-toolOutput")).not_to_be_empty()
    expect(chat.entries("assistant").last).to_contain_text("Listed the files.")


def test_stop_button_aborts_the_run(chat: ChatPanel, model: ScriptedModelServer) -> None:
    """The stop button sends agent.abort; the run ends and the panel is ready again."""
    model.enqueue(slow_text("word " * 400, 60.0))
    chat.send("write a long essay")
    expect(chat.entries("assistant").last).to_contain_text("word", timeout=30_000)
    chat.stop_button.click()
    expect(chat.entries("notice").last).to_have_text("Stopped", timeout=30_000)
    chat.wait_idle(timeout=30_000)
    expect(chat.stop_button).to_be_hidden()
    text = chat.entries("assistant").last.inner_text()
    assert text.count("word") < 400, "the run was not stopped"


def test_failed_run_shows_code_message_and_trace(
    chat: ChatPanel, model: ScriptedModelServer
) -> None:
    """A model that refuses the request ends the run with an error card carrying its trace id."""
    model.enqueue(*[Reply.of(ErrorStep(status=400, message="scripted refusal"))] * 3)
    chat.send("this will fail")
    error = chat.entries("error").last
    expect(error).to_be_visible(timeout=60_000)
    expect(error).to_have_attribute("role", "alert")
    expect(error.locator(".jp-OpenFoal-errorCode")).to_have_text(re.compile(r"^[A-Z_]+$"))
    expect(error.locator(".jp-OpenFoal-errorMessage")).not_to_be_empty()
    expect(error.locator(".jp-OpenFoal-errorTrace")).to_have_text(re.compile(r"^trace \S+"))
    chat.wait_idle()


def test_mode_change_is_queued_during_a_run(chat: ChatPanel, model: ScriptedModelServer) -> None:
    """runtime.setMode during a run shows as queued; runtime.mode_changed applies it."""
    chat.new_session()
    local = chat.root.locator('.jp-OpenFoal-modeButton[data-mode="local"]')
    cloud = chat.root.locator('.jp-OpenFoal-modeButton[data-mode="cloud"]')
    expect(local).to_have_attribute("aria-pressed", "true")
    model.enqueue(slow_text("tick " * 200, 30.0))
    chat.send("keep talking")
    expect(chat.entries("assistant").last).to_contain_text("tick", timeout=30_000)
    cloud.click()
    pending = chat.root.locator(".jp-OpenFoal-pendingMode")
    expect(pending).to_have_text("cloud on next turn")
    expect(local).to_have_attribute("aria-pressed", "true")
    # Escape in the message box stops the run; the queued change then takes effect.
    chat.textarea.press("Escape")
    chat.wait_idle(timeout=30_000)
    expect(cloud).to_have_attribute("aria-pressed", "true", timeout=30_000)
    expect(pending).to_be_hidden()
    # With no run going, a change applies at once.
    local.click()
    expect(local).to_have_attribute("aria-pressed", "true")
    expect(pending).to_be_hidden()


def test_sessions_can_be_browsed_and_switched(chat: ChatPanel, model: ScriptedModelServer) -> None:
    """sessions.list shows each session; choosing one loads its transcript."""
    chat.new_session()
    chat.send("alpha question")
    expect(chat.entries("assistant").last).to_contain_text("echo: alpha question")
    chat.wait_idle()
    chat.new_session()
    expect(chat.entries("user")).to_have_count(0)
    chat.send("beta question")
    expect(chat.entries("assistant").last).to_contain_text("echo: beta question")
    chat.wait_idle()

    chat.button("Browse sessions").click()
    items = chat.root.locator(".jp-OpenFoal-sessionItem")
    alpha = items.filter(has_text="alpha question")
    expect(alpha).to_have_count(1)
    expect(items.filter(has_text="beta question")).to_have_attribute("aria-current", "true")
    expect(alpha.locator(".jp-OpenFoal-badge").first).to_have_text("local")
    alpha.click()
    expect(chat.entries("user")).to_have_text(["alpha question"])
    expect(chat.entries("assistant")).to_have_count(1)
    expect(chat.entries("assistant").first).to_contain_text("echo: alpha question")
    expect(chat.root.locator(".jp-OpenFoal-usage")).to_contain_text("Context")

    # The reopened session goes on where it was.
    chat.send("alpha again")
    expect(chat.entries("assistant").last).to_contain_text("echo: alpha again")
    chat.wait_idle()
    expect(chat.entries("user")).to_have_text(["alpha question", "alpha again"])
