"""The parking settings of the agent kernel: OPENFOAL_PARK_AFTER_S and the approval link."""

from __future__ import annotations

import pytest

from openfoal_kernel.kernel.park import (
    LAB_URL_ENV,
    PARK_ENV,
    gate_link,
    park_after_from_env,
    parked_result_text,
    parked_text,
)
from openfoal_kernel.protocol.kernel_wire import ParkedResult, parked_display_id


def test_park_after_defaults_to_parking_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARK_ENV, raising=False)
    assert park_after_from_env() == 0.0
    monkeypatch.setenv(PARK_ENV, " 30 ")
    assert park_after_from_env() == 30.0
    monkeypatch.setenv(PARK_ENV, "-1")
    assert park_after_from_env() == -1.0


@pytest.mark.parametrize("raw", ["soon", "nan", "inf", "1e999"])
def test_park_after_rejects_what_is_not_seconds(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(PARK_ENV, raw)
    with pytest.raises(ValueError, match=PARK_ENV):
        park_after_from_env()


def test_gate_link_uses_the_lab_url_or_the_hub_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAB_URL_ENV, "https://lab.internal/lab?reset")
    assert gate_link("gate_1") == "https://lab.internal/lab?reset&openfoal-gate=gate_1"
    monkeypatch.delenv(LAB_URL_ENV)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert gate_link("gate_1") == "/user/ada/lab?openfoal-gate=gate_1"
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    assert gate_link("gate_1") == "/lab?openfoal-gate=gate_1"


def test_parked_text_names_the_gate_the_tool_and_the_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(LAB_URL_ENV, raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    gate = {"gateId": "gate_x", "toolName": "bash.exec", "risk": "high", "sessionId": "nb_1"}
    text = parked_text(gate)
    assert text.startswith("Waiting for approval: bash.exec (high)")
    assert "gate_x" in text and "/lab?openfoal-gate=gate_x" in text and "nb_1" in text


def test_parked_result_text_says_how_the_continued_run_ended() -> None:
    common = {"gateId": "gate_1", "runId": "run_2", "sessionId": "nb_3"}
    done = ParkedResult(
        decision="approved", status="completed", toolOutput="42\n", text="It is 42.", **common
    )
    text = parked_result_text(done)
    assert text.startswith("Gate gate_1 was approved; the run continued and completed")
    assert "run run_2, session nb_3" in text
    assert text.index("Tool output:\n42") < text.index("It is 42.")
    failed = ParkedResult(
        decision="rejected", status="failed", text="MODEL_ERROR: no model", **common
    )
    text = parked_result_text(failed)
    assert "was rejected; the run continued and failed" in text
    assert "Tool output" not in text and text.endswith("MODEL_ERROR: no model")
    assert parked_display_id("gate_1") == "openfoal-gate-gate_1"
