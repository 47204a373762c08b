"""The gate link of a parked cell (``<lab>?openfoal-gate=<gateId>``) opens that gate."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from labserver import LabServer
from playwright.sync_api import Locator, Page, expect
from test_approvals import APPROVALS

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser
FOCUSED = re.compile(r"\bjp-mod-focused\b")


def _pending_gate(lab: LabServer, code: str, timeout: float = 90.0) -> dict[str, Any]:
    """The pending gate of the python.exec call running ``code``, once the run raised it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for gate in lab.api("policy-gate.list", {"status": "pending"})["items"]:
            if gate["args"].get("code") == code:
                return gate
        time.sleep(0.5)
    raise AssertionError(f"no pending gate for {code!r}:\n{lab.log()}")


def _open_link(page: Page, lab: LabServer, gate_id: str) -> Locator:
    page.goto(f"{lab.url}lab?openfoal-gate={gate_id}&token={lab.token}")
    panel = page.locator(APPROVALS)
    expect(panel).to_be_visible(timeout=60_000)
    return panel


def test_gate_link_opens_the_gate_highlighted_and_approves_it(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """The link opens Approvals on the gate; Approve decides it; once decided (filtered out by
    the default "pending" filter) the link still shows it with its status; an unknown id says
    so."""
    code = "print('from the link', 6 * 7)"
    model.enqueue(
        Reply.of(ToolCallStep(name="python.exec", arguments={"code": code})),
        Reply.of(TextStep(text="It ran.")),
    )
    lab.api("agent.run", {"input": "run it", "idempotencyKey": uuid.uuid4().hex})
    gate_id = _pending_gate(lab, code)["gateId"]

    panel = _open_link(page, lab, gate_id)
    item = panel.locator(f'.jp-OpenFoal-approvalsItem[data-gate-id="{gate_id}"]')
    expect(item).to_have_class(FOCUSED, timeout=30_000)
    expect(item).to_be_in_viewport()
    expect(panel.locator(".jp-OpenFoal-approvalsFocus")).to_contain_text(gate_id)
    expect(panel.locator(".jp-mod-focused")).to_have_count(1)
    card = item.locator(".jp-OpenFoal-gate")
    expect(card).to_have_attribute("data-gate-status", "pending")
    card.get_by_role("button", name="Approve", exact=True).click()
    expect(card).to_have_attribute("data-gate-status", "approved", timeout=30_000)
    approved = lab.api("policy-gate.list", {"status": "approved"})["items"]
    assert any(g["gateId"] == gate_id for g in approved)

    # Decided, the gate is filtered out of "pending", yet the link still shows it.
    panel = _open_link(page, lab, gate_id)
    expect(panel.locator(".jp-OpenFoal-approvalsFilter")).to_have_value("pending")
    item = panel.locator(f'.jp-OpenFoal-approvalsItem[data-gate-id="{gate_id}"]')
    expect(item).to_have_class(FOCUSED, timeout=30_000)
    expect(item.locator(".jp-OpenFoal-gate")).to_have_attribute("data-gate-status", "approved")
    expect(panel.locator(".jp-OpenFoal-approvalsFocus")).to_contain_text("filters hide it")

    # A gate the server does not know.
    panel = _open_link(page, lab, "gate-does-not-exist")
    note = panel.locator('.jp-OpenFoal-approvalsFocus[data-found="false"]')
    expect(note).to_contain_text("does not exist or is not visible to you", timeout=30_000)
    expect(panel.locator(".jp-mod-focused")).to_have_count(0)
