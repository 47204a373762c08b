"""Kernel leases: the kernels of a dead server instance are killed, nothing else is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openfoal_server_ext.kernels.leases import KernelLeases

#: A server instance that leases a "kernel" (its own process group) and dies by SIGKILL.
DYING_SERVER = """
import os, signal, subprocess, sys
from pathlib import Path
from openfoal_server_ext.kernels.leases import KernelLeases
leases = KernelLeases(Path(sys.argv[1]), "dead-instance")
leases.start()
kernel = subprocess.Popen(
    ["sh", "-c", "sleep 600 & sleep 600"],
    start_new_session=True,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
leases.record("kernel-1", kernel.pid)
print(kernel.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _group(pgid: int) -> list[int]:
    """Live members of a process group."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def _wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
        time.sleep(0.05)


@pytest.fixture
def spare() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def test_a_dead_instance_kernels_and_their_children_are_killed(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DYING_SERVER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    kernel = int(out.stdout.split()[0])
    deadline = time.monotonic() + 30
    while len(members := _group(kernel)) < 3:  # sh and its two sleeps
        assert time.monotonic() < deadline, members
        time.sleep(0.05)
    assert kernel in members
    fresh = KernelLeases(tmp_path, "next-instance")
    try:
        assert fresh.start() == 1
        _wait_gone(members)
        assert not (tmp_path / "leases" / "dead-instance").exists()
        assert fresh.reap_dead() == 0
    finally:
        fresh.stop()


def test_live_instances_and_reused_pids_are_left_alone(tmp_path: Path, spare) -> None:
    alive = KernelLeases(tmp_path, "alive-instance")
    alive.start()
    ours = subprocess.Popen(["sleep", "600"], start_new_session=True)
    spare.append(ours)
    alive.record("k-alive", ours.pid)
    # a dead instance whose lease names a pid now used by another process (other start time)
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    spare.append(stranger)
    dead = tmp_path / "leases" / "gone-instance"
    dead.mkdir(parents=True)
    lease = {"pid": stranger.pid, "pgid": stranger.pid, "start": "1"}
    (dead / "k-old.json").write_text(json.dumps(lease))
    other = KernelLeases(tmp_path, "other-instance")
    try:
        assert other.start() == 0
        assert _alive(ours.pid) and _alive(stranger.pid)
        assert not dead.exists()  # the dead instance's files are gone all the same
        assert (tmp_path / "leases" / "alive-instance" / "k-alive.json").exists()
    finally:
        other.stop()
        alive.stop()
