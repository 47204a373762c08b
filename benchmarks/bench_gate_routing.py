"""Approval routing on a real JupyterHub: how fast a gate reaches an approver's own server, and
how fast an approver's decision continues the owner's run.

Measured, ``ROUNDS`` times: alice's own server (DuckDB) runs a gated ``bash.exec``; from the
moment her server lists the gate pending, the time until carol's own server lists it (pushed by
alice's outbox to the cloud service on Postgres, listed by carol's server there); then from
carol's ``policy-gate.resolve`` on her server (forwarded to the cloud) answering, the time until
alice's run reports the call's result (alice's server picks the decision up and continues).
Baseline, in the same run: alice approving on her own server (the cloud takes the decision
first, so the same arbitration), to the same event. Every clock is polled every 10 ms.
Target (issue 12): p50 < 500 ms for both routes.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep
from openfoal_server_ext.cloud_services import PrivatePostgres
from openfoal_testing.hub import HubProcess, own_server_options
from openfoal_testing.plugin import ServerProcess, scripted_env

from ._table import Row, percentile, print_table

ROUNDS = int(os.environ.get("OPENFOAL_BENCH_GATE_ROUNDS", "20"))
TARGET_S = 0.5
TICK = 0.01


def _until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(TICK)
    raise RuntimeError(f"timed out waiting for {what}")


def _call(server: ServerProcess, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = server.api(method, params, timeout=60).json()
    if not body.get("ok"):
        raise RuntimeError(f"{method}: {body}")
    return dict(body["payload"])


def _pending(server: ServerProcess, gate_id: str | None, run_id: str) -> str | None:
    items = _call(server, "policy-gate.list", {"status": "pending"})["items"]
    return next(
        (g["gateId"] for g in items if g["runId"] == run_id or g["gateId"] == gate_id), None
    )


def _tool_done(server: ServerProcess, session_id: str) -> bool:
    got = _call(server, "sessions.get", {"sessionId": session_id, "afterSeq": 0, "limit": 1000})
    return any(e["event"] == "agent.tool_result" for e in got["events"])


def one_round(
    model: ScriptedModelServer, alice: ServerProcess, carol: ServerProcess, *, by_carol: bool
) -> tuple[float, float]:
    """One gated call; return (gate -> carol's list, decision -> call's result) seconds."""
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo routed"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    accepted = _call(alice, "agent.run", {"input": "go", "idempotencyKey": uuid.uuid4().hex})
    sid, run_id = accepted["sessionId"], accepted["runId"]
    gate_id = _until("alice's gate", lambda: _pending(alice, None, run_id))
    raised = time.monotonic()
    _until("the gate on carol's server", lambda: _pending(carol, gate_id, run_id))
    listed = time.monotonic() - raised
    decider = carol if by_carol else alice
    _call(
        decider,
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "approve", "idempotencyKey": uuid.uuid4().hex},
    )
    decided = time.monotonic()
    _until("the call's result", lambda: _tool_done(alice, sid))
    continued = time.monotonic() - decided
    _until(
        "the run to end",
        lambda: any(
            e["event"] == "agent.completed"
            for e in _call(alice, "sessions.get", {"sessionId": sid, "afterSeq": 0})["events"]
        ),
    )
    return listed, continued


def main() -> bool:
    """Start Postgres, the Hub with the cloud service and two users' servers; measure."""
    tmp = Path(tempfile.mkdtemp(prefix="openfoal-bench-gates-"))
    pg = PrivatePostgres().start()
    servers: list[ServerProcess] = []
    hub: HubProcess | None = None
    try:
        with ScriptedModelServer() as model:
            env = scripted_env(model)
            hub = HubProcess(
                tmp / "hub", database_url=pg.create_database("bench_gates"), model_env=env
            )
            (tmp / "hub").mkdir()
            hub.start()
            users = {n: hub.login(n) for n in ("alice", "carol")}
            for name, user in users.items():
                opts = own_server_options(hub, user)
                server = ServerProcess(
                    tmp / name / "root", env={**env, **opts["env"]}, args=opts["args"]
                )
                servers.append(server.start())
            alice, carol = servers
            one_round(model, alice, carol, by_carol=True)  # warm-up: kernels, connections
            listed: list[float] = []
            routed: list[float] = []
            local: list[float] = []
            for i in range(ROUNDS):
                seen, cont = one_round(model, alice, carol, by_carol=i % 2 == 0)
                listed.append(seen)
                (routed if i % 2 == 0 else local).append(cont)
    finally:
        for server in servers:
            server.stop()
        if hub is not None:
            hub.stop()
        pg.stop()

    def ms(samples: list[float], q: float) -> str:
        return f"{percentile(samples, q) * 1000:.0f} ms"

    rows = [
        Row(
            metric=f"gate on alice's server -> on carol's server ({len(listed)} gates)",
            value=f"p50 {ms(listed, 50)}, p99 {ms(listed, 99)}",
            baseline="-",
            target=f"p50 < {TARGET_S * 1000:.0f} ms",
            ok=percentile(listed, 50) < TARGET_S,
        ),
        Row(
            metric=f"carol's approval -> alice's call ran ({len(routed)} gates)",
            value=f"p50 {ms(routed, 50)}, p99 {ms(routed, 99)}",
            baseline=f"alice approving herself: p50 {ms(local, 50)}, p99 {ms(local, 99)}",
            target=f"p50 < {TARGET_S * 1000:.0f} ms",
            ok=percentile(routed, 50) < TARGET_S,
        ),
    ]
    return print_table("Approval routing through the cloud service (issue 12)", rows)
