"""Memory methods, /compact, context usage and the silent memory flush."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def test_memory_methods_and_prompt(shared_server: ServerProcess, model) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        res = await c.request(
            "memory.appendDaily", {"text": "Prefers polars over pandas.", "alsoLongTerm": True}
        )
        assert res["path"] == f"memory/{date.today().isoformat()}.md" and res["bytes"] > 0
        got = await c.request("memory.get", {"path": "MEMORY.md"})
        assert "Prefers polars" in got["content"]
        bad = await c.request_frame("memory.get", {"path": "../etc/passwd"})
        assert bad["error"]["code"] == "INVALID_REQUEST"
        model.enqueue(Reply(steps=[TextStep(text="noted")]))
        await c.run("what do I prefer?")
        system = model.requests[-1].body["messages"][0]["content"]
        assert "Prefers polars" in system  # memory is part of a personal session's prompt
        archived = await c.request("memory.archive", {"date": date.today().isoformat()})
        assert archived["archived"] is True


async def test_compact_summarises_older_context(shared_server: ServerProcess, model) -> None:
    model.enqueue(
        Reply(steps=[TextStep(text="The sales file has 3 rows.")]),
        Reply(steps=[TextStep(text="- user studies sales.csv (3 rows)")]),
        Reply(steps=[TextStep(text="yes")]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        first, _ = await c.run("look at sales.csv")
        sid = first["sessionId"]
        _, events = await c.run("/compact", sessionId=sid)
        assert events[-1]["event"] == "agent.completed"
        got = await c.request("sessions.get", {"sessionId": sid, "includeMessages": True})
        assert got["session"]["compactionCount"] == 1
        compaction = [m for m in got["messages"] if m.get("kind") == "compaction"]
        assert compaction and "sales.csv" in compaction[0]["content"]
        await c.run("still about sales?", sessionId=sid)
    sent = [m.get("content") for m in model.requests[-1].body["messages"]]
    assert "look at sales.csv" not in sent  # replaced by the summary
    assert any("sales.csv (3 rows)" in (s or "") for s in sent)


async def test_silent_memory_flush_near_the_limit(server_factory, model) -> None:
    server = server_factory(
        args=[
            "--OpenFoalApp.context_window_tokens=300",
            "--OpenFoalApp.memory_flush_threshold=0.5",
            "--OpenFoalApp.auto_compact_threshold=0",  # the flush alone (compaction: its test)
        ]
    )
    model.enqueue(
        Reply(steps=[TextStep(text="word " * 200)]),
        Reply(
            steps=[
                ToolCallStep(
                    name="memory.append", arguments={"text": "User analyses quarterly sales."}
                )
            ]
        ),
        Reply(steps=[TextStep(text="NO_REPLY")]),
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        first, _ = await c.run("tell me a lot")
        sid = first["sessionId"]
        state = None
        for _ in range(100):
            got = await c.request(
                "sessions.get", {"sessionId": sid, "afterSeq": 0, "includeMessages": True}
            )
            state = got["session"]["memoryFlushState"]
            if state in ("flushed", "skipped"):
                break
            await asyncio.sleep(0.1)
        assert state == "flushed"
        assert got["session"]["contextUsage"] > 0.5
        flush_runs = {
            e["payload"]["runId"]
            for e in got["events"]
            if e["event"] == "agent.completed" and e["payload"].get("silent")
        }
        assert len(flush_runs) == 1
        assert not [
            e
            for e in got["events"]
            if e["event"] == "agent.delta" and e["payload"]["runId"] in flush_runs
        ]  # nothing of it is shown
        assert all(
            m.get("kind") == "memory_flush" for m in got["messages"] if m.get("runId") in flush_runs
        )
    daily = (server.root / "memory" / f"{date.today().isoformat()}.md").read_text()
    assert "quarterly sales" in daily
