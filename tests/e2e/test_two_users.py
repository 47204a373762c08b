"""Two users on one server: policy, memory, audit and metrics are each user's own."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from openfoal_kernel.client import GatewayClient, GatewayError
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import ServerProcess

HERE = Path(__file__).parent


def _server(server_factory) -> ServerProcess:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return server_factory(
        env={"PYTHONPATH": path},
        args=[
            "--ServerApp.identity_provider_class=two_users_idp.TwoUsersIdentityProvider",
            "--OpenFoalApp.server_owner=carol",
        ],
    )


def _client(server: ServerProcess, token: str) -> GatewayClient:
    return GatewayClient(server.ws_url, token=token)


def _key() -> str:
    return uuid.uuid4().hex


async def _first_of(c: GatewayClient, run_id: str, names: set[str]) -> dict:
    async for e in c.run_events(run_id):
        if e["event"] in names:
            return e
    raise AssertionError(f"run {run_id} ended without {names}")


async def _bash_run(c: GatewayClient, model, marker: Path) -> dict:
    """A turn that runs bash; its first gate request or terminal event."""
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": f"echo x >> {marker}"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    accepted = await c.request("agent.run", {"input": "run it"})
    return await _first_of(
        c, accepted["runId"], {"policy-gate.requested", "agent.completed", "agent.failed"}
    )


async def _policy_entries(c: GatewayClient, scope: str) -> list[dict]:
    items = (await c.request("audit.query", {"action": "policy.update", "limit": 100}))["items"]
    return [i for i in items if i["resource"] == f"policy:{scope}"]


@pytest.mark.asyncio
async def test_policy_is_scoped_per_user(server_factory, model, tmp_path: Path) -> None:
    server = _server(server_factory)
    async with (
        _client(server, "alice-token") as alice,
        _client(server, "bob-token") as bob,
        _client(server, "openfoal-test-token") as carol,
    ):
        assert alice.hello["user"]["name"] == "alice" and bob.hello["user"]["name"] == "bob"
        # bob may not change the policy that governs everyone, nor alice's
        for scope in ("default", "user:alice", "team"):
            with pytest.raises(GatewayError) as err:
                await bob.request(
                    "policy.update",
                    {
                        "scopeKey": scope,
                        "patch": {"toolDefault": "allow"},
                        "idempotencyKey": _key(),
                    },
                )
            assert err.value.code == "FORBIDDEN", scope
        with pytest.raises(GatewayError) as err:
            await bob.request("policy.get", {"scopeKey": "user:alice"})
        assert err.value.code == "FORBIDDEN"
        # his own scope opens bash for his runs only
        await bob.request(
            "policy.update",
            {
                "scopeKey": "user:bob",
                "patch": {"tools": {"bash.exec": "allow"}},
                "idempotencyKey": _key(),
            },
        )
        assert (await bob.request("policy.get", {"scopeKey": "user:bob"}))["policy"]["tools"] == {
            "bash.exec": "allow"
        }
        first = await _bash_run(bob, model, tmp_path / "bob.txt")
        assert first["event"] == "agent.completed", first
        assert (tmp_path / "bob.txt").read_text() == "x\n"
        first = await _bash_run(alice, model, tmp_path / "alice.txt")
        assert first["event"] == "policy-gate.requested", first  # alice's runs still ask
        gate = first["payload"]["gate"]
        with pytest.raises(GatewayError) as err:  # and bob cannot answer alice's gate
            await bob.request(
                "policy-gate.resolve",
                {"gateId": gate["gateId"], "decision": "approve", "idempotencyKey": _key()},
            )
        assert err.value.code in ("FORBIDDEN", "NOT_FOUND")
        await alice.request(
            "policy-gate.resolve",
            {"gateId": gate["gateId"], "decision": "reject", "idempotencyKey": _key()},
        )
        # alice's session scope is hers: bob cannot write it either
        with pytest.raises(GatewayError) as err:
            await bob.request(
                "policy.update",
                {
                    "scopeKey": f"session:{gate['sessionId']}",
                    "patch": {"tools": {"bash.exec": "allow"}},
                    "idempotencyKey": _key(),
                },
            )
        assert err.value.code == "FORBIDDEN"
        # the server owner changes the default: it is in everyone's audit trail
        await carol.request(
            "policy.update",
            {"scopeKey": "default", "patch": {"gateTimeoutSec": 600}, "idempotencyKey": _key()},
        )
        for c in (alice, bob, carol):
            entries = await _policy_entries(c, "default")
            assert [e["actor"] for e in entries] == ["carol"], entries
        # bob's own scope is in his trail, not alice's
        assert len(await _policy_entries(bob, "user:bob")) == 1
        assert await _policy_entries(alice, "user:bob") == []
        # an admin may change a user's scope; it shows in that user's trail and the admin's
        await carol.request(
            "policy.update",
            {
                "scopeKey": "user:alice",
                "patch": {"tools": {"file.read": "allow"}},
                "idempotencyKey": _key(),
            },
        )
        assert len(await _policy_entries(alice, "user:alice")) == 1
        assert len(await _policy_entries(carol, "user:alice")) == 1
        assert await _policy_entries(bob, "user:alice") == []


@pytest.mark.asyncio
async def test_memory_and_metrics_are_per_user(server_factory, model) -> None:
    server = _server(server_factory)
    async with (
        _client(server, "alice-token") as alice,
        _client(server, "bob-token") as bob,
        _client(server, "openfoal-test-token") as carol,
    ):
        await alice.request(
            "memory.appendDaily", {"text": "alice-secret-7731", "alsoLongTerm": True}
        )
        await bob.request("memory.appendDaily", {"text": "bob-note-4412", "alsoLongTerm": True})
        bob_memory = (await bob.request("memory.get", {"path": "MEMORY.md"}))["content"]
        alice_memory = (await alice.request("memory.get", {"path": "MEMORY.md"}))["content"]
        assert "bob-note-4412" in bob_memory and "alice-secret-7731" not in bob_memory
        assert "alice-secret-7731" in alice_memory and "bob-note-4412" not in alice_memory
        owner_memory = (await carol.request("memory.get", {"path": "MEMORY.md"}))["content"]
        assert "alice-secret" not in owner_memory and "bob-note" not in owner_memory
        # each user's prompt carries their own memory only
        model.enqueue(Reply(steps=[TextStep(text="hi alice")]))
        _, events = await alice.run("hello")
        assert events[-1]["event"] == "agent.completed"
        prompt = json.dumps(model.requests[-1].body)
        assert "alice-secret-7731" in prompt and "bob-note-4412" not in prompt
        for _ in range(2):
            model.enqueue(Reply(steps=[TextStep(text="hi bob")]))
            _, events = await bob.run("hello")
            assert events[-1]["event"] == "agent.completed"
        prompt = json.dumps(model.requests[-1].body)
        assert "bob-note-4412" in prompt and "alice-secret-7731" not in prompt
        # the agent's memory tool reads its owner's files too
        model.enqueue(
            Reply(steps=[ToolCallStep(name="memory.get", arguments={"path": "MEMORY.md"})]),
            Reply(steps=[TextStep(text="read")]),
        )
        _, events = await bob.run("what do you remember?")
        results = [e for e in events if e["event"] == "agent.tool_result"]
        assert results and "bob-note-4412" in json.dumps(results[0]["payload"])
        assert "alice-secret-7731" not in json.dumps(results[0]["payload"])
        # metrics: each user counts their own runs; the server owner (an admin) everyone's
        assert (await alice.request("metrics.summary", {}))["metrics"]["runsTotal"] == 1
        assert (await bob.request("metrics.summary", {}))["metrics"]["runsTotal"] == 3
        assert (await carol.request("metrics.summary", {}))["metrics"]["runsTotal"] == 4
