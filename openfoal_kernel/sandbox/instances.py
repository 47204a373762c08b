"""Server instances and their leftovers: which instance is alive, and the state folder layout.

Each server instance holds an exclusive ``flock`` on ``instances/<id>.lock`` for as long as
it runs. The kernel drops the lock when the process dies, however it dies (``kill -9``
included), so "the lock can be taken" means "that instance is gone" and its containers,
mounts and sockets are orphans.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from .mounts import unmount

__all__ = ["InstanceLock", "default_state_dir", "instance_alive", "remove_instance_files"]


def default_state_dir() -> Path:
    """``/run/openfoal/sandbox`` for root, else a private folder in the runtime or temp dir."""
    if os.geteuid() == 0:
        return Path("/run/openfoal/sandbox")
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"openfoal-sandbox-{os.geteuid()}"


def _lock_path(state_dir: Path, instance_id: str) -> Path:
    return state_dir / "instances" / f"{instance_id}.lock"


def instance_dir(state_dir: Path, instance_id: str) -> Path:
    """The folder of one instance's mounts and egress sockets."""
    return state_dir / "instances" / instance_id


class InstanceLock:
    """The lock that tells other instances this one is alive."""

    def __init__(self, state_dir: Path, instance_id: str) -> None:
        self.path = _lock_path(state_dir, instance_id)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (blocking call; it is immediate for a fresh instance id)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent.parent, 0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Drop the lock and its file."""
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def instance_alive(state_dir: Path, instance_id: str) -> bool:
    """Whether the instance ``instance_id`` still holds its lock on this host."""
    try:
        fd = os.open(_lock_path(state_dir, instance_id), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return False


def dead_instances(state_dir: Path, own: str) -> list[str]:
    """Instance ids with files in ``state_dir`` whose process is gone."""
    folder = state_dir / "instances"
    if not folder.is_dir():
        return []
    ids = {p.name.removesuffix(".lock") for p in folder.iterdir()}
    return sorted(i for i in ids if i != own and not instance_alive(state_dir, i))


def remove_instance_files(state_dir: Path, instance_id: str) -> None:
    """Unmount and delete what a dead instance left (mounts, sockets, lock file)."""
    folder = instance_dir(state_dir, instance_id)
    mounts = folder / "mounts"
    if mounts.is_dir():
        for mount in mounts.iterdir():
            unmount(mount)
    # Only after the unmounts: never recurse into a mounted workspace.
    if folder.is_dir() and not any(os.path.ismount(p) for p in mounts.glob("*")):
        shutil.rmtree(folder, ignore_errors=True)
    _lock_path(state_dir, instance_id).unlink(missing_ok=True)
