"""What the store promises across restarts and crashes (DESIGN.md, "Storage")."""

from __future__ import annotations

import asyncio
import time

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep

pytestmark = pytest.mark.asyncio


async def test_history_survives_a_restart(server_factory, model) -> None:
    server = server_factory()
    model.enqueue(Reply(steps=[TextStep(text="Stored for later.", chunk_size=5)]))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted, live = await c.run("remember this")
    server.restart()
    async with GatewayClient(server.ws_url, token=server.token) as c:
        listed = await c.request("sessions.list", {})
        assert accepted["sessionId"] in [s["id"] for s in listed["items"]]
        got = await c.request(
            "sessions.get",
            {"sessionId": accepted["sessionId"], "includeMessages": True, "afterSeq": 0},
        )
        stored = {e["seq"]: e for e in got["events"]}
        for e in live:
            assert stored[e["seq"]]["payload"] == e["payload"]
        assert [m["content"] for m in got["messages"]] == ["remember this", "Stored for later."]
        # the next turn continues from the stored transcript in a fresh kernel
        model.enqueue(Reply(steps=[TextStep(text="continuing")]))
        _, events = await c.run("and now?", sessionId=accepted["sessionId"])
        assert events[-1]["event"] == "agent.completed"
        assert (
            events[0]["seq"] == max(stored) + 2
        )  # after the session.updated that marks it running
    sent = [m.get("content") for m in model.requests[-1].body["messages"]]
    assert "remember this" in sent and "Stored for later." in sent


async def test_kill_mid_run_keeps_announced_events_and_marks_the_run_interrupted(
    server_factory, model
) -> None:
    server = server_factory(env={"OPENFOAL_TEST": "kill"})
    model.enqueue(Reply(steps=[TextStep(text="word " * 400, chunk_size=5, chunk_delay_s=0.01)]))
    seen: list[dict] = []
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted = await c.request("agent.run", {"input": "a long answer please"})
        deadline = time.monotonic() + 30
        while (
            sum(1 for e in seen if e["event"] == "agent.delta") < 60 and time.monotonic() < deadline
        ):
            e = await c.next_event(10)
            if e.get("type") == "event":
                e["_received"] = time.monotonic()
                seen.append(e)
        server.kill()
        killed_at = time.monotonic()
    server.start()
    async with GatewayClient(server.ws_url, token=server.token) as c:
        got = await c.request("sessions.get", {"sessionId": accepted["sessionId"], "afterSeq": 0})
        stored = {e["seq"]: e for e in got["events"]}
        seqs = sorted(stored)
        assert seqs == list(range(1, len(seqs) + 1))  # gapless
        for e in seen:
            if e["event"] != "agent.delta":
                # every non-delta event was committed before it was announced
                assert stored[e["seq"]]["payload"] == e["payload"]
            elif killed_at - e["_received"] > 0.5:
                # deltas are committed within the window (50 ms): older ones are all there
                assert stored[e["seq"]]["payload"] == e["payload"]
        failed = [e for e in got["events"] if e["event"] == "agent.failed"]
        assert len(failed) == 1
        assert failed[0]["payload"]["runId"] == accepted["runId"]
        assert failed[0]["payload"]["error"]["code"] == "RUNTIME_LOST"
        assert failed[0]["payload"]["interrupted"] is True
        assert got["session"]["status"] == "idle"
        status = await c.request("agent.abort", {"runId": accepted["runId"]})
        assert status["status"] == "interrupted"
        model.enqueue(Reply(steps=[TextStep(text="back")]))
        _, events = await c.run("still there?", sessionId=accepted["sessionId"])
        assert events[-1]["event"] == "agent.completed"


async def test_broken_store_file_is_moved_aside(server_factory, tmp_path) -> None:
    root = tmp_path / "root"
    (root / ".openfoal").mkdir(parents=True)
    broken = root / ".openfoal" / "openfoal.duckdb"
    broken.write_bytes(b"")  # what a kill during the very first connect leaves
    server = server_factory(root=root)
    aside = list((root / ".openfoal").glob("openfoal.duckdb.broken-*"))
    assert len(aside) == 1
    assert "moved aside" in server.log() or "moved to" in server.log()
    async with GatewayClient(server.ws_url, token=server.token) as c:
        assert (await c.request("sessions.list", {}))["items"] == []


async def test_no_model_configured_says_how(server_factory) -> None:
    server = server_factory(env={"OPENFOAL_MODEL": ""})
    async with GatewayClient(server.ws_url, token=server.token) as c:
        _, events = await c.run("hello?")
    assert events[-1]["event"] == "agent.failed"
    err = events[-1]["payload"]["error"]
    assert err["code"] == "MODEL_UNAVAILABLE"
    assert "OPENFOAL_MODEL" in err["message"] and "OPENAI_API_KEY" in err["message"]
    assert "demo" in err["message"]


async def test_demo_model_is_labelled(server_factory) -> None:
    server = server_factory(env={"OPENFOAL_MODEL": "demo"})
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted = await c.request("agent.run", {"input": "hi"})
        async for e in c.run_events(accepted["runId"]):
            if e["event"] == "agent.delta":
                assert e["payload"]["delta"].startswith("[demo model]")
                break
        await c.request("agent.abort", {"runId": accepted["runId"]})


async def test_model_fallback_and_retries_through_the_gateway(server_factory, model) -> None:
    from openfoal_kernel.scripted import ErrorStep

    server = server_factory(
        env={"OPENFOAL_FALLBACK_MODELS": "openai:backup"},
        args=["--OpenFoalApp.model_max_retries=1", "--OpenFoalApp.model_backoff_cap=0.05"],
    )
    model.enqueue(
        Reply(steps=[ErrorStep(status=503)]),
        Reply(steps=[ErrorStep(status=429)]),
        Reply(steps=[TextStep(text="from the backup")]),
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        _, events = await c.run("anyone?")
    assert events[-1]["event"] == "agent.completed"
    assert [r.body["model"] for r in model.requests] == ["scripted", "scripted", "backup"]
    model.enqueue(*[Reply(steps=[ErrorStep(status=500)]) for _ in range(4)])
    async with GatewayClient(server.ws_url, token=server.token) as c:
        _, events = await c.run("anyone now?")
    assert events[-1]["event"] == "agent.failed"
    assert events[-1]["payload"]["error"]["code"] == "MODEL_UNAVAILABLE"
    await asyncio.sleep(0)
