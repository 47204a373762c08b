"""Bad input gets a structured error and breaks nothing; unauthenticated sockets are refused."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


def _raw(server: ServerProcess) -> websockets.connect:
    return websockets.connect(
        server.ws_url, additional_headers={"Authorization": f"token {server.token}"}
    )


def _assert_error(frame: dict, code: str) -> None:
    assert frame["type"] == "res" and frame["ok"] is False
    err = frame["error"]
    assert err["code"] == code
    assert err["message"] and isinstance(err["retryable"], bool) and len(err["traceId"]) == 32


async def test_first_frame_must_be_connect(shared_server: ServerProcess) -> None:
    async with _raw(shared_server) as ws:
        await ws.send(
            json.dumps({"type": "req", "id": "x1", "method": "sessions.list", "params": {}})
        )
        _assert_error(json.loads(await ws.recv()), "INVALID_REQUEST")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_non_json_before_connect_closes(shared_server: ServerProcess) -> None:
    async with _raw(shared_server) as ws:
        await ws.send("this is not json")
        _assert_error(json.loads(await ws.recv()), "INVALID_REQUEST")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_oversized_frame_before_connect(shared_server: ServerProcess) -> None:
    async with _raw(shared_server) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "big",
                    "method": "connect",
                    "params": {"client": {"name": "x" * 70_000}},
                }
            )
        )
        _assert_error(json.loads(await ws.recv()), "INVALID_REQUEST")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_connect_with_bad_params(shared_server: ServerProcess) -> None:
    async with _raw(shared_server) as ws:
        await ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {}}))
        frame = json.loads(await ws.recv())
        _assert_error(frame, "INVALID_REQUEST")
        assert "client" in frame["error"]["message"]


async def test_connect_with_unsupported_protocol(shared_server: ServerProcess) -> None:
    async with _raw(shared_server) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": "c",
                    "method": "connect",
                    "params": {"client": {"name": "t"}, "protocol": {"min": 2, "max": 3}},
                }
            )
        )
        _assert_error(json.loads(await ws.recv()), "INVALID_REQUEST")


async def test_errors_after_connect_keep_the_connection(
    shared_server: ServerProcess, model
) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.send_raw("{not json")
        _assert_error(await c.next_event(5), "INVALID_REQUEST")
        await c.send_raw(json.dumps({"type": "req", "method": "sessions.list"}))  # no id
        _assert_error(await c.next_event(5), "INVALID_REQUEST")
        await c.send_raw(json.dumps([1, 2, 3]))
        _assert_error(await c.next_event(5), "INVALID_REQUEST")
        _assert_error(await c.request_frame("no.such.method", {}), "METHOD_NOT_FOUND")
        _assert_error(await c.request_frame("sessions.get", {}), "INVALID_REQUEST")
        _assert_error(await c.request_frame("sessions.get", {"sessionId": 42}), "INVALID_REQUEST")
        _assert_error(await c.request_frame("sessions.list", {"limit": -1}), "INVALID_REQUEST")
        _assert_error(
            await c.request_frame("agent.run", {"input": "x", "idempotencyKey": ""}),
            "INVALID_REQUEST",
        )
        no_key = await c.ws.send(
            json.dumps(
                {"type": "req", "id": "nk", "method": "agent.run", "params": {"input": "no key"}}
            )
        )
        assert no_key is None
        frame = await c.next_event(5)
        _assert_error(frame, "INVALID_REQUEST")
        assert "idempotencyKey" in frame["error"]["message"]
        _assert_error(await c.request_frame("agent.run", {"input": 5}), "INVALID_REQUEST")
        _assert_error(
            await c.request_frame("runtime.setMode", {"sessionId": "s", "runtimeMode": "moon"}),
            "INVALID_REQUEST",
        )
        # and the connection still works
        model.enqueue(Reply(steps=[TextStep(text="still here")]))
        _, events = await c.run("are you there?")
        assert events[-1]["event"] == "agent.completed"


async def test_params_echo_the_request_id(shared_server: ServerProcess) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.send_raw(
            json.dumps({"type": "req", "id": "mine-7", "method": "sessions.list", "params": {}})
        )
        frame = await c.next_event(5)
        assert frame["id"] == "mine-7" and frame["ok"] is True


@pytest.mark.parametrize(
    "headers,query", [({}, ""), ({"Authorization": "token wrong"}, ""), ({}, "?token=wrong")]
)
async def test_unauthenticated_socket_is_refused(
    shared_server: ServerProcess, headers, query
) -> None:
    with pytest.raises(InvalidStatus) as err:
        await websockets.connect(shared_server.ws_url + query, additional_headers=headers)
    assert err.value.response.status_code == 403


async def test_foreign_origin_is_refused(shared_server: ServerProcess) -> None:
    # a browser page elsewhere carrying the user's cookie must not open the socket
    with pytest.raises(InvalidStatus) as err:
        await websockets.connect(shared_server.ws_url, origin="http://evil.example.com")
    assert err.value.response.status_code == 403


async def test_token_in_query_is_accepted(shared_server: ServerProcess) -> None:
    async with websockets.connect(shared_server.ws_url + f"?token={shared_server.token}") as ws:
        await ws.send(
            json.dumps(
                {"type": "req", "id": "c", "method": "connect", "params": {"client": {"name": "q"}}}
            )
        )
        frame = json.loads(await ws.recv())
    assert frame["ok"] is True
