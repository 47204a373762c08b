"""A real server's kernels listen on ports from ``c.KernelOrchestrator.kernel_ports``.

Jupyter's own choice comes from the ephemeral range, where a busy server's outgoing
connections can take a port between its choice and the kernel's bind (kernels/ports.py). The
server here runs its pooled agent and code kernels, a turn runs on the agent kernel and a
``python.exec`` on the code kernel, and every port the kernel processes listen on is in range.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep
from openfoal_testing.plugin import UNLIMITED_RATES, ServerProcess, scripted_env

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

LOW, HIGH = 23_100, 23_300
SESSION_KEY = "workspace:default/agent:main/dm:cli:kernel-ports"


PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")


def _kernels(server: ServerProcess) -> list[tuple[int, dict[str, int], set[int]]]:
    """Each kernel below the server: its pid, the ports of its connection file (what Jupyter
    chose), and the TCP ports it listens on."""
    assert server.proc is not None
    found = []
    for child in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            cmd = child.cmdline()
            conns = child.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if "-f" not in cmd:
            continue
        info = json.loads(Path(cmd[cmd.index("-f") + 1]).read_text())
        chosen = {name: int(info[name]) for name in PORT_NAMES}
        listening = {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}
        found.append((child.pid, chosen, listening))
    return found


async def _run(c: GatewayClient, text: str) -> list[dict[str, Any]]:
    accepted = await c.request("agent.run", {"input": text, "sessionKey": SESSION_KEY})
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the run did not end"
        e = await c.next_event(120)
        if e.get("type") != "event" or e["payload"].get("runId") != accepted["runId"]:
            continue
        seen.append(e)
        if e["event"] in ("agent.completed", "agent.failed", "agent.aborted"):
            return seen


async def test_kernels_listen_in_the_configured_range(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    model = scripted_model
    model.reset()
    server = ServerProcess(
        tmp_path / "root",
        env=scripted_env(model),
        args=[f"--KernelOrchestrator.kernel_ports={LOW}-{HIGH}", *UNLIMITED_RATES],
    )
    server.start()
    try:
        policy = server.api("policy.get").json()["payload"]["policy"]
        r = server.api(
            "policy.update",
            {
                "patch": {"tools": {"python.exec": "allow"}},  # gated by default
                "expectedVersion": policy["version"],
                "idempotencyKey": "open-python",
            },
        )
        assert r.status_code == 200, r.text
        async with GatewayClient(server.ws_url, token=server.token) as c:
            model.enqueue(
                Reply(steps=[ToolCallStep(name="python.exec", arguments={"code": "print(6*7)"})]),
                Reply(steps=[TextStep(text="it printed 42")]),
            )
            events = await _run(c, "print six times seven")
            assert events[-1]["event"] == "agent.completed", events[-1]
            results = [e for e in events if e["event"] == "agent.tool_result"]
            assert results and "42" in str(results[0]["payload"]), results
        kernels = _kernels(server)
        # the agent kernel that ran the turn, its code kernel, and the refilled pool's
        assert len(kernels) >= 2, kernels
        for pid, chosen, listening in kernels:
            outside = {n: p for n, p in chosen.items() if not LOW <= p < HIGH}
            assert outside == {}, f"kernel {pid}: ports outside {LOW}-{HIGH}: {outside}"
            # and the kernel really listens on them (a port of its own besides, bound by
            # ipykernel itself on port 0, is no race)
            assert set(chosen.values()) <= listening, (pid, chosen, listening)
    finally:
        server.stop()
