"""Approval routing on a real JupyterHub: alice's gated call, raised on her own server, is
decided by carol from carol's own server through the cloud service (Postgres), and survives
the cloud service dying before and after carol's decision, and alice's server dying."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.hub import HubProcess, HubUser, own_server_options
from openfoal_testing.plugin import ServerProcess

pytestmark = pytest.mark.postgres


def _wait(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _key() -> str:
    return uuid.uuid4().hex


def _call(server: ServerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    r = server.api(method, params, timeout=60)
    body = r.json()
    assert body.get("ok"), (method, r.status_code, body)
    return dict(body["payload"])


def _error(server: ServerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    r = server.api(method, params, timeout=60)
    body = r.json()
    assert body["ok"] is False, (method, body)
    return dict(body["error"])


def _gate_ids(server: ServerProcess, **params: Any) -> list[str]:
    return [g["gateId"] for g in _call(server, "policy-gate.list", params)["items"]]


@pytest.mark.timeout(300)  # a Hub, a cloud and three servers, two of them killed and restarted
def test_carol_approves_alices_gate_from_her_server_through_a_cloud_crash(
    jupyterhub: HubProcess, model, server_factory, tmp_path: Path
) -> None:
    users: dict[str, HubUser] = {n: jupyterhub.login(n) for n in ("alice", "bob", "carol")}
    alice_root = tmp_path / "alice" / "root"
    own = {n: own_server_options(jupyterhub, u) for n, u in users.items()}
    alice = server_factory(root=alice_root, **own["alice"])
    bob = server_factory(root=tmp_path / "bob" / "root", **own["bob"])
    carol = server_factory(root=tmp_path / "carol" / "root", **own["carol"])
    marker = tmp_path / "ran.txt"
    model.enqueue(
        Reply(
            steps=[ToolCallStep(name="bash.exec", arguments={"command": f"echo ran >> {marker}"})]
        ),
        Reply(steps=[TextStep(text="done")]),
    )
    accepted = _call(alice, "agent.run", {"input": "run it", "idempotencyKey": _key()})
    gate = _wait(
        "alice's gate on her server",
        lambda: next(
            (
                g
                for g in _call(alice, "policy-gate.list", {"status": "pending"})["items"]
                if g["runId"] == accepted["runId"]
            ),
            None,
        ),
    )
    gate_id = gate["gateId"]

    # the pending gate reaches carol's Approvals panel on her own server, marked as alice's
    def on_carols_server() -> dict[str, Any] | None:
        items = _call(carol, "policy-gate.list", {"status": "pending"})["items"]
        return next((g for g in items if g["gateId"] == gate_id), None)

    remote = _wait("alice's gate on carol's server", on_carols_server)
    assert remote["requestedBy"] == "alice" and remote["toolName"] == "bash.exec"
    # bob, a member, never sees it and may not decide it
    assert gate_id not in _gate_ids(bob)
    err = _error(
        bob,
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "approve", "idempotencyKey": _key()},
    )
    assert err["code"] == "FORBIDDEN", err
    # carol cannot sign with alice's name on her own server either
    err = _error(
        carol,
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "approve", "resolvedBy": "alice", "idempotencyKey": _key()},
    )
    assert err["code"] == "FORBIDDEN"

    # alice's server goes down and the cloud service crashes, the gate still pending
    alice.kill()
    jupyterhub.kill_service()
    approve = {"gateId": gate_id, "decision": "approve", "reason": "looks fine"}
    err = _error(carol, "policy-gate.resolve", {**approve, "idempotencyKey": _key()})
    assert err["retryable"] is True, err  # the cloud is away: a structured, retryable error
    assert not marker.exists()

    # the Hub starts the service again; carol's decision goes through, as carol
    def decided() -> dict[str, Any] | None:
        r = carol.api("policy-gate.resolve", {**approve, "idempotencyKey": _key()}, timeout=60)
        body = r.json()
        if body.get("ok"):
            return dict(body["payload"]["gate"])
        assert body["error"]["retryable"], body
        return None

    resolved = _wait("the cloud service to come back", decided, timeout=150)
    assert resolved["status"] == "approved" and resolved["resolvedBy"] == "carol"
    assert not marker.exists()  # alice's server is still down

    # the cloud crashes again between carol's decision and alice's pickup; alice's server
    # comes back meanwhile, picks the decision up once the cloud is back, continues the run
    jupyterhub.kill_service()
    alice = server_factory(root=alice_root, **own["alice"])
    assert _gate_ids(alice, status="pending") == [gate_id]

    def completed() -> bool:
        got = _call(alice, "sessions.get", {"sessionId": accepted["sessionId"], "afterSeq": 0})
        return any(e["event"] == "agent.completed" for e in got["events"])

    _wait("alice's run to continue", completed)
    assert marker.read_text().splitlines() == ["ran"]
    gates = _call(alice, "policy-gate.list", {"sessionId": accepted["sessionId"]})["items"]
    assert [(g["status"], g["resolvedBy"], g["reason"]) for g in gates] == [
        ("approved", "carol", "looks fine")
    ]
    # both identities on alice's trail
    trail = _call(alice, "audit.query", {"action": "gate.approved"})["items"]
    assert any(
        e["actor"] == "carol" and e["detail"].get("sessionOwner") == "alice" for e in trail
    ), trail
    # and on carol's trail at the cloud, where her decision was taken
    theirs = users["carol"].call("audit.query", {"action": "gate.approved"})["items"]
    assert any(e["resource"] == f"gate:{gate_id}" and e["actor"] == "carol" for e in theirs)
    # the first decision won: alice's own late one gets a structured conflict
    err = _error(
        alice,
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "reject", "idempotencyKey": _key()},
    )
    assert err["code"] == "VERSION_CONFLICT" and "carol" in err["message"]
    time.sleep(1)  # a further poll applies nothing twice
    assert marker.read_text().splitlines() == ["ran"]
    # carol's panel no longer lists it as pending
    assert gate_id not in _gate_ids(carol, status="pending")
    # alice's history reaches the cloud whole: the decision added nothing there to diverge
    status = _wait(
        "alice's outbox to drain",
        lambda: (st := _call(alice, "sync.status", {}))["pending"] == 0 and st,
    )
    assert status["conflicts"] == [] and status["deadLetters"] == [], status
