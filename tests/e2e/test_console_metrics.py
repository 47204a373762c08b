"""End to end: the bucketed ``metrics.summary`` the Metrics panel draws, over WS and REST."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.scripted import Reply, TextStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_bucketed_summary_over_ws_and_rest(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="counted in a bucket")]))
    now = datetime.now(timezone.utc)
    window = {"from": _iso(now - timedelta(hours=1)), "to": _iso(now + timedelta(hours=1))}
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.run("count me")
        got = await c.request("metrics.summary", {**window, "bucket": 600})
    assert got["bucket"] == 600 and len(got["series"]) == 12
    assert got["series"][0]["start"] == window["from"] and got["series"][-1]["end"] == window["to"]
    assert sum(b["runsTotal"] for b in got["series"]) == got["metrics"]["runsTotal"] >= 1
    assert sum(b["gatesTotal"] for b in got["series"]) == got["metrics"]["gatesTotal"]
    assert sum(t["calls"] for t in got["byTool"]) == got["metrics"]["toolCallsTotal"]
    rest = shared_server.api("metrics.summary", {**window, "bucket": 600})
    assert rest.status_code == 200
    body = rest.json()["payload"]
    assert body["series"] == got["series"] and body["metrics"] == got["metrics"]
    plain = shared_server.api("metrics.summary", window).json()["payload"]
    assert plain["metrics"] == got["metrics"] and plain.get("series") is None


async def test_bad_buckets_get_invalid_request(shared_server: ServerProcess) -> None:
    now = datetime.now(timezone.utc)
    cases = [
        {"from": _iso(now), "bucket": 10},  # under a minute
        {"to": _iso(now), "bucket": 60},  # no from
        {"from": _iso(now), "to": _iso(now - timedelta(hours=1)), "bucket": 60},  # inverted
        {"from": _iso(now - timedelta(days=30)), "to": _iso(now), "bucket": 60},  # too many
    ]
    for params in cases:
        r = shared_server.api("metrics.summary", params)
        assert r.status_code == 400, params
        error = r.json()["error"]
        assert error["code"] == "INVALID_REQUEST" and len(error["traceId"]) == 32
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        with pytest.raises(GatewayError) as err:
            await c.request("metrics.summary", cases[3])
    assert "buckets" in str(err.value)


async def test_openapi_describes_the_buckets(shared_server: ServerProcess) -> None:
    doc = httpx.get(
        shared_server.url + "openfoal/api/openapi.json",
        headers={"Authorization": f"token {shared_server.token}"},
    ).json()
    schemas = doc["components"]["schemas"]
    assert "bucket" in schemas["MetricsSummaryParams"]["properties"]
    assert {"series", "byTool", "bucket"} <= set(schemas["MetricsSummaryResult"]["properties"])
    assert "MetricsBucket" in schemas and "ToolCallCount" in schemas
