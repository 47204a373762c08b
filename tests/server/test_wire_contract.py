"""The typed wire contract: result and payload models, the schema export, the generated TS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
from pydantic import ValidationError

from openfoal_kernel.protocol import Session
from openfoal_kernel.protocol import events as ev
from openfoal_kernel.protocol.methods import METHOD_PARAMS
from openfoal_kernel.protocol.payloads import EVENT_PAYLOADS, AcceptedPayload, ToolResultPayload
from openfoal_kernel.protocol.results import (
    METHOD_RESULTS,
    MetricsSummaryResult,
    SessionsGetResult,
    SessionsListResult,
)
from openfoal_kernel.protocol.schema import protocol_schema
from openfoal_server_ext.gateway.methods import Gateway
from openfoal_server_ext.gateway.openapi import openapi_document
from openfoal_server_ext.services.container import Services

ROOT = Path(__file__).resolve().parents[2]


def test_every_served_method_has_params_and_a_result_model() -> None:
    served = set(Gateway(cast(Services, object())).handlers)
    assert served | {"connect"} == set(METHOD_RESULTS)
    assert set(METHOD_RESULTS) <= set(METHOD_PARAMS)


def test_every_event_has_a_payload_model() -> None:
    assert set(EVENT_PAYLOADS) == set(ev.EVENTS)


def test_side_effect_methods_in_the_schema() -> None:
    methods = protocol_schema()["methods"]
    side = {name for name, m in methods.items() if m["sideEffect"]}
    assert "sessions.delete" in side
    assert {"sync.resolve", "sync.pause", "sync.retry"} <= side
    assert "sync.status" in methods and "sync.status" not in side
    assert side == {
        "agent.run",
        "agent.abort",
        "runtime.setMode",
        "sessions.delete",
        "policy.update",
        "policy-gate.resolve",
        "memory.appendDaily",
        "memory.archive",
        "model.update",
        "kernels.attach",
        "sync.resolve",
        "sync.pause",
        "sync.resume",
        "sync.retry",
        "sync.discard",
    }


def test_results_keep_nulls_and_nested_types_drop_unset_optionals() -> None:
    session = Session(id="s1", sessionKey="workspace:w/agent:a/main", owner="ada")
    page = SessionsListResult(items=[session], nextCursor=None).wire()
    assert page["nextCursor"] is None
    assert "pendingRuntimeMode" not in page["items"][0]
    assert page["items"][0] == session.wire()
    got = SessionsGetResult(session=session).wire()
    assert set(got) == {"session"}
    metrics = MetricsSummaryResult.model_validate(
        {"metrics": {k: 0 for k in _int_metrics()}, "from": None, "to": "2026-01-01T00:00:00Z"}
    ).wire()
    assert metrics["from"] is None and metrics["metrics"]["p95LatencyMs"] is None


def _int_metrics() -> list[str]:
    fields = MetricsSummaryResult.model_fields["metrics"].annotation.model_fields  # type: ignore[union-attr]
    return [name for name, f in fields.items() if f.annotation is int]


def test_payload_models_validate_and_refuse() -> None:
    accepted = AcceptedPayload.model_validate(
        {"sessionId": "s", "runId": "r", "traceId": "t", "runtimeMode": "cloud", "model": "m"}
    )
    assert accepted.runtimeMode == "cloud"
    with pytest.raises(ValidationError):
        ToolResultPayload.model_validate(
            {
                "sessionId": "s",
                "runId": "r",
                "traceId": "t",
                "toolCallId": "c",
                "toolName": "bash.exec",
                "status": "exploded",
                "durationMs": 1,
            }
        )


def test_generated_typescript_matches_the_models() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protocol_ts.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = (ROOT / "labextension" / "src" / "protocol.generated.ts").read_text()
    assert '"sessions.delete"' in text and '"sync.resolve"' in text


def test_openapi_answers_are_the_result_models() -> None:
    doc = openapi_document()
    served = {path.rsplit("/", 1)[-1] for path in doc["paths"]}
    assert served == set(METHOD_RESULTS) - {"connect"}
    for method, result in METHOD_RESULTS.items():
        if method == "connect":
            continue
        answer = doc["paths"][f"/openfoal/api/{method}"]["post"]["responses"]["200"]
        payload = answer["content"]["application/json"]["schema"]["properties"]["payload"]
        assert payload == {"$ref": f"#/components/schemas/{result.__name__}"}
        assert result.__name__ in doc["components"]["schemas"]
