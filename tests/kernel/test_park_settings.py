"""The parking settings of the agent kernel: OPENFOAL_PARK_AFTER_S and the approval link."""

from __future__ import annotations

import pytest

from openfoal_kernel.kernel.park import (
    LAB_URL_ENV,
    PARK_ENV,
    gate_link,
    park_after_from_env,
    parked_text,
)


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
