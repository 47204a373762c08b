"""Rate limits through both transports: RATE_LIMITED with retryAfterMs; REST 429 + Retry-After."""

from __future__ import annotations

import asyncio

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_testing.plugin import ServerProcess

LIMITED = ["--OpenFoalApp.rate_limits", "read=0.2/3", "--OpenFoalApp.rate_limits", "write=0"]


def _exhaust(server: ServerProcess) -> dict:
    for _ in range(30):
        r = server.api("sessions.list", {"limit": 1})
        if r.status_code == 429:
            return {"response": r, "body": r.json()}
        assert r.status_code == 200, r.text
    raise AssertionError("30 reads at 0.2/s were never limited")


@pytest.mark.asyncio
async def test_reads_are_limited_per_class(server_factory) -> None:
    server: ServerProcess = server_factory(args=LIMITED)
    got = _exhaust(server)
    r, body = got["response"], got["body"]
    err = body["error"]
    assert err["code"] == "RATE_LIMITED" and err["retryable"] is True
    retry_ms = err["details"]["retryAfterMs"]
    assert 0 < retry_ms <= 5000 and err["details"]["class"] == "read"
    assert int(r.headers["Retry-After"]) == -(-retry_ms // 1000)
    async with GatewayClient(server.ws_url, token=server.token) as c:
        frame = await c.request_frame("sessions.list", {})
        assert frame["ok"] is False and frame["error"]["code"] == "RATE_LIMITED"
        assert frame["error"]["details"]["retryAfterMs"] > 0
        # another class is not limited by the read bucket ('0': no limit)
        ok = await c.request_frame("memory.appendDaily", {"text": "still writing"})
        assert ok["ok"] is True, ok
        # after the time the server named, a read goes through again
        await asyncio.sleep(frame["error"]["details"]["retryAfterMs"] / 1000 + 0.05)
        again = await c.request_frame("sessions.list", {})
        assert again["ok"] is True, again
