"""Every request gets exactly one structured answer, whatever its bytes; limits count bytes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.protocol.methods import METHOD_PARAMS
from openfoal_testing.plugin import ServerProcess

REST_METHODS = sorted(m for m in METHOD_PARAMS if m != "connect")


def _assert_error(frame: dict, code: str, req_id: str | None = None) -> None:
    assert frame["type"] == "res" and frame["ok"] is False, frame
    err = frame["error"]
    assert err["code"] == code, err
    assert err["message"] and isinstance(err["retryable"], bool) and len(err["traceId"]) == 32
    if req_id is not None:
        assert frame["id"] == req_id


def _assert_rest_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["ok"] is False and body["error"]["code"] == code, body
    assert body["error"]["message"] and len(body["error"]["traceId"]) == 32
    return body


@pytest.mark.parametrize("traceparent", [7, [1, 2], {"a": 1}, True])
@pytest.mark.asyncio
async def test_non_string_traceparent_is_answered(
    shared_server: ServerProcess, traceparent: object
) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        frame = {"type": "req", "id": "tp", "method": "sessions.list", "params": {}}
        await c.send_raw(json.dumps({**frame, "traceparent": traceparent}))
        _assert_error(await c.next_event(10), "INVALID_REQUEST", "tp")
        in_params = {**frame, "id": "tp2", "params": {"traceparent": traceparent}}
        await c.send_raw(json.dumps(in_params))
        _assert_error(await c.next_event(10), "INVALID_REQUEST", "tp2")
        # the connection still answers
        assert (await c.request("sessions.list", {}))["items"] is not None


@pytest.mark.parametrize("depth", [100, 5_000])
@pytest.mark.asyncio
async def test_deeply_nested_params_get_a_res(shared_server: ServerProcess, depth: int) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        nested = "[" * depth + "]" * depth
        await c.send_raw(
            '{"type":"req","id":"deep","method":"sessions.list","params":{"q":' + nested + "}}"
        )
        _assert_error(await c.next_event(10), "INVALID_REQUEST", "deep")
        assert (await c.request("sessions.list", {}))["items"] is not None


@pytest.mark.asyncio
async def test_pre_connect_limit_counts_bytes(shared_server: ServerProcess) -> None:
    # 30,000 euro signs are 30,000 characters but 90,000 bytes: over the 64 KiB limit
    async with websockets.connect(
        shared_server.ws_url, additional_headers={"Authorization": f"token {shared_server.token}"}
    ) as ws:
        name = "€" * 30_000
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "c",
                    "method": "connect",
                    "params": {"client": {"name": name}},
                },
                ensure_ascii=False,
            )
        )
        _assert_error(json.loads(await ws.recv()), "INVALID_REQUEST")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.mark.parametrize("method", REST_METHODS)
def test_non_utf8_rest_body_is_a_structured_400(shared_server: ServerProcess, method: str) -> None:
    r = httpx.post(
        shared_server.url + f"openfoal/api/{method}",
        content=b'{"x": "\xff\xfe\xfa"}',
        headers={
            "Authorization": f"token {shared_server.token}",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    body = _assert_rest_error(r, 400, "INVALID_REQUEST")
    assert "UTF-8" in body["error"]["message"]


@pytest.mark.parametrize("method", ["audit.query", "metrics.summary"])
@pytest.mark.parametrize(
    "field,value",
    [
        ("from", "0001-01-01T01:03:04Z"),
        ("to", "9999-12-31T23:59:59-14:00"),
        ("from", "9999-12-31T23:59:59-14:00"),
        ("to", "0001-01-01T00:00:00+14:00"),
    ],
)
def test_out_of_range_dates_are_invalid(
    shared_server: ServerProcess, method: str, field: str, value: str
) -> None:
    r = shared_server.api(method, {field: value})
    body = _assert_rest_error(r, 400, "INVALID_REQUEST")
    assert "out of range" in body["error"]["message"]


def test_dates_in_range_still_work(shared_server: ServerProcess) -> None:
    for method in ("audit.query", "metrics.summary"):
        r = shared_server.api(
            method, {"from": "1900-01-01T00:00:00Z", "to": "9998-12-31T00:00:00Z"}
        )
        assert r.status_code == 200, r.text


def test_rest_without_auth_is_a_structured_401_and_audited(shared_server: ServerProcess) -> None:
    tp = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for method in ("sessions.list", "agent.run"):
        r = httpx.post(
            shared_server.url + f"openfoal/api/{method}",
            json={},
            headers={"traceparent": tp},
            timeout=30,
        )
        _assert_rest_error(r, 401, "UNAUTHORIZED")
        assert r.headers["WWW-Authenticate"].startswith("token")
    wrong = httpx.post(
        shared_server.url + "openfoal/api/sessions.list",
        json={},
        headers={"Authorization": "token wrong"},
        timeout=30,
    )
    _assert_rest_error(wrong, 401, "UNAUTHORIZED")
    doc = httpx.get(shared_server.url + "openfoal/api/openapi.json", timeout=30)
    _assert_rest_error(doc, 401, "UNAUTHORIZED")
    items = shared_server.api(
        "audit.query", {"action": "auth.refused", "traceId": tp.split("-")[1]}
    ).json()["payload"]["items"]
    assert len(items) == 2 and {i["actor"] for i in items} == {"anonymous"}
    assert {i["resource"] for i in items} == {
        "rest:/openfoal/api/sessions.list",
        "rest:/openfoal/api/agent.run",
    }


@pytest.mark.parametrize(
    "path,verb,allow",
    [
        ("openfoal/api/sessions.list", "GET", "POST"),
        ("openfoal/api/agent.run", "PUT", "POST"),
        ("openfoal/api/sessions.list", "DELETE", "POST"),
        ("openfoal/api/openapi.json", "POST", "GET"),
    ],
)
def test_405_carries_allow(shared_server: ServerProcess, path: str, verb: str, allow: str) -> None:
    r = httpx.request(
        verb,
        shared_server.url + path,
        headers={"Authorization": f"token {shared_server.token}"},
        json={},
        timeout=30,
    )
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == allow
    assert r.json()["error"]["code"] == "METHOD_NOT_FOUND"


def test_openapi_lists_only_offered_methods_and_common_errors(shared_server: ServerProcess) -> None:
    doc = httpx.get(
        shared_server.url + "openfoal/api/openapi.json",
        headers={"Authorization": f"token {shared_server.token}"},
        timeout=30,
    ).json()
    listed = {p.removeprefix("/openfoal/api/") for p in doc["paths"]}
    for method in listed:
        r = shared_server.api(method, {})
        assert r.json().get("error", {}).get("code") != "METHOD_NOT_FOUND", method
    responses = doc["paths"]["/openfoal/api/sessions.list"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
