"""Cloud mode through the gateway: runtime.setMode, tools in the session's Docker sandbox,
the Docker-down path, deletion, idle reaping and orphans after a server kill -9.

These tests need the Docker engine and the sandbox images (scripts/install-docker.sh,
scripts/build-sandbox-images.sh); without them they fail, never skip.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.sandbox.handle import LABEL_SANDBOX, LABEL_SESSION
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    """The Docker engine; its absence fails the test with the script to run."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get("openfoal/sandbox-python:latest")
    except docker.errors.ImageNotFound:
        pytest.fail("sandbox image missing: run scripts/build-sandbox-images.sh", pytrace=False)
    except Exception as exc:
        pytest.fail(
            f"Docker engine not reachable ({exc}): run scripts/install-docker.sh", pytrace=False
        )
    yield client
    client.close()


def _session_containers(engine: docker.DockerClient, session_id: str) -> list[Any]:
    return engine.containers.list(
        all=True, filters={"label": [f"{LABEL_SANDBOX}=1", f"{LABEL_SESSION}={session_id}"]}
    )


async def _gone(engine: docker.DockerClient, session_id: str, timeout: float) -> bool:
    """Whether the session's containers are gone within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _session_containers(engine, session_id):
            return True
        await asyncio.sleep(0.3)
    return not _session_containers(engine, session_id)


def _bash(command: str) -> Reply:
    return Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": command})])


def _py(code: str) -> Reply:
    return Reply(steps=[ToolCallStep(name="python.exec", arguments={"code": code})])


def _done() -> Reply:
    return Reply(steps=[TextStep(text="done")])


def _key() -> str:
    return uuid.uuid4().hex


async def _tool(c: GatewayClient, text: str, **params: Any) -> tuple[dict, dict]:
    """Run a turn; its agent.accepted payload and its first tool_result's payload (and call)."""
    _, events = await c.run(text, **params)
    accepted = next(e for e in events if e["event"] == "agent.accepted")["payload"]
    call = next(e for e in events if e["event"] == "agent.tool_call")["payload"]
    result = next(e for e in events if e["event"] == "agent.tool_result")["payload"]
    return accepted, {**result, "call": call}


def _set_policy(server: ServerProcess, patch: dict[str, Any]) -> None:
    policy = server.api("policy.get").json()["payload"]["policy"]
    r = server.api(
        "policy.update",
        {"patch": patch, "expectedVersion": policy["version"], "idempotencyKey": _key()},
    )
    assert r.status_code == 200, r.text


async def _new_session(c: GatewayClient, model: Any) -> str:
    model.enqueue(_done())
    accepted, _ = await c.run("hello")
    return str(accepted["sessionId"])


async def _set_mode(c: GatewayClient, sid: str, mode: str, **extra: Any) -> dict[str, Any]:
    return await c.request(
        "runtime.setMode",
        {"sessionId": sid, "runtimeMode": mode, "idempotencyKey": _key(), **extra},
    )


async def _event(c: GatewayClient, name: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = await c.next_event(timeout=max(deadline - time.monotonic(), 0.1))
        if frame["event"] == name:
            return frame


async def test_cloud_turns_run_in_the_session_sandbox(
    engine: docker.DockerClient, server_factory: Any, model: Any
) -> None:
    server = server_factory()
    # python.exec and bash.exec are high risk on the host only: the local turn here opens bash
    _set_policy(server, {"tools": {"bash.exec": "allow"}})
    async with GatewayClient(server.ws_url, token=server.token) as c:
        sid = await _new_session(c, model)
        started = time.perf_counter()
        applied = await _set_mode(c, sid, "cloud")
        changed = await _event(c, "runtime.mode_changed")
        switch_ms = (time.perf_counter() - started) * 1000
        assert applied["status"] == "applied" and applied["effectiveOn"] == "now"
        assert changed["payload"]["runtimeMode"] == "cloud"
        assert switch_ms < 2000, f"an idle mode switch took {switch_ms:.0f} ms"

        model.enqueue(
            _bash("id -u; echo made-in-sandbox > from_sandbox.txt; ls /workspace"), _done()
        )
        accepted, result = await _tool(c, "who am I", sessionId=sid)
        assert accepted["runtimeMode"] == "cloud"
        assert result["call"]["runtimeMode"] == "cloud"
        assert result["status"] == "success", result
        assert result["output"].splitlines()[0].strip() not in ("", "0")  # not root
        # the workspace is the server's root folder, shared both ways
        assert (server.root / "from_sandbox.txt").read_text().strip() == "made-in-sandbox"
        (containers,) = [_session_containers(engine, sid)]
        assert len(containers) == 1
        first_id = containers[0].id

        # Python state persists across calls within the session, in the same container
        model.enqueue(_py("x = 20"), _done())
        await _tool(c, "set x", sessionId=sid)
        model.enqueue(_py("x * 2 + 2"), _done())
        _, result = await _tool(c, "use x", sessionId=sid)
        assert result["status"] == "success" and "42" in result["output"], result
        assert [k.id for k in _session_containers(engine, sid)] == [first_id]

        # a forced switch back to local always works, and tools run on the host again
        back = await _set_mode(c, sid, "local")
        assert back["status"] == "applied"
        model.enqueue(_bash("id -u"), _done())
        _, result = await _tool(c, "who am I now", sessionId=sid)
        assert result["call"]["runtimeMode"] == "local"

        # deleting the session removes its sandbox; the audit trail stays
        deleted = await c.request("sessions.delete", {"sessionId": sid, "idempotencyKey": _key()})
        assert deleted == {"sessionId": sid, "deleted": True}
        assert _session_containers(engine, sid) == []
        frame = await c.request_frame("sessions.get", {"sessionId": sid})
        assert frame["error"]["code"] == "NOT_FOUND"
        audit = await c.request("audit.query", {"sessionId": sid, "limit": 500})
        actions = {e["action"] for e in audit["items"]}
        assert {"run.start", "tool.call", "session.delete"} <= actions


async def test_a_switch_during_a_run_waits_for_the_next_turn(
    engine: docker.DockerClient, shared_server: ServerProcess, model: Any
) -> None:
    _set_policy(shared_server, {"tools": {"bash.exec": "allow"}})  # a shell on the host
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        sid = await _new_session(c, model)
        model.enqueue(_bash("sleep 1.5; echo slow"), _done())
        accepted = await c.request(
            "agent.run", {"sessionId": sid, "input": "slow", "idempotencyKey": _key()}
        )
        await _event(c, "agent.tool_call")
        queued = await _set_mode(c, sid, "cloud", force=True)  # force only stops cloud work
        assert queued["status"] == "queued-change" and queued["effectiveOn"] == "next_turn"
        session = (await c.request("sessions.get", {"sessionId": sid}))["session"]
        assert session["runtimeMode"] == "local" and session["pendingRuntimeMode"] == "cloud"
        seen: list[str] = []
        async for frame in c.run_events(accepted["runId"]):
            seen.append(frame["event"])
        changed = await _event(c, "runtime.mode_changed")
        assert changed["payload"]["runtimeMode"] == "cloud"
        assert "agent.completed" in seen
        session = (await c.request("sessions.get", {"sessionId": sid}))["session"]
        assert session["runtimeMode"] == "cloud" and session.get("pendingRuntimeMode") is None
        await _set_mode(c, sid, "local")
    _set_policy(shared_server, {"tools": {}})


async def _processes(container: Any, needle: str) -> bool:
    """Whether a process whose command line holds ``needle`` runs in ``container``."""
    top = await asyncio.to_thread(container.top, ps_args="-eo pid,args")
    return any(needle in " ".join(p) for p in top.get("Processes") or [])


async def test_a_forced_switch_stops_the_sandbox_call_and_goes_local_now(
    engine: docker.DockerClient, shared_server: ServerProcess, model: Any
) -> None:
    _set_policy(shared_server, {"tools": {"bash.exec": "allow"}})  # no gate in either mode
    async with GatewayClient(shared_server.ws_url, token=shared_server.token) as c:
        sid = await _new_session(c, model)
        await _set_mode(c, sid, "cloud")
        await _event(c, "runtime.mode_changed")
        with pytest.raises(GatewayError) as bad:
            await c.request(
                "runtime.setMode",
                {
                    "sessionId": sid,
                    "runtimeMode": "local",
                    "force": "yes",
                    "idempotencyKey": _key(),
                },
            )
        assert bad.value.code == "INVALID_REQUEST"
        model.enqueue(_bash("sleep 60; echo never"))
        accepted = await c.request(
            "agent.run", {"sessionId": sid, "input": "slow", "idempotencyKey": _key()}
        )
        call = (await _event(c, "agent.tool_call"))["payload"]
        assert call["runtimeMode"] == "cloud"
        (container,) = _session_containers(engine, sid)
        deadline = time.monotonic() + 30
        while not await _processes(container, "sleep 60"):
            assert time.monotonic() < deadline, "the sandbox call never started"
            await asyncio.sleep(0.2)

        started = time.monotonic()
        forced = await c.request(
            "runtime.setMode",
            {"sessionId": sid, "runtimeMode": "local", "force": True, "idempotencyKey": _key()},
        )
        took_s = time.monotonic() - started
        assert forced["status"] == "applied" and forced["effectiveOn"] == "now", forced
        assert forced["runtimeMode"] == "local"
        assert took_s < 30, f"a forced switch took {took_s:.1f} s"
        session = await c.request("sessions.get", {"sessionId": sid, "afterSeq": 0})
        assert session["session"]["runtimeMode"] == "local"
        assert session["session"].get("pendingRuntimeMode") is None
        assert not await _processes(container, "sleep 60")  # killed, not left running

        events = session["events"]
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        mine = [e for e in events if e["payload"].get("runId") == accepted["runId"]]
        result = next(e for e in mine if e["event"] == "agent.tool_result")["payload"]
        assert result["toolCallId"] == call["toolCallId"] and result["status"] == "failed"
        assert result["error"]["reason"] == "runtime.mode_forced", result
        assert "forced the session back to local mode" in result["error"]["message"]
        failed = next(e for e in mine if e["event"] == "agent.failed")["payload"]
        assert failed["aborted"] is True and failed["error"]["reason"] == "runtime.mode_forced"
        changed = [e for e in events if e["event"] == "runtime.mode_changed"]
        assert changed[-1]["payload"]["runtimeMode"] == "local"

        audit = await c.request("audit.query", {"sessionId": sid, "action": "runtime.mode_forced"})
        (entry,) = audit["items"]
        assert entry["runId"] == accepted["runId"] and entry["actor"]
        assert entry["detail"]["from"] == "cloud" and entry["detail"]["to"] == "local"
        assert entry["detail"]["forced"] is True
        tools = await c.request("audit.query", {"sessionId": sid, "action": "tool.result"})
        assert any(i["detail"]["toolCallId"] == call["toolCallId"] for i in tools["items"])

        # the transcript keeps the call's answer, and the next turn runs on the host
        model.enqueue(_bash("echo on-the-host"), _done())
        again, result2 = await _tool(c, "again", sessionId=sid)
        assert again["runtimeMode"] == "local" and result2["call"]["runtimeMode"] == "local"
        assert result2["status"] == "success" and "on-the-host" in result2["output"]
        full = await c.request("sessions.get", {"sessionId": sid, "includeMessages": True})
        answers = [m for m in full["messages"] if m.get("tool_call_id") == call["toolCallId"]]
        assert len(answers) == 1 and "forced" in answers[0]["content"]
    _set_policy(shared_server, {"tools": {}})


async def test_docker_down_fails_fast_or_falls_back_as_the_policy_says(
    server_factory: Any, model: Any, tmp_path: Any
) -> None:
    nowhere = f"unix://{tmp_path}/no-docker.sock"
    server = server_factory(args=[f"--SandboxManager.docker_host={nowhere}"])
    async with GatewayClient(server.ws_url, token=server.token) as c:
        # the policy keeps bash off the host: the run fails with SANDBOX_UNAVAILABLE, fast
        _set_policy(server, {"bashMode": "sandbox"})
        started = time.perf_counter()
        accepted, events = await c.run("in the cloud", runtimeMode="cloud")
        elapsed = time.perf_counter() - started
        failed = events[-1]
        assert failed["event"] == "agent.failed", events
        assert failed["payload"]["error"]["code"] == "SANDBOX_UNAVAILABLE"
        assert "docker" in failed["payload"]["error"]["message"].lower()
        assert elapsed < 10, f"the Docker-down path took {elapsed:.1f} s"
        sid = accepted["sessionId"]

        # the policy lets bash run on the host: the turn falls back to local, audited
        _set_policy(server, {"bashMode": "host", "tools": {"bash.exec": "allow"}})
        model.enqueue(_bash("echo fallback"), _done())
        _, result = await _tool(c, "again", sessionId=sid)
        assert result["status"] == "success" and result["call"]["runtimeMode"] == "local"
        audit = await c.request("audit.query", {"sessionId": sid, "action": "sandbox.fallback"})
        assert audit["items"] and "docker" in audit["items"][0]["detail"]["reason"].lower()


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the allowlisted host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


async def test_egress_follows_the_allowlist_and_is_audited(
    engine: docker.DockerClient, server_factory: Any, model: Any
) -> None:
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    allowed = f"127.0.0.1:{web.server_address[1]}"
    server = server_factory()
    _set_policy(server, {"network": {"allow": [allowed]}})
    fetch = (
        'python3 -c "import sys,urllib.request as u\n'
        "try: print(u.urlopen(sys.argv[1], timeout=10).read().decode())\n"
        "except Exception as e: print('REFUSED', e)\" "
    )
    try:
        async with GatewayClient(server.ws_url, token=server.token) as c:
            model.enqueue(_bash(fetch + f"http://{allowed}/"), _done())
            accepted, result = await _tool(c, "fetch", runtimeMode="cloud")
            assert "hello from the allowlisted host" in result["output"], result
            sid = accepted["sessionId"]
            model.enqueue(_bash(fetch + "http://example.org/"), _done())
            _, result = await _tool(c, "fetch elsewhere", sessionId=sid)
            assert "REFUSED" in result["output"], result
            await asyncio.sleep(0.3)  # egress audit entries are committed within the window
            audit = await c.request("audit.query", {"sessionId": sid, "action": "sandbox.egress"})
    finally:
        web.shutdown()
        web.server_close()
    decisions = {(e["detail"]["host"], e["detail"]["allowed"]) for e in audit["items"]}
    assert ("127.0.0.1", True) in decisions and ("example.org", False) in decisions, decisions


async def test_idle_sandboxes_are_reaped_and_orphans_removed_after_a_kill(
    engine: docker.DockerClient, server_factory: Any, model: Any, tmp_path: Any
) -> None:
    root = tmp_path / "root"
    server = server_factory(root=root, args=["--SandboxManager.idle_ttl=1.5"])
    async with GatewayClient(server.ws_url, token=server.token) as c:
        model.enqueue(_bash("true"), _done())
        accepted, _ = await _tool(c, "touch the sandbox", runtimeMode="cloud")
    sid = accepted["sessionId"]
    assert len(_session_containers(engine, sid)) == 1
    assert await _gone(engine, sid, 15), "the idle sandbox was not reaped"

    # a sandbox left behind by a server killed with SIGKILL is removed by the next start
    async with GatewayClient(server.ws_url, token=server.token) as c:
        model.enqueue(_bash("true"), _done())
        await _tool(c, "again", sessionId=sid)
    (orphan,) = _session_containers(engine, sid)
    server.kill()
    assert orphan.reload() is None and orphan.status == "running"
    server_factory(root=root)
    assert await _gone(engine, sid, 20), "the orphan survived the next server start"
