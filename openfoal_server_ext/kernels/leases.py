"""Kernel leases: the agent and code kernels a server instance started, reaped once it is gone.

Kernels run in their own process groups, so a server killed with ``kill -9`` leaves them
running. Each instance holds an ``flock`` on ``instances/<id>.lock`` in the state folder for
its whole life (the same rule as the sandbox instances, :mod:`openfoal_kernel.sandbox.host.
instances`) and writes one lease per kernel it starts, ``leases/<id>/<kernel>.json`` with the
kernel's pid, process group and start time. At start, every lease of an instance whose lock
can be taken (a dead one) is reaped: its process group is killed when the pid still names the
same process (same start time: a reused pid is left alone), then the lease goes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

from openfoal_kernel.sandbox.host.instances import InstanceLock, instance_alive

log = logging.getLogger(__name__)


def default_kernel_state_dir() -> Path:
    """``/run/openfoal/kernels`` for root, else a private folder in the runtime or temp dir."""
    if os.geteuid() == 0:
        return Path("/run/openfoal/kernels")
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"openfoal-kernels-{os.geteuid()}"


def process_start_time(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of ``/proc/<pid>/stat``), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def process_running(pid: int) -> bool:
    """False once ``pid`` has exited (gone, or a zombie not yet reaped by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True  # unknown
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


class KernelLeases:
    """The leases of this server instance, and the reaping of dead instances' kernels."""

    def __init__(self, state_dir: Path | None = None, instance_id: str | None = None) -> None:
        self.state_dir = Path(state_dir or default_kernel_state_dir())
        self.instance_id = instance_id or uuid.uuid4().hex
        self._lock = InstanceLock(self.state_dir, self.instance_id)
        self.folder = self.state_dir / "leases" / self.instance_id

    def start(self) -> int:
        """Take this instance's lock and reap the kernels of dead instances; how many."""
        self._lock.acquire()
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.reap_dead()

    def record(self, kernel_id: str, pid: int | None) -> None:
        """Write the lease of a kernel this instance started (no pid: nothing to reap)."""
        if not pid:
            return
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return
        lease = {"pid": pid, "pgid": pgid, "start": process_start_time(pid)}
        path = self.folder / f"{kernel_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(lease))
        os.replace(tmp, path)

    def forget(self, kernel_id: str) -> None:
        """Drop the lease of a kernel that was shut down."""
        (self.folder / f"{kernel_id}.json").unlink(missing_ok=True)

    def reap_dead(self) -> int:
        """Kill the kernels of every dead instance and remove its files; how many killed."""
        killed = 0
        for instance in self._dead():
            lock = InstanceLock(self.state_dir, instance)
            try:
                lock.acquire()  # held while its leases go: no one starts under that id now
            except BlockingIOError:
                continue
            try:
                folder = self.state_dir / "leases" / instance
                for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                    killed += _reap(path)
                shutil.rmtree(folder, ignore_errors=True)
            finally:
                lock.release()
        if killed:
            log.warning("OpenFoal: killed %d orphan kernel(s) of dead server instances", killed)
        return killed

    def _dead(self) -> list[str]:
        """Instances with leases or a lock file here whose process is gone."""
        ids: set[str] = set()
        for sub, suffix in (("instances", ".lock"), ("leases", "")):
            folder = self.state_dir / sub
            if folder.is_dir():
                ids |= {p.name.removesuffix(suffix) for p in folder.iterdir() if p.name != "."}
        ids.discard(self.instance_id)
        return sorted(i for i in ids if not instance_alive(self.state_dir, i))

    def stop(self) -> None:
        """Remove this instance's leases and lock (its kernels are shut down by the server)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._lock.release()


def _reap(path: Path) -> int:
    try:
        lease = json.loads(path.read_text())
        pid, pgid, start = int(lease["pid"]), int(lease["pgid"]), lease.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if pid <= 1 or pgid <= 1:
        return 0
    now = process_start_time(pid)
    if now is not None and start is not None and now != start:
        return 0  # the pid names another process now
    try:
        if pgid == pid:
            # the kernel leads its own group: what it started goes with it, even when the
            # kernel itself is gone already (a pid is not reused while its group lives)
            os.killpg(pgid, signal.SIGKILL)
        elif now is not None:
            os.kill(pid, signal.SIGKILL)
        else:
            return 0
    except (ProcessLookupError, PermissionError):
        return 0
    return 1
