"""Docker down: a cloud turn degrades as the policy's ``sandboxDegrade`` says."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.asyncio


def _call(name: str, **arguments: Any) -> Reply:
    return Reply(steps=[ToolCallStep(name=name, arguments=arguments)])


def _set_policy(server: ServerProcess, patch: dict[str, Any]) -> None:
    policy = server.api("policy.get").json()["payload"]["policy"]
    r = server.api(
        "policy.update",
        {"patch": patch, "expectedVersion": policy["version"], "idempotencyKey": uuid.uuid4().hex},
    )
    assert r.status_code == 200, r.text


def _results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["payload"] for e in events if e["event"] == "agent.tool_result"]


async def test_docker_down_degrades_as_the_policy_says(
    server_factory: Any, model: Any, tmp_path: Any
) -> None:
    nowhere = f"unix://{tmp_path}/no-docker.sock"
    server = server_factory(args=[f"--SandboxManager.docker_host={nowhere}"])
    (server.root / "notes.txt").write_text("kept notes\n")
    async with GatewayClient(server.ws_url, token=server.token) as c:
        # read-only: the turn runs on the host, only the tools that change nothing work
        _set_policy(
            server,
            {"bashMode": "sandbox", "sandboxDegrade": "read-only", "toolDefault": "allow"},
        )
        model.enqueue(
            _call("file.write", path="new.txt", content="x"),
            _call("bash.exec", command="touch made-by-bash"),
            _call("file.read", path="notes.txt"),
            Reply(steps=[TextStep(text="done")]),
        )
        accepted, events = await c.run("look around", runtimeMode="cloud")
        assert events[-1]["event"] == "agent.completed", events
        wrote, bashed, read = _results(events)
        assert wrote["status"] == "denied" and wrote["error"]["code"] == "POLICY_DENIED"
        assert bashed["status"] == "denied"
        assert read["status"] == "success" and "kept notes" in read["output"]
        assert not (server.root / "new.txt").exists()
        assert not (server.root / "made-by-bash").exists()
        calls = [e["payload"] for e in events if e["event"] == "agent.tool_call"]
        assert {call["runtimeMode"] for call in calls} == {"local"}
        sid = accepted["sessionId"]
        audit = await c.request("audit.query", {"sessionId": sid, "action": "sandbox.fallback"})
        assert audit["items"][0]["detail"]["degrade"] == "read-only"
        assert "docker" in audit["items"][0]["detail"]["reason"].lower()

        # local: the turn runs on the host with its own policy, although bashMode is sandbox
        _set_policy(server, {"sandboxDegrade": "local", "tools": {"file.write": "allow"}})
        model.enqueue(
            _call("file.write", path="new.txt", content="written"),
            Reply(steps=[TextStep(text="done")]),
        )
        _, events = await c.run("write it", sessionId=sid)
        (wrote,) = _results(events)
        assert wrote["status"] == "success", wrote
        assert (server.root / "new.txt").read_text() == "written"

        # fail: SANDBOX_UNAVAILABLE, although bashMode host would have run it locally
        _set_policy(server, {"bashMode": "host", "sandboxDegrade": "fail"})
        _, events = await c.run("once more", sessionId=sid)
        assert events[-1]["event"] == "agent.failed"
        assert events[-1]["payload"]["error"]["code"] == "SANDBOX_UNAVAILABLE"

        # unset: bashMode decides, as before
        _set_policy(server, {"sandboxDegrade": None})
        model.enqueue(Reply(steps=[TextStep(text="local again")]))
        _, events = await c.run("and again", sessionId=sid)
        assert events[-1]["event"] == "agent.completed"


async def test_an_unknown_degrade_mode_is_invalid(server_factory: Any) -> None:
    server = server_factory()
    policy = server.api("policy.get").json()["payload"]["policy"]
    assert policy.get("sandboxDegrade") is None
    r = server.api(
        "policy.update",
        {
            "patch": {"sandboxDegrade": "sometimes"},
            "expectedVersion": policy["version"],
            "idempotencyKey": uuid.uuid4().hex,
        },
    )
    assert r.json()["error"]["code"] == "INVALID_REQUEST", r.text
