"""kill -9 loop: the agent kernel or the server, mid-run, over and over; nothing acked is lost.

Each cycle starts a short scripted run in one session and, once its first delta arrived, kills
with SIGKILL either the session's agent kernel (most cycles; Jupyter's restarter brings it
back and the run fails with ``RUNTIME_LOST``) or, every ``OPENFOAL_KILL_LOOP_SERVER_EVERY``-th
cycle, the server alone (its kernels live on in their own process groups, as after a crash,
and the next start must reap them). After each server kill the store must open again.

What a client saw acknowledged is checked after the last restart: every run's ``res`` and
every non-delta event it received are in the store, with the same payload. At the end no
kernel process that any instance started is still running.

``OPENFOAL_KILL_LOOP_CYCLES`` sets the cycles (default 100).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep
from openfoal_testing.plugin import UNLIMITED_RATES, ServerProcess, free_port

CYCLES = int(os.environ.get("OPENFOAL_KILL_LOOP_CYCLES", "100"))
SERVER_EVERY = int(os.environ.get("OPENFOAL_KILL_LOOP_SERVER_EVERY", "10"))
SESSION_KEY = "workspace:default/agent:main/dm:cli:kill-loop"

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(900)]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _leases(lease_dir: Path) -> dict[str, int]:
    """kernel id -> pid, of every instance's leases."""
    found: dict[str, int] = {}
    for p in (lease_dir / "leases").glob("*/*.json"):
        try:
            found[p.stem] = int(json.loads(p.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue  # being replaced right now
    return found


async def _wait(condition: Any, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return got


async def _start_run(c: GatewayClient, model: ScriptedModelServer, cycle: int) -> dict[str, Any]:
    # long enough to be mid-run at the kill, short enough that a missed kill costs little
    model.enqueue(
        Reply(steps=[TextStep(text=f"cycle {cycle} " * 50, chunk_size=8, chunk_delay_s=0.01)])
    )
    params = {"input": f"cycle {cycle}", "sessionKey": SESSION_KEY}
    return await c.request("agent.run", params)


async def _until_first_delta(c: GatewayClient, run_id: str, seen: list[dict[str, Any]]) -> bool:
    """True once the run streams; False if it failed first because of the previous kill
    (the run is acked all the same, and checked)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        e = await c.next_event(90)
        if e.get("type") != "event":
            continue
        seen.append(e)
        if e["payload"].get("runId") != run_id:
            continue
        if e["event"] == "agent.delta":
            return True
        if e["event"] == "agent.failed":
            # RUNTIME_LOST: the restart of the kernel killed last cycle was reported to this
            # run; SESSION_BUSY-like INVALID_REQUEST: the run that report failed still reached
            # the restarted kernel, which is running it
            assert e["payload"]["error"]["code"] in ("RUNTIME_LOST", "INVALID_REQUEST"), e[
                "payload"
            ]
            return False
        assert e["event"] != "agent.completed", e
    raise AssertionError(f"run {run_id} sent no delta")


async def _until_terminal(c: GatewayClient, run_id: str, seen: list[dict[str, Any]]) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        e = await c.next_event(90)
        if e.get("type") != "event":
            continue
        seen.append(e)
        if (
            e["event"] in ("agent.completed", "agent.failed")
            and e["payload"].get("runId") == run_id
        ):
            return e
    raise AssertionError(f"run {run_id} never ended")


def _agent_kernel_pid(server: ServerProcess, lease_dir: Path, not_pid: int | None) -> int | None:
    """The pid of the one agent kernel (no pool: the session's), once it is a new process."""
    import httpx

    r = httpx.get(
        server.url + "api/kernels",
        headers={"Authorization": f"token {server.token}"},
        timeout=10,
    )
    if r.status_code != 200:
        return None
    ids = [k["id"] for k in r.json() if k["name"] == "openfoal"]
    leases = _leases(lease_dir)
    pids = [leases[i] for i in ids if i in leases and leases[i] != not_pid and _alive(leases[i])]
    return pids[0] if len(pids) == 1 else None


async def test_kill_loop_loses_no_acknowledged_record(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    from openfoal_testing.plugin import scripted_env

    model = scripted_model
    model.reset()
    lease_dir = tmp_path / "kernel-leases"
    server = ServerProcess(
        tmp_path / "root",
        env=scripted_env(model),
        args=[
            f"--KernelOrchestrator.lease_dir={lease_dir}",
            "--KernelOrchestrator.pool_size=0",
            # the restarter notices a killed kernel at once, and never gives up on it
            "--KernelRestarter.time_to_dead=0.2",
            "--KernelRestarter.restart_limit=100000",
            *UNLIMITED_RATES,
        ],
    )
    began = time.monotonic()
    server.start()
    acked: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    every_pid: set[int] = set()
    last_kernel: int | None = None
    kernel_kills = server_kills = 0
    try:
        c: GatewayClient | None = None
        for cycle in range(CYCLES):
            if c is None:
                c = await GatewayClient(server.ws_url, token=server.token).__aenter__()
            for _ in range(40):
                accepted = await _start_run(c, model, cycle)
                seen: list[dict[str, Any]] = []
                acked.append((accepted, seen))
                if await _until_first_delta(c, accepted["runId"], seen):
                    break
                await asyncio.sleep(0.25)  # back off while the orphaned turn ends
            else:
                raise AssertionError("40 runs in a row failed before streaming")
            every_pid |= set(_leases(lease_dir).values())
            if (cycle + 1) % SERVER_EVERY == 0:
                before = {p for p in _leases(lease_dir).values() if _alive(p)}
                every_pid |= before
                await c.__aexit__(None, None, None)
                c = None
                server.proc.kill()  # type: ignore[union-attr]  # the server alone
                server.proc.wait(10)  # type: ignore[union-attr]
                server_kills += 1
                server.port = free_port()
                server.start(timeout=120)  # the store opens, the gateway answers
                await _wait(lambda b=before: not any(_alive(p) for p in b), "orphans reaped")
                last_kernel = None
            else:
                pid = await _wait(
                    lambda k=last_kernel: _agent_kernel_pid(server, lease_dir, k),
                    "agent kernel pid",
                )
                os.kill(pid, signal.SIGKILL)
                kernel_kills += 1
                last_kernel = pid
                ended = await _until_terminal(c, accepted["runId"], seen)
                # a completed run is possible only if the kill came after its last delta
                assert ended["event"] in ("agent.failed", "agent.completed"), ended
        if c is not None:
            await c.__aexit__(None, None, None)
        # the last check after a crash: kill once more, start, read everything back
        every_pid |= set(_leases(lease_dir).values())
        server.proc.kill()  # type: ignore[union-attr]
        server.proc.wait(10)  # type: ignore[union-attr]
        server.port = free_port()
        server.start(timeout=120)
        async with GatewayClient(server.ws_url, token=server.token) as c2:
            session_ids = {a["sessionId"] for a, _ in acked}
            stored: dict[str, dict[int, dict[str, Any]]] = {}
            for sid in session_ids:
                stored[sid] = {}
                while True:  # page through every stored event
                    after = max(stored[sid], default=0)
                    page = {"sessionId": sid, "afterSeq": after, "limit": 1000}
                    got = await c2.request("sessions.get", page)
                    stored[sid].update({e["seq"]: e for e in got["events"]})
                    if not got["events"]:
                        break
                seqs = sorted(stored[sid])
                assert seqs == list(range(1, len(seqs) + 1)), "a gap in seq"
            lost, checked = [], 0
            for accepted, seen in acked:
                events = stored[accepted["sessionId"]]
                runs = {e["payload"].get("runId") for e in events.values()}
                if accepted["runId"] not in runs:
                    lost.append(("run", accepted["runId"]))
                for e in seen:
                    if e["event"] == "agent.delta" or e.get("seq") is None:
                        continue  # deltas are committed within a window, not before sending
                    if (
                        e["payload"].get("sessionId", accepted["sessionId"])
                        != accepted["sessionId"]
                    ):
                        continue
                    checked += 1
                    if events.get(e["seq"], {}).get("payload") != e["payload"]:
                        lost.append((e["event"], e["seq"]))
            assert lost == [], lost
            assert checked >= CYCLES, checked  # each run announced at least one stored event
            listed = await c2.request("sessions.list", {})
            assert session_ids <= {s["id"] for s in listed["items"]}
    finally:
        every_pid |= set(_leases(lease_dir).values())
        server.stop()
    await _wait(lambda: not any(_alive(p) for p in every_pid), "no kernel left", 60)
    print(
        f"kill loop: {kernel_kills} agent kernel kills, {server_kills} server kills, "
        f"{checked} acknowledged events checked, in {time.monotonic() - began:.0f} s"
    )
    assert kernel_kills + server_kills == CYCLES
    assert server_kills >= CYCLES // SERVER_EVERY
