"""``policy.get`` with ``history`` and ``diff`` through the real gateway (WebSocket and REST)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


def _scope() -> str:
    # a scope of its own, so the shared server's default policy is left alone
    return f"team:history-{uuid.uuid4().hex[:8]}"


async def test_history_lists_every_version_and_diff_names_the_changed_fields(
    shared_server: ServerProcess,
) -> None:
    scope = _scope()
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        v1 = await c.request(
            "policy.update",
            {"scopeKey": scope, "patch": {"tools": {"bash.exec": "gate"}}, "expectedVersion": 0},
        )
        assert v1["policy"]["version"] == 1
        v2 = await c.request(
            "policy.update",
            {
                "scopeKey": scope,
                "patch": {"gateTimeoutSec": 120, "network": {"allow": ["example.org"]}},
                "expectedVersion": 1,
            },
        )
        assert v2["policy"]["version"] == 2
        await c.request(
            "policy.update",
            {"scopeKey": scope, "patch": {"bashMode": "sandbox"}, "expectedVersion": 2},
        )

        got = await c.request("policy.get", {"scopeKey": scope, "history": True})
        assert got["policy"]["version"] == 3
        assert [p["version"] for p in got["history"]] == [1, 2, 3]
        assert got["history"][0]["tools"] == {"bash.exec": "gate"}
        assert got["history"][-1] == got["policy"]
        assert "diff" not in got

        d = await c.request("policy.get", {"scopeKey": scope, "diff": {"from": 1, "to": 3}})
        assert d["diff"]["from"] == 1 and d["diff"]["to"] == 3
        assert set(d["diff"]["changes"]) == {"gateTimeoutSec", "network", "bashMode"}
        assert d["diff"]["changes"]["gateTimeoutSec"] == {"from": 900, "to": 120}
        assert d["diff"]["changes"]["network"]["to"] == {"allow": ["example.org"]}
        assert "history" not in d

        back = await c.request("policy.get", {"scopeKey": scope, "diff": {"from": 3, "to": 2}})
        assert back["diff"]["changes"] == {"bashMode": {"from": "sandbox", "to": "host"}}
        same = await c.request("policy.get", {"scopeKey": scope, "diff": {"from": 2, "to": 2}})
        assert same["diff"]["changes"] == {}

        plain = await c.request("policy.get", {"scopeKey": scope})
        assert set(plain) == {"policy"}


async def test_bad_history_requests_are_refused_and_lose_nothing(
    shared_server: ServerProcess,
) -> None:
    scope = _scope()
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.request("policy.update", {"scopeKey": scope, "patch": {"highRisk": "deny"}})
        missing = await c.request_frame(
            "policy.get", {"scopeKey": scope, "diff": {"from": 1, "to": 9}}
        )
        assert missing["error"]["code"] == "NOT_FOUND"
        assert missing["error"]["details"] == {"scopeKey": scope, "version": 9, "latest": 1}
        assert missing["error"]["traceId"]
        for bad in ({"from": 0, "to": 1}, {"from": 1}, {"from": 1, "to": 1, "x": 1}, "1..2"):
            frame = await c.request_frame("policy.get", {"scopeKey": scope, "diff": bad})
            assert frame["error"]["code"] == "INVALID_REQUEST", bad

        # a malformed edit is refused with the field named; the history is unchanged
        wrong = await c.request_frame(
            "policy.update",
            {"scopeKey": scope, "patch": {"gateTimeoutSec": "soon"}, "expectedVersion": 1},
        )
        assert wrong["error"]["code"] == "INVALID_REQUEST"
        assert "gateTimeoutSec" in wrong["error"]["message"]
        stale = await c.request_frame(
            "policy.update",
            {"scopeKey": scope, "patch": {"highRisk": "gate"}, "expectedVersion": 0},
        )
        assert stale["error"]["code"] == "VERSION_CONFLICT"
        got = await c.request("policy.get", {"scopeKey": scope, "history": True})
        assert [p["version"] for p in got["history"]] == [1]
        assert got["policy"]["highRisk"] == "deny"


async def test_a_scope_never_written_answers_with_the_default_history(
    shared_server: ServerProcess,
) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        got = await c.request("policy.get", {"scopeKey": _scope(), "history": True})
    assert got["policy"]["scopeKey"] == "default"
    assert got["history"] and all(p["scopeKey"] == "default" for p in got["history"])
    assert got["history"][-1]["version"] == got["policy"]["version"]


async def test_history_and_diff_over_rest_and_in_the_openapi_document(
    shared_server: ServerProcess,
) -> None:
    scope = _scope()
    for rule in ("gate", "deny"):
        r = shared_server.api(
            "policy.update",
            {"scopeKey": scope, "patch": {"toolDefault": rule}, "idempotencyKey": uuid.uuid4().hex},
        )
        assert r.status_code == 200, r.text
    r = shared_server.api(
        "policy.get", {"scopeKey": scope, "history": True, "diff": {"from": 1, "to": 2}}
    )
    body = r.json()["payload"]
    assert [p["version"] for p in body["history"]] == [1, 2]
    assert body["diff"]["changes"] == {"toolDefault": {"from": "gate", "to": "deny"}}
    doc = httpx.get(
        shared_server.url + "openfoal/api/openapi.json",
        headers={"Authorization": f"token {shared_server.token}"},
    ).json()
    schemas = doc["components"]["schemas"]
    assert {"history", "diff"} <= set(schemas["PolicyGetParams"]["properties"])
    assert set(schemas["PolicyDiffRange"]["required"]) == {"from", "to"}
    assert {"history", "diff"} <= set(schemas["PolicyResult"]["properties"])
