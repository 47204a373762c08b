"""Per-session token budgets end to end: the scripted model reports usage, the gateway counts."""

from __future__ import annotations

import pytest

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.scripted import Reply, ScriptUsage, TextStep, ToolCallStep

pytestmark = pytest.mark.asyncio

BUDGET = ["--OpenFoalApp.session_token_budget=100"]


def used(n_in: int, n_out: int) -> ScriptUsage:
    return ScriptUsage(input_tokens=n_in, output_tokens=n_out)


async def test_budget_ends_the_run_that_passes_it_and_refuses_the_next(
    server_factory, model
) -> None:
    server = server_factory(args=BUDGET)
    model.enqueue(
        Reply(steps=[TextStep(text="first answer")], usage=used(30, 30)),
        # the second run's first step takes the session past 100: its tool call never runs
        Reply(
            steps=[ToolCallStep(name="file.write", arguments={"path": "x.txt", "content": "x"})],
            usage=used(30, 20),
        ),
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        first, events = await c.run("one")
        assert events[-1]["event"] == "agent.completed"
        assert events[-1]["payload"]["usage"] == {"inputTokens": 30, "outputTokens": 30}
        sid = first["sessionId"]
        _, events = await c.run("two", sessionId=sid)
        names = [e["event"] for e in events]
        assert names[-1] == "agent.failed" and names.count("agent.failed") == 1
        error = events[-1]["payload"]["error"]
        assert error["code"] == "BUDGET_EXCEEDED" and error["retryable"] is False
        assert error["traceId"] == events[-1]["payload"]["traceId"]
        assert events[-1]["payload"]["usage"] == {"inputTokens": 30, "outputTokens": 20}
        assert "agent.tool_call" not in names and "agent.tool_result" not in names
        assert not (server.root / "x.txt").exists()
        with pytest.raises(GatewayError) as refused:
            await c.run("three", sessionId=sid)
        assert refused.value.code == "BUDGET_EXCEEDED"
    assert len(model.requests) == 2
    # the count is durable: after a restart the session is still refused, a new one is not
    server.restart()
    model.enqueue(Reply(steps=[TextStep(text="fresh")], usage=used(5, 5)))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        with pytest.raises(GatewayError) as refused:
            await c.run("again", sessionId=sid)
        assert refused.value.code == "BUDGET_EXCEEDED"
        assert "110 of 100" in str(refused.value)
        other, events = await c.run("new session")
        assert other["sessionId"] != sid
        assert events[-1]["event"] == "agent.completed"
