"""Teams on a real JupyterHub: users log in through the Hub, meet on the OpenFoal cloud
service (a Hub service on Postgres), and their roles come from Hub groups."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.hub import HubProcess, HubUser

pytestmark = pytest.mark.postgres


def _wait(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _error(r: Any) -> dict[str, Any]:
    body = r.json()
    assert body["ok"] is False, body
    return dict(body["error"])


def _key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def users(jupyterhub: HubProcess) -> dict[str, HubUser]:
    """Each user logged in through the Hub's login form."""
    return {name: jupyterhub.login(name) for name in ("alice", "bob", "carol", "dave")}


def _gated_run(alice: HubUser, model: Any, marker: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """alice starts a run whose bash call waits at a gate; return its accepted payload and gate."""
    model.enqueue(
        Reply(
            steps=[ToolCallStep(name="bash.exec", arguments={"command": f"echo ran >> {marker}"})]
        ),
        Reply(steps=[TextStep(text="done")]),
    )
    accepted = alice.call("agent.run", {"input": "run it", "idempotencyKey": _key()})

    def pending() -> dict[str, Any] | None:
        items = alice.call("policy-gate.list", {"status": "pending"})["items"]
        return next((g for g in items if g["runId"] == accepted["runId"]), None)

    try:
        return accepted, _wait("alice's gate", pending)
    except AssertionError:
        got = alice.call("sessions.get", {"sessionId": accepted["sessionId"], "afterSeq": 0})
        raise AssertionError(f"no gate; the session's events: {got['events']}") from None


def test_login_through_the_hub_names_the_user(jupyterhub: HubProcess, users, model) -> None:
    with pytest.raises(PermissionError):
        jupyterhub.login("alice", password="not-the-password")
    for name in ("alice", "bob", "carol"):
        assert users[name].call("sessions.list")["items"] is not None
    model.enqueue(Reply(steps=[TextStep(text="hello bob")]))
    accepted = users["bob"].call("agent.run", {"input": "hi", "idempotencyKey": _key()})
    session = users["bob"].call("sessions.get", {"sessionId": accepted["sessionId"]})["session"]
    assert session["owner"] == "bob"


def test_bob_is_forbidden_and_carol_approves_alices_gate(users, model, tmp_path) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    marker = tmp_path / "approved.txt"
    accepted, gate = _gated_run(alice, model, marker)
    sid, run_id, gate_id = accepted["sessionId"], accepted["runId"], gate["gateId"]

    # bob, a member, sees nothing of alice's and is refused on each of her resources
    for method, params in [
        ("sessions.get", {"sessionId": sid}),
        (
            "policy-gate.resolve",
            {"gateId": gate_id, "decision": "approve", "idempotencyKey": _key()},
        ),
        ("audit.query", {"sessionId": sid}),
        ("audit.query", {"runId": run_id}),
        ("audit.replay", {"runId": run_id}),
    ]:
        r = bob.api(method, params)
        assert r.status_code == 403 and _error(r)["code"] == "FORBIDDEN", (method, r.text)
    assert gate_id not in [g["gateId"] for g in bob.call("policy-gate.list")["items"]]

    # carol cannot sign her decision with alice's name
    r = carol.api(
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "approve", "resolvedBy": "alice", "idempotencyKey": _key()},
    )
    assert _error(r)["code"] == "FORBIDDEN" and "resolvedBy" in _error(r)["message"]
    assert not marker.exists()

    # carol, an approver, sees alice's gate in the workspace and approves it
    assert gate_id in [
        g["gateId"] for g in carol.call("policy-gate.list", {"status": "pending"})["items"]
    ]
    resolved = carol.call(
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "approve", "reason": "fine", "idempotencyKey": _key()},
    )["gate"]
    assert resolved["status"] == "approved" and resolved["resolvedBy"] == "carol"

    def completed() -> bool:
        got = alice.call("sessions.get", {"sessionId": sid, "afterSeq": 0, "limit": 1000})
        return any(e["event"] == "agent.completed" for e in got["events"])

    _wait("alice's run to complete", completed)
    assert marker.read_text().splitlines() == ["ran"]  # the approved call ran once
    # the admin set the model and its key; no answer shows the key
    replay = alice.api("audit.replay", {"runId": run_id})
    assert replay.status_code == 200 and "sk-scripted" not in replay.text
    r = alice.api("agent.run", {"input": "x", "model": "openai:other", "idempotencyKey": _key()})
    assert _error(r)["code"] == "INVALID_REQUEST" and "not allowed" in _error(r)["message"]
    # alice sees who decided and why; the decision is on her trail with both identities
    gates = alice.call("policy-gate.list", {"sessionId": sid})["items"]
    assert [(g["status"], g["resolvedBy"], g["reason"]) for g in gates] == [
        ("approved", "carol", "fine")
    ]
    trail = alice.call("audit.query", {"runId": run_id, "action": "gate.approved"})["items"]
    # (alice, an admin, reads every trail: carol's own copy of the entry too)
    assert {(e["actor"], e["detail"]["sessionOwner"]) for e in trail} == {("carol", "alice")}
    # every refusal above is audited with both identities; alice, an admin, reads them
    denied = alice.call("audit.query", {"action": "access.denied", "limit": 100})["items"]
    against_alice = [e for e in denied if e["detail"]["owner"] == "alice"]
    assert {e["actor"] for e in against_alice} >= {"bob", "carol"}
    assert any(e["resource"] == f"gate:{gate_id}" and e["actor"] == "bob" for e in denied)


def test_roles_come_from_hub_groups(users) -> None:
    alice, bob, dave = users["alice"], users["bob"], users["dave"]
    version = alice.call("policy.get")["policy"]["version"]
    r = bob.api("policy.update", {"patch": {"gateTimeoutSec": 60}, "idempotencyKey": _key()})
    assert _error(r)["code"] == "FORBIDDEN" and "admin" in _error(r)["message"]
    updated = alice.call(
        "policy.update",
        {"patch": {"gateTimeoutSec": 600}, "expectedVersion": version, "idempotencyKey": _key()},
    )["policy"]
    assert updated["version"] == version + 1 and updated["updatedBy"] == "alice"
    # dave is a Hub user in none of the OpenFoal groups: refused on everything, audited
    r = dave.api("sessions.list")
    assert r.status_code == 403 and "none of this server's OpenFoal groups" in _error(r)["message"]
    entries = alice.call("audit.query", {"actor": "dave"})["items"]
    assert entries and entries[0]["action"] == "access.denied"
    assert entries[0]["detail"]["roles"] == []


def test_expired_hub_token_is_refused_and_audited(users) -> None:
    alice = users["alice"]
    token = alice.new_token(expires_in=1)
    time.sleep(2)  # the Hub itself expires the token; nothing here races it
    r = alice.api("sessions.list", token=token)
    assert r.status_code == 401 and _error(r)["code"] == "UNAUTHORIZED"
    trace = _error(r)["traceId"]
    entries = alice.call("audit.query", {"action": "access.unauthenticated", "traceId": trace})
    assert [e["actor"] for e in entries["items"]] == ["anonymous"]


@pytest.mark.asyncio
async def test_admins_team_policy_reaches_bobs_running_server(
    jupyterhub: HubProcess, users, server_factory
) -> None:
    alice, bob = users["alice"], users["bob"]
    # bob's own server pulls the team policy from the cloud service with his Hub token
    server = server_factory(
        env={
            "OPENFOAL_TEAM_POLICY_URL": jupyterhub.service_url,
            "OPENFOAL_TEAM_POLICY_TOKEN": bob.token,
        },
        args=["--OpenFoalApp.team_policy_poll_s=1"],
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        alice.call(
            "policy.update", {"patch": {"tools": {"file.read": "deny"}}, "idempotencyKey": _key()}
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            e = await c.next_event(max(0.01, deadline - loop.time()))
            if (
                e.get("event") == "policy.updated"
                and e["payload"]["policy"]["tools"].get("file.read") == "deny"
            ):
                break
        assert e["payload"]["team"]["updatedBy"] == "alice"
        assert e["payload"]["policy"]["updatedBy"] == "alice"
        # bob may tighten it for himself, never loosen it
        await c.request(
            "policy.update",
            {"patch": {"tools": {"file.read": "allow", "http.request": "deny"}}},
        )
        policy = (await c.request("policy.get", {}))["policy"]
        assert policy["tools"]["file.read"] == "deny" and policy["tools"]["http.request"] == "deny"
