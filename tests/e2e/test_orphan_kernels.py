"""Kernels of a server killed with kill -9 are reaped when a server starts again."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep
from openfoal_testing.plugin import ServerProcess, free_port


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _leased_pids(lease_dir: Path) -> set[int]:
    return {int(json.loads(p.read_text())["pid"]) for p in (lease_dir / "leases").glob("*/*.json")}


@pytest.mark.asyncio
async def test_kernels_of_a_killed_server_are_reaped_at_start(
    server_factory, model, tmp_path: Path
) -> None:
    lease_dir = tmp_path / "kernel-leases"
    server: ServerProcess = server_factory(args=[f"--KernelOrchestrator.lease_dir={lease_dir}"])
    async with GatewayClient(server.ws_url, token=server.token) as c:
        model.enqueue(Reply(steps=[TextStep(text="42")]))
        _, events = await c.run("compute")
        assert events[-1]["event"] == "agent.completed", events[-1]
    deadline = time.monotonic() + 60
    while len(pids := _leased_pids(lease_dir)) < 3:  # the session's, and the pool's two
        assert time.monotonic() < deadline, pids
        await asyncio.sleep(0.2)
    assert all(_alive(pid) for pid in pids)
    server.kill()
    assert server.proc is not None and server.proc.poll() is not None
    orphans = pids  # the kernels may notice their parent is gone; the reaper must not rely on it

    server.port = free_port()
    server.start()
    deadline = time.monotonic() + 60
    while left := {pid for pid in orphans if _alive(pid)}:
        assert time.monotonic() < deadline, f"orphan kernels still running: {left}"
        await asyncio.sleep(0.2)
    # the new instance's own kernels are leased, and alive
    deadline = time.monotonic() + 60
    while not (fresh := _leased_pids(lease_dir) - pids):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert all(_alive(pid) for pid in fresh)
