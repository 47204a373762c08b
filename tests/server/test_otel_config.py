"""When the standard ``OTEL_*`` variables turn trace export on."""

from __future__ import annotations

import logging
import sys

import pytest
from opentelemetry import trace

from openfoal_server_ext.services import otel
from openfoal_server_ext.services.otel import wanted_by_env


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, True),
    ],
)
def test_wanted_by_env(env: dict[str, str], wanted: bool) -> None:
    assert wanted_by_env(env) is wanted


def test_export_without_the_sdk_warns_and_stays_a_no_op(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the API installed: asking for export logs one warning, spans are no-ops."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.resources", None)
    monkeypatch.setattr(otel, "_configured", None)
    with caplog.at_level(logging.WARNING):
        assert otel.configure(True) is False
    assert "SDK is not installed" in caplog.text
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with otel.request_span("agent.run", user="u", request_id="r1", trace_id=trace_id) as span:
        assert not span.is_recording()
        otel.run_started(
            "run_1", trace_id=trace_id, session_id="s", model="m", mode="local", task="turn"
        )
        otel.tool_started("run_1", {"toolCallId": "c1", "toolName": "file.read"})
        otel.audit("aud_1", "tool.call", "tool:file.read", trace_id, "run_1", {"toolCallId": "c1"})
        otel.tool_ended("run_1", {"toolCallId": "c1", "status": "success"})
        otel.run_ended("run_1", "completed", {"inputTokens": 1})
    assert "run_1" not in otel.open_runs()


def test_export_off_does_nothing() -> None:
    assert otel.configure(False) is False
