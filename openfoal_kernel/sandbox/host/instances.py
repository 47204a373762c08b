"""Server instances and their leftovers: which instance is alive, and the state folder layout.

Each server instance holds an exclusive ``flock`` on ``instances/<id>.lock`` for as long as
it runs. The kernel drops the lock when the process dies, however it dies (``kill -9``
included), so "the lock can be taken" means "that instance is gone" and its containers,
mounts and sockets are orphans.

Containers carry the key of the state folder whose lock files judge them
(:func:`state_key`): a server only ever judges the containers of instances that keep their
locks where it looks, never those of a server (another user's, a test's) using another one.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from .mounts import unmount

__all__ = [
    "LABEL_STATE",
    "InstanceLock",
    "dead_instances",
    "default_state_dir",
    "instance_alive",
    "instance_dir",
    "remove_instance_files",
    "state_key",
]

#: The key of the state folder of the instance that created a container (see state_key).
LABEL_STATE = "openfoal.state"

#: How long taking a fresh lock may be delayed by another instance probing it.
_ACQUIRE_WAIT_S = 2.0


def default_state_dir() -> Path:
    """``/run/openfoal/sandbox`` for root, else a private folder in the runtime or temp dir."""
    if os.geteuid() == 0:
        return Path("/run/openfoal/sandbox")
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"openfoal-sandbox-{os.geteuid()}"


def state_key(state_dir: Path) -> str:
    """A short stable key of ``state_dir`` (its resolved path), for container labels."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:16]


def _lock_path(state_dir: Path, instance_id: str) -> Path:
    return state_dir / "instances" / f"{instance_id}.lock"


def instance_dir(state_dir: Path, instance_id: str) -> Path:
    """The folder of one instance's mounts and egress sockets."""
    return state_dir / "instances" / instance_id


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a cleaner may have unlinked it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class InstanceLock:
    """The lock that tells other instances this one is alive."""

    def __init__(self, state_dir: Path, instance_id: str) -> None:
        self.path = _lock_path(state_dir, instance_id)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (blocking call; at most a moment for a fresh instance id).

        Another instance may hold the lock for an instant while it checks whether this one
        is alive, or may have just unlinked the file as a dead instance's: both are retried.
        ``BlockingIOError`` means the id is really in use by a running instance.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent.parent, 0o700)
        deadline = time.monotonic() + _ACQUIRE_WAIT_S
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                locked = _try_lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if locked and _same_file(fd, self.path):
                self._fd = fd
                return
            os.close(fd)
            if not locked and time.monotonic() > deadline:
                raise BlockingIOError(
                    errno.EWOULDBLOCK, f"the sandbox instance lock {self.path} is held"
                )
            time.sleep(0.01)

    def release(self) -> None:
        """Drop the lock and its file."""
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def instance_alive(state_dir: Path, instance_id: str) -> bool:
    """Whether the instance ``instance_id`` still holds its lock on this host.

    A lock file this process may not open (another user's) counts as alive: an instance is
    only declared dead when that is certain.
    """
    try:
        fd = os.open(_lock_path(state_dir, instance_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except PermissionError:
        return True
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)  # closing drops the lock we may have taken


def dead_instances(state_dir: Path, own: str) -> list[str]:
    """Instance ids with files in ``state_dir`` whose process is gone."""
    folder = state_dir / "instances"
    if not folder.is_dir():
        return []
    ids = {p.name.removesuffix(".lock") for p in folder.iterdir()}
    return sorted(i for i in ids if i != own and not instance_alive(state_dir, i))


def remove_instance_files(state_dir: Path, instance_id: str) -> bool:
    """Unmount and delete what a dead instance left (mounts, sockets, lock file).

    The instance's lock is held while its files go, so an instance that is starting under
    that id is never mistaken for a dead one; returns False (nothing removed) when it is alive.
    """
    path = _lock_path(state_dir, instance_id)
    try:
        fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None
    except PermissionError:
        return False
    try:
        if fd is not None and not _try_lock(fd):
            return False
        folder = instance_dir(state_dir, instance_id)
        mounts = folder / "mounts"
        if mounts.is_dir():
            for mount in mounts.iterdir():
                unmount(mount)  # removes the (empty) mount point once it is unmounted
        # Never recurse into a workspace: anything still in mounts/ may be one (a bind of the
        # same filesystem does not look like a mount point to os.path.ismount).
        if folder.is_dir() and not (mounts.is_dir() and any(mounts.iterdir())):
            shutil.rmtree(folder, ignore_errors=True)
        if fd is not None and _same_file(fd, path):
            path.unlink(missing_ok=True)
        return True
    finally:
        if fd is not None:
            os.close(fd)
