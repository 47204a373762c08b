"""Schemathesis against the server's own ``openapi.json``: no operation answers a server error.

The document is fetched from a real server (rate limits off), and every operation in it gets
generated bodies, valid (positive) and invalid (negative) ones. Each answer must be below
500 and structured: a JSON object with ``ok``, and on ``ok: false`` an ``error`` with a
protocol code. Left out: the operations that start work which would hang or leave the
machine (``agent.run`` starts a model run, ``model.test`` calls the provider,
``runtime.setMode`` can start a sandbox). ``OPENFOAL_FUZZ_OPENAPI_EXAMPLES`` sets the
examples per operation (default 25).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from openfoal_kernel.protocol import ErrorCode
from openfoal_kernel.scripted import ScriptedModelServer
from openfoal_testing.plugin import UNLIMITED_RATES, ServerProcess, module_server

EXAMPLES = int(os.environ.get("OPENFOAL_FUZZ_OPENAPI_EXAMPLES", "25"))
LEFT_OUT = {"agent.run", "kernels.attach", "model.test", "runtime.setMode"}
CODES = {c.value for c in ErrorCode}


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, scripted_model: ScriptedModelServer
) -> Iterator[ServerProcess]:
    with module_server(
        tmp_path_factory,
        scripted_model,
        "openapi-fuzz",
        ["--KernelOrchestrator.pool_size=0", *UNLIMITED_RATES],
    ) as server:
        yield server


@pytest.fixture(scope="module")
def openapi_schema(fuzz_server: ServerProcess) -> schemathesis.BaseSchema:
    r = httpx.get(
        fuzz_server.url + "openfoal/api/openapi.json",
        headers={"Authorization": f"token {fuzz_server.token}"},
        timeout=30,
    )
    r.raise_for_status()
    document = r.json()
    document["paths"] = {
        path: item
        for path, item in document["paths"].items()
        if item["post"]["operationId"] not in LEFT_OUT
    }
    assert len(document["paths"]) >= 15, sorted(document["paths"])
    return schemathesis.openapi.from_dict(document)


def _check(case: schemathesis.Case, server: ServerProcess) -> None:
    response = case.call(
        base_url=server.url.rstrip("/"),
        headers={"Authorization": f"token {server.token}"},
        timeout=30,
    )
    assert response.status_code < 500, (case.operation.label, response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("ok"), bool), response.text
    if body["ok"] is False:
        assert body["error"]["code"] in CODES, response.text


def test_no_server_error(
    openapi_schema: schemathesis.BaseSchema, fuzz_server: ServerProcess
) -> None:
    tried = 0
    for result in openapi_schema.get_all_operations():
        operation = result.ok()

        @given(
            case=operation.as_strategy(GenerationMode.POSITIVE)
            | operation.as_strategy(GenerationMode.NEGATIVE)
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def each(case: schemathesis.Case) -> None:
            _check(case, fuzz_server)

        try:
            each()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}\n{fuzz_server.log()[-4000:]}") from exc
        tried += 1
    assert tried >= 15
