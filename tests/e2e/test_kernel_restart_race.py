"""A turn sent right after the session's agent kernel was killed starts on a new process.

The kernel is killed with SIGKILL mid-run and the next ``agent.run`` goes out as soon as the
process is dead, before Jupyter's restarter has polled it: the run in flight must end once
with ``RUNTIME_LOST``, the next one must be accepted (no SESSION_BUSY), run on the restarted
kernel and complete. Repeated a few cycles to catch the race.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep
from openfoal_testing.plugin import UNLIMITED_RATES, ServerProcess, scripted_env
from tests.e2e.test_kill_loop import _agent_kernel_pid, _alive, _wait

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(600)]

CYCLES = 5
SESSION_KEY = "workspace:default/agent:main/dm:cli:restart-race"


async def _events_until(c: GatewayClient, done: Any, seen: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + 120
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for run events"
        e = await c.next_event(120)
        if e.get("type") == "event":
            seen.append(e)


def _of(seen: list[dict[str, Any]], run_id: str, name: str) -> list[dict[str, Any]]:
    return [e for e in seen if e["event"] == name and e["payload"].get("runId") == run_id]


async def test_next_run_after_kernel_kill_starts_a_new_kernel(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    model = scripted_model
    model.reset()
    lease_dir = tmp_path / "kernel-leases"
    server = ServerProcess(
        tmp_path / "root",
        env=scripted_env(model),
        args=[
            f"--KernelOrchestrator.lease_dir={lease_dir}",
            "--KernelOrchestrator.pool_size=0",
            *UNLIMITED_RATES,
        ],
    )
    server.start()
    try:
        async with GatewayClient(server.ws_url, token=server.token) as c:
            seen: list[dict[str, Any]] = []
            model.enqueue(Reply(steps=[TextStep(text="warm up")]))
            first = await c.request("agent.run", {"input": "warm", "sessionKey": SESSION_KEY})
            await _events_until(c, lambda: _of(seen, first["runId"], "agent.completed"), seen)
            last_pid: int | None = None
            for cycle in range(CYCLES):
                model.enqueue(
                    Reply(steps=[TextStep(text="slow " * 400, chunk_size=4, chunk_delay_s=0.02)])
                )
                params = {"input": f"long {cycle}", "sessionKey": SESSION_KEY}
                doomed = await c.request("agent.run", params)
                await _events_until(c, lambda d=doomed: _of(seen, d["runId"], "agent.delta"), seen)
                pid = await _wait(
                    lambda k=last_pid: _agent_kernel_pid(server, lease_dir, k), "kernel pid"
                )
                os.kill(pid, signal.SIGKILL)
                await _wait(lambda p=pid: not _alive(p), "the kernel process gone", 30)
                model.enqueue(Reply(steps=[TextStep(text=f"after {cycle}")]))
                nxt = await c.request("agent.run", {"input": f"next {cycle}", **params})
                assert nxt["sessionId"] == doomed["sessionId"]
                await _events_until(c, lambda n=nxt: _of(seen, n["runId"], "agent.completed"), seen)
                failed = _of(seen, doomed["runId"], "agent.failed")
                assert len(failed) == 1, failed
                assert failed[0]["payload"]["error"]["code"] == "RUNTIME_LOST"
                assert _of(seen, doomed["runId"], "agent.completed") == []
                assert _of(seen, nxt["runId"], "agent.failed") == []
                last_pid = pid
            got = await c.request(
                "sessions.get", {"sessionId": first["sessionId"], "afterSeq": 0, "limit": 1000}
            )
            seqs = [e["seq"] for e in got["events"]]
            assert seqs == list(range(1, len(seqs) + 1)), "a gap in seq"
            ended = [e for e in got["events"] if e["event"] == "agent.failed"]
            assert len(ended) == CYCLES, ended  # each killed run failed once, no other did
    finally:
        server.stop()
