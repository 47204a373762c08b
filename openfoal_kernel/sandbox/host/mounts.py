"""How the workspace reaches the sandbox: a bind mount, with a uid mapping when root owns it.

The sandbox never runs as root. Its user is chosen from the workspace's owner:

- a workspace owned by a regular user (uid N): the sandbox runs as N, so what it writes
  belongs to that user, as if they had written it;
- a workspace owned by root (a Jupyter server running as root): the sandbox runs as the
  unprivileged ``SANDBOX_UID`` and sees the workspace through an *idmapped* mount (Linux
  5.12+) that shows root's files as its own and writes its files as root's. The host keeps
  one such mount per workspace, in a root-only folder of the server's state directory, and
  bind-mounts it into the containers. Creating it needs root; where that fails the plain
  workspace is mounted, readable but not writable by the sandbox, and a warning is logged.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SANDBOX_UID", "MountPlan", "WorkspaceMounts", "is_mount", "unmount"]

log = logging.getLogger(__name__)

#: The uid (and gid) of the sandbox user when the workspace belongs to root.
SANDBOX_UID = 10001

_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_OPEN_TREE_CLONE = 1
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_AT_EMPTY_PATH = 0x1000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_NOSUID = 0x2
_MOUNT_ATTR_NODEV = 0x4
_MOUNT_ATTR_IDMAP = 0x100000
_MNT_DETACH = 2


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class MountPlan:
    """What to bind at /workspace, and the user the sandbox runs as."""

    source: str
    user: str
    idmapped: bool


class WorkspaceMounts:
    """Plans workspace mounts for one server instance; owns the idmapped mounts it makes."""

    def __init__(self, folder: Path, *, sandbox_uid: int = SANDBOX_UID) -> None:
        self.folder = folder
        self.sandbox_uid = sandbox_uid
        self._made: dict[str, MountPlan] = {}

    def plan(self, workspace: Path, user: str | None = None) -> MountPlan:
        """The mount for ``workspace`` (blocking: may create an idmapped mount)."""
        ws = str(workspace.resolve())
        if user is not None:
            return MountPlan(ws, user, False)
        st = os.stat(ws)
        if st.st_uid != 0:
            return MountPlan(ws, f"{st.st_uid}:{st.st_gid}", False)
        if ws in self._made:
            return self._made[ws]
        sandbox_user = f"{self.sandbox_uid}:{self.sandbox_uid}"
        target = self.folder / hashlib.sha256(ws.encode()).hexdigest()[:16]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(self.folder, 0o700)  # host users must not use the mapped view
            target.mkdir(exist_ok=True)
            if not is_mount(target):
                idmapped_bind(ws, str(target), self.sandbox_uid)
        except OSError as exc:
            log.warning(
                "cannot map the root-owned workspace %s for the sandbox user %s (%s); it is "
                "mounted as it is, so the sandbox can read but not write it",
                ws,
                sandbox_user,
                exc,
            )
            return MountPlan(ws, sandbox_user, False)
        plan = MountPlan(str(target), sandbox_user, True)
        self._made[ws] = plan
        return plan

    def release(self) -> None:
        """Unmount every idmapped mount this instance made (containers keep their copies)."""
        for plan in self._made.values():
            unmount(Path(plan.source))
        self._made.clear()


def idmapped_bind(source: str, target: str, uid: int) -> None:
    """Mount ``source`` at ``target`` with owner uid/gid 0 shown (and written) as ``uid``."""
    userns = _userns_fd(uid)
    try:
        fd = _libc.syscall(
            _SYS_OPEN_TREE,
            _AT_FDCWD,
            source.encode(),
            _OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_RECURSIVE,
        )
        if fd < 0:
            _raise("open_tree", source)
        try:
            attr = _MountAttr(
                _MOUNT_ATTR_IDMAP | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV, 0, 0, userns
            )
            if (
                _libc.syscall(
                    _SYS_MOUNT_SETATTR,
                    fd,
                    b"",
                    _AT_EMPTY_PATH | _AT_RECURSIVE,
                    ctypes.byref(attr),
                    ctypes.sizeof(attr),
                )
                != 0
            ):
                _raise("mount_setattr", source)
            if (
                _libc.syscall(
                    _SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, target.encode(), _MOVE_MOUNT_F_EMPTY_PATH
                )
                != 0
            ):
                _raise("move_mount", target)
        finally:
            os.close(fd)
    finally:
        os.close(userns)


def _userns_fd(uid: int) -> int:
    """A user namespace mapping 0 -> ``uid`` (uids and gids), as an open descriptor."""
    proc = subprocess.Popen(
        ["unshare", "--user", "sleep", "30"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        own = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 5.0
        while os.readlink(f"/proc/{proc.pid}/ns/user") == own:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise OSError(errno.EPERM, "cannot create a user namespace")
            time.sleep(0.002)
        with open(f"/proc/{proc.pid}/uid_map", "w") as fh:
            fh.write(f"0 {uid} 1\n")
        with open(f"/proc/{proc.pid}/gid_map", "w") as fh:
            fh.write(f"0 {uid} 1\n")
        return os.open(f"/proc/{proc.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        proc.kill()
        proc.wait()


def is_mount(path: Path) -> bool:
    """Whether ``path`` is a mount point, bind mounts of the same filesystem included.

    ``os.path.ismount`` compares device numbers, so it misses a bind (or idmapped) mount of
    a folder on the same filesystem; the kernel's mount table does not.
    """
    if os.path.ismount(path):
        return True
    target = os.path.realpath(path)
    try:
        table = Path("/proc/self/mountinfo").read_text("utf-8", "surrogateescape")
    except OSError:
        return False
    for line in table.splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and _unescape(fields[4]) == target:
            return True
    return False


def _unescape(field: str) -> str:
    """Undo the octal escapes of ``/proc/self/mountinfo`` (``\\040`` for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def unmount(path: Path) -> None:
    """Lazily unmount ``path`` (every mount stacked there), then remove the empty folder."""
    for _ in range(8):
        if not is_mount(path):
            break
        if _libc.umount2(str(path).encode(), _MNT_DETACH) != 0:
            log.warning("cannot unmount %s: %s", path, os.strerror(ctypes.get_errno()))
            return
    try:
        path.rmdir()
    except OSError:
        pass


def _raise(what: str, path: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}({path}): {os.strerror(err)}")
