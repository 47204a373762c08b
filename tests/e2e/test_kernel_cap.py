"""The per-user cap on live agent kernels: evict the longest-idle one, or wait in line."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

CAP = ["--KernelOrchestrator.max_kernels_per_user=1", "--KernelOrchestrator.pool_size=0"]


def _agent_kernels(server: ServerProcess) -> list[dict]:
    r = httpx.get(
        server.url + "api/kernels",
        headers={"Authorization": f"token {server.token}"},
        timeout=30,
    )
    return [k for k in r.json() if k["name"] == "openfoal"]


async def _text_run(c: GatewayClient, model, text: str) -> dict:
    model.enqueue(Reply(steps=[TextStep(text=text)]))
    accepted, events = await c.run(text)
    assert events[-1]["event"] == "agent.completed", events[-1]
    return accepted


@pytest.mark.asyncio
async def test_evict_keeps_one_live_kernel_per_user(server_factory, model) -> None:
    server = server_factory(args=CAP)
    async with GatewayClient(server.ws_url, token=server.token) as c:
        first = await _text_run(c, model, "one")
        assert len(_agent_kernels(server)) == 1
        second = await _text_run(c, model, "two")
        assert second["sessionId"] != first["sessionId"]
        assert len(_agent_kernels(server)) == 1  # the idle kernel of "one" made room
        # the first session still works: it gets a kernel again (evicting the other)
        model.enqueue(Reply(steps=[TextStep(text="again")]))
        _, events = await c.run("again", sessionId=first["sessionId"])
        assert events[-1]["event"] == "agent.completed"
        assert len(_agent_kernels(server)) == 1


@pytest.mark.asyncio
async def test_queue_waits_for_a_kernel_to_go(server_factory, model, tmp_path) -> None:
    server = server_factory(
        args=[*CAP, "--KernelOrchestrator.cap_policy=queue", "--KernelOrchestrator.idle_timeout=2"]
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        # session A holds its kernel while its gate waits (a run mid-turn is never evicted)
        model.enqueue(
            Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo hi"})]),
            Reply(steps=[TextStep(text="a done")]),
        )
        a = await c.request("agent.run", {"input": "a"})
        async for e in c.run_events(a["runId"]):
            if e["event"] == "policy-gate.requested":
                gate = e["payload"]["gate"]
                break
        model.enqueue(Reply(steps=[TextStep(text="b done")]))
        b = await c.request("agent.run", {"input": "b"})
        # B waits: no second kernel while A's is live
        await asyncio.sleep(3)
        assert len(_agent_kernels(server)) == 1
        b_session = (await c.request("sessions.get", {"sessionId": b["sessionId"]}))["session"]
        assert b_session["status"] == "queued"  # visible while it waits
        await c.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "reject", "idempotencyKey": uuid.uuid4().hex},
        )
        ends = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while len(ends) < 2:
            e = await c.next_event(max(0.01, deadline - loop.time()))
            if e.get("event") in ("agent.completed", "agent.failed"):
                ends[e["payload"]["runId"]] = e["event"]
        # B ran once A's kernel was shut down for being idle
        assert ends[b["runId"]] == "agent.completed", ends
        after = (await c.request("sessions.get", {"sessionId": b["sessionId"]}))["session"]
        assert after["status"] == "idle"
        # at most one live kernel (a shutdown still finishing under load is given time)
        kernels = _agent_kernels(server)
        for _ in range(40):
            if len(kernels) <= 1:
                break
            await asyncio.sleep(0.5)  # waiting for a condition: the kernel list
            kernels = _agent_kernels(server)
        assert len(kernels) <= 1, kernels
