"""End to end: a client, the gateway, the agent kernel and the scripted model, really running."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


async def test_connect_handshake(shared_server: ServerProcess) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        hello = c.hello
    assert hello["protocolVersion"].startswith("1.")
    assert hello["role"] == "local"
    assert hello["user"]["name"]
    assert "agent.run" in hello["features"]
    assert hello["workspaceId"] == "default"


async def test_run_streams_deltas_and_completes_once(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="The answer is forty-two.", chunk_size=4)]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, events = await c.run("what is the answer?")
    assert accepted["status"] == "accepted"
    names = [e["event"] for e in events]
    assert names[0] == "agent.accepted"
    assert names.count("agent.completed") == 1 and names[-1] == "agent.completed"
    assert "agent.failed" not in names
    text = "".join(e["payload"]["delta"] for e in events if e["event"] == "agent.delta")
    assert text == "The answer is forty-two."
    assert sum(1 for n in names if n == "agent.delta") == 6
    for e in events:
        assert e["payload"]["runId"] == accepted["runId"]
        assert e["payload"]["sessionId"] == accepted["sessionId"]
        assert len(e["payload"]["traceId"]) == 32
    # the model received the user's input
    assert model.requests[-1].body["messages"][-1]["content"] == "what is the answer?"


async def test_seq_is_gapless_per_session(shared_server: ServerProcess, model) -> None:
    model.enqueue(
        Reply(steps=[TextStep(text="one two three", chunk_size=3)]),
        Reply(steps=[TextStep(text="four five", chunk_size=3)]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        first, _ = await c.run("first")
        sid = first["sessionId"]
        await c.run("second", sessionId=sid)
        await asyncio.sleep(0.1)
        got = await c.request("sessions.get", {"sessionId": sid, "afterSeq": 0})
    seqs = [e["seq"] for e in got["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert got["lastSeq"] == seqs[-1]
    versions = [e["stateVersion"] for e in got["events"]]
    assert versions == sorted(versions)


async def test_live_seq_matches_stored(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="abcdefghij", chunk_size=1)]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, events = await c.run("stream please")
        got = await c.request("sessions.get", {"sessionId": accepted["sessionId"], "afterSeq": 0})
    stored = {e["seq"]: e for e in got["events"]}
    for e in events:
        assert stored[e["seq"]]["event"] == e["event"]
        assert stored[e["seq"]]["payload"] == e["payload"]


async def test_transcript_carries_context_to_next_turn(shared_server: ServerProcess, model) -> None:
    model.enqueue(
        Reply(steps=[TextStep(text="Nice to meet you, Ada.")]),
        Reply(steps=[TextStep(text="You are Ada.")]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        first, _ = await c.run("my name is Ada")
        await c.run("what is my name?", sessionId=first["sessionId"])
        got = await c.request(
            "sessions.get", {"sessionId": first["sessionId"], "includeMessages": True}
        )
    sent = model.requests[-1].body["messages"]
    contents = [m.get("content") for m in sent]
    assert "my name is Ada" in contents and "Nice to meet you, Ada." in contents
    roles = [(m["role"], m["content"]) for m in got["messages"]]
    assert roles == [
        ("user", "my name is Ada"),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "what is my name?"),
        ("assistant", "You are Ada."),
    ]


async def test_abort_stops_a_streaming_run_within_a_second(
    shared_server: ServerProcess, model
) -> None:
    model.enqueue(Reply(steps=[TextStep(text="x" * 400, chunk_size=1, chunk_delay_s=0.05)]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted = await c.request("agent.run", {"input": "talk slowly"})
        run_id = accepted["runId"]
        async for e in c.run_events(run_id):
            if e["event"] == "agent.delta":
                break
        t0 = time.perf_counter()
        res = await c.request("agent.abort", {"runId": run_id})
        terminal = [e async for e in c.run_events(run_id, timeout=5)][-1]
        elapsed = time.perf_counter() - t0
        assert res == {"runId": run_id, "status": "aborted"}
        assert terminal["event"] == "agent.failed" and terminal["payload"].get("aborted") is True
        assert elapsed < 1.0
        # the session is free again, and aborting again reports the final status
        again = await c.request("agent.abort", {"runId": run_id})
        assert again["status"] == "aborted"
        model.enqueue(Reply(steps=[TextStep(text="ok")]))
        _, events = await c.run("next", sessionId=accepted["sessionId"])
        assert events[-1]["event"] == "agent.completed"


async def test_second_run_in_busy_session(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="slow " * 20, chunk_size=5, chunk_delay_s=0.05)]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted = await c.request("agent.run", {"input": "first"})
        res = await c.request_frame(
            "agent.run", {"input": "second", "sessionId": accepted["sessionId"]}
        )
        assert res["ok"] is False
        assert res["error"]["code"] == "SESSION_BUSY" and res["error"]["retryable"] is True
        assert len(res["error"]["traceId"]) == 32
        events = [e async for e in c.run_events(accepted["runId"])]
        assert events[-1]["event"] == "agent.completed"


async def test_idempotent_replay_runs_once(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="only once")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        params = {"input": "do it once", "idempotencyKey": "key-once"}
        first = await c.request("agent.run", params)
        [e async for e in c.run_events(first["runId"])]
        n_requests = len(model.requests)
        again = await c.request("agent.run", params)
        assert again == first
        conflict = await c.request_frame(
            "agent.run", {"input": "something else", "idempotencyKey": "key-once"}
        )
        assert conflict["error"]["code"] == "IDEMPOTENCY_CONFLICT"
        await asyncio.sleep(0.3)
        assert len(model.requests) == n_requests


async def test_concurrent_duplicates_run_once(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="once")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        params = {"input": "race", "idempotencyKey": "key-race"}
        results = await asyncio.gather(*(c.request("agent.run", params) for _ in range(5)))
        assert len({r["runId"] for r in results}) == 1
        [e async for e in c.run_events(results[0]["runId"])]
    await asyncio.sleep(0.2)
    assert sum(1 for r in model.requests if r.body["messages"][-1]["content"] == "race") == 1


async def test_sessions_list_and_get(shared_server: ServerProcess, model) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        ids = []
        for i in range(3):
            model.enqueue(Reply(steps=[TextStep(text=f"reply {i}")]))
            accepted, _ = await c.run(f"list me {i}")
            ids.append(accepted["sessionId"])
        page = await c.request("sessions.list", {"limit": 2, "query": "list me"})
        assert [s["id"] for s in page["items"]] == ids[::-1][:2]
        assert page["nextCursor"]
        rest = await c.request(
            "sessions.list", {"limit": 2, "query": "list me", "cursor": page["nextCursor"]}
        )
        assert [s["id"] for s in rest["items"]] == [ids[0]]
        assert rest["nextCursor"] is None
        s = page["items"][0]
        for field in (
            "sessionKey",
            "title",
            "owner",
            "status",
            "runtimeMode",
            "syncState",
            "contextUsage",
            "compactionCount",
            "memoryFlushState",
            "createdAt",
            "updatedAt",
        ):
            assert field in s
        assert s["status"] == "idle"
        missing = await c.request_frame("sessions.get", {"sessionId": "ses_nope"})
        assert missing["error"]["code"] == "NOT_FOUND"


async def test_tool_call_events_flow(shared_server: ServerProcess, model, tmp_path) -> None:
    (shared_server.root / "data.csv").write_text("a,b\n1,2\n")
    model.enqueue(
        Reply(steps=[ToolCallStep(name="file.read", arguments={"path": "data.csv"})]),
        Reply(steps=[TextStep(text="The file has two columns.")]),
    )
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        _, events = await c.run("what is in data.csv?")
    call = next(e for e in events if e["event"] == "agent.tool_call")["payload"]
    result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
    assert call["toolName"] == "file.read" and call["args"] == {"path": "data.csv"}
    assert call["runtimeMode"] == "local"
    assert result["toolCallId"] == call["toolCallId"]
    assert result["status"] == "success" and "a,b" in result["output"]
    assert result["durationMs"] >= 0
    tool_msg = model.requests[-1].body["messages"][-1]
    assert tool_msg["role"] == "tool" and "1,2" in tool_msg["content"]


async def test_agent_kernel_is_a_jupyter_kernel(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="hi")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.run("hello kernel")
    r = httpx.get(
        shared_server.url + "api/kernels", headers={"Authorization": f"token {shared_server.token}"}
    )
    assert any(k["name"] == "openfoal" for k in r.json())


async def test_runtime_mode_applied_when_idle(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="hi")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted, _ = await c.run("mode test")
        res = await c.request(
            "runtime.setMode", {"sessionId": accepted["sessionId"], "runtimeMode": "cloud"}
        )
        assert res == {
            "sessionId": accepted["sessionId"],
            "runtimeMode": "cloud",
            "status": "applied",
            "effectiveOn": "now",
        }
        changed = None
        while changed is None:
            e = await c.next_event(5)
            if e["event"] == "runtime.mode_changed":
                changed = e
        assert changed["payload"]["runtimeMode"] == "cloud"
        back = await c.request(
            "runtime.setMode", {"sessionId": accepted["sessionId"], "runtimeMode": "local"}
        )
        assert back["status"] == "applied"


async def test_mode_change_during_run_is_queued(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="slow " * 10, chunk_size=5, chunk_delay_s=0.05)]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        accepted = await c.request("agent.run", {"input": "long one"})
        res = await c.request(
            "runtime.setMode", {"sessionId": accepted["sessionId"], "runtimeMode": "cloud"}
        )
        assert res["status"] == "queued-change" and res["effectiveOn"] == "next_turn"
        [e async for e in c.run_events(accepted["runId"])]
        changed = None
        while changed is None:
            e = await c.next_event(5)
            if e["event"] == "runtime.mode_changed":
                changed = e
        got = await c.request("sessions.get", {"sessionId": accepted["sessionId"]})
        assert (
            got["session"]["runtimeMode"] == "cloud" and "pendingRuntimeMode" not in got["session"]
        )
        await c.request(
            "runtime.setMode", {"sessionId": accepted["sessionId"], "runtimeMode": "local"}
        )


async def test_chat_commands_new_and_reset(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="remembered")]), Reply(steps=[TextStep(text="fresh")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        first, _ = await c.run("remember the word banana")
        sid = first["sessionId"]
        reset, events = await c.run("/reset", sessionId=sid)
        assert reset["sessionId"] == sid and events[-1]["event"] == "agent.completed"
        await c.run("what was the word?", sessionId=sid)
        sent = [m.get("content") for m in model.requests[-1].body["messages"]]
        assert "remember the word banana" not in sent
        got = await c.request("sessions.get", {"sessionId": sid, "includeMessages": True})
        assert any(
            m["content"] == "remember the word banana" for m in got["messages"]
        )  # kept for audit
        new, events = await c.run("/new", sessionId=sid)
        assert new["sessionId"] != sid and events[-1]["event"] == "agent.completed"


async def test_rest_surface(shared_server: ServerProcess, model) -> None:
    r = shared_server.api("sessions.list", {"limit": 1})
    assert r.status_code == 200 and r.json()["ok"] is True
    r = shared_server.api("sessions.get", {})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    r = shared_server.api("no.such", {})
    assert r.status_code == 404 and r.json()["error"]["code"] == "METHOD_NOT_FOUND"
    r = shared_server.api("agent.run", {"input": "x"})
    assert r.status_code == 400 and "idempotencyKey" in r.json()["error"]["message"]
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = shared_server.api("sessions.get", {"sessionId": "nope"}, headers={"traceparent": tp})
    assert r.json()["error"]["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    doc = httpx.get(
        shared_server.url + "openfoal/api/openapi.json",
        headers={"Authorization": f"token {shared_server.token}"},
    ).json()
    assert doc["openapi"].startswith("3.") and "/openfoal/api/agent.run" in doc["paths"]
    assert httpx.post(shared_server.url + "openfoal/api/sessions.list", json={}).status_code == 401


async def test_unknown_session_owner_is_refused(shared_server: ServerProcess) -> None:
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        with pytest.raises(GatewayError) as err:
            await c.request("agent.run", {"input": "x", "sessionId": "ses_does_not_exist"})
    assert err.value.code.value == "NOT_FOUND"


async def test_prometheus_metrics(shared_server: ServerProcess, model) -> None:
    model.enqueue(Reply(steps=[TextStep(text="counted")]))
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        await c.run("count me")
        summary = (await c.request("metrics.summary", {}))["metrics"]
    assert summary["runsTotal"] >= 1 and summary["runsCompleted"] >= 1
    assert summary["p95LatencyMs"] is not None
    text = httpx.get(
        shared_server.url + "metrics", headers={"Authorization": f"token {shared_server.token}"}
    ).text
    assert 'openfoal_runs_total{status="completed"}' in text
    assert "openfoal_run_duration_seconds_bucket" in text
