"""End to end: long, fast streams reach the client whole, one agent.delta per model delta."""

from __future__ import annotations

import time
from typing import Any

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import BurstStep, Reply, TextStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def test_a_burst_arrives_as_one_event_per_delta_in_seq_order(
    shared_server: ServerProcess, model
) -> None:
    # the kernel coalesces a burst into few iopub messages; the client must not notice
    model.enqueue(Reply.of(BurstStep(count=5000, text="ab"), TextStep(text="end", chunk_size=1)))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, events = await c.run("burst")
        stored: list[dict[str, Any]] = []
        while True:  # sessions.get pages the stored events
            got = await c.request(
                "sessions.get",
                {
                    "sessionId": accepted["sessionId"],
                    "afterSeq": stored[-1]["seq"] if stored else 0,
                },
            )
            if not got["events"]:
                break
            stored += got["events"]
    assert events[-1]["event"] == "agent.completed"
    deltas = [e for e in events if e["event"] == "agent.delta"]
    assert [d["payload"]["delta"] for d in deltas] == ["ab"] * 5000 + ["e", "n", "d"]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for d in deltas[:3] + deltas[-3:]:
        assert d["payload"]["runId"] == accepted["runId"]
        assert set(d["payload"]) == {"delta", "sessionId", "runId", "traceId"}
    # every delta is stored too, under the seq the client saw
    stored_deltas = [e for e in stored if e["event"] == "agent.delta"]
    assert [e["seq"] for e in stored_deltas] == [d["seq"] for d in deltas]


async def test_a_sparse_delta_is_not_held_back(shared_server: ServerProcess, model) -> None:
    # deltas far apart each leave at once, in their own event, not at the end of the answer
    model.enqueue(Reply.of(TextStep(text="slow", chunk_size=1, chunk_delay_s=0.1)))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted = await c.request("agent.run", {"input": "slowly"})
        arrivals: list[tuple[str, float]] = []
        async for frame in c.run_events(accepted["runId"]):
            arrivals.append((frame["event"], time.monotonic()))
    deltas = [t for name, t in arrivals if name == "agent.delta"]
    assert len(deltas) == 4
    assert arrivals[-1][0] == "agent.completed"
    assert arrivals[-1][1] - deltas[0] >= 0.25  # the first came while the rest still streamed
