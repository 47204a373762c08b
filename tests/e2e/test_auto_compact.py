"""Automatic compaction end to end: a turn fills the context, the gateway compacts by itself."""

from __future__ import annotations

import pytest

from openfoal_kernel.agent.context import COMPACT_PROMPT
from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep

pytestmark = pytest.mark.asyncio

ARGS = [
    "--OpenFoalApp.context_window_tokens=400",
    "--OpenFoalApp.memory_flush_threshold=2",  # no memory flush in this test
    "--OpenFoalApp.auto_compact_threshold=0.5",
]


async def test_a_full_context_is_compacted_once_with_a_notice(server_factory, model) -> None:
    server = server_factory(args=ARGS)
    model.enqueue(
        Reply(steps=[TextStep(text="word " * 200, chunk_size=50)]),  # ~350 tokens of 400
        Reply(steps=[TextStep(text="SUMMARY: the user asked for many words")]),
        Reply(steps=[TextStep(text="short")]),
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        first, events = await c.run("say many words")
        sid = first["sessionId"]
        assert events[-1]["event"] == "agent.completed"
        # the compaction run the gateway starts by itself, on the same session's stream
        accepted = None
        while accepted is None:
            frame = await c.next_event(60)
            if frame.get("event") == "agent.accepted" and frame["payload"]["sessionId"] == sid:
                accepted = frame
        assert accepted["payload"]["auto"] is True
        compacted = [e async for e in c.run_events(accepted["payload"]["runId"])]
        done = compacted[-1]
        assert done["event"] == "agent.completed" and done["payload"]["auto"] is True
        assert done["payload"]["summary"] == "older context compacted"
        assert model.requests[1].body["messages"][-1]["content"] == COMPACT_PROMPT
        got = await c.request("sessions.get", {"sessionId": sid})
        while got["session"]["status"] != "idle":
            await c.next_event(60)  # session.updated comes as the run ends
            got = await c.request("sessions.get", {"sessionId": sid})
        assert got["session"]["compactionCount"] == 1
        assert got["session"]["contextUsage"] < 0.5
        # the next turn sees the summary in place of the older context
        _, events = await c.run("and now?", sessionId=sid)
        assert events[-1]["event"] == "agent.completed"
        audit = await c.request("audit.query", {"action": "run.start", "sessionId": sid})
    assert [e["detail"].get("auto") for e in audit["items"]].count(True) == 1
    sent = model.requests[2].body["messages"]
    assert any("SUMMARY: the user asked" in str(m.get("content")) for m in sent)
    assert not any("word word word" in str(m.get("content")) for m in sent)
