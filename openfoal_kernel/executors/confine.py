"""Path confinement: open files only inside the workspace roots, with no check-then-use race.

Every path is walked one component at a time from an open descriptor of its root with
``os.open(name, O_NOFOLLOW, dir_fd=parent)``, so a symbolic link anywhere on the way (even one
swapped in while we walk) makes the open fail instead of leading out. Rules:

- relative paths are relative to the workspace; absolute paths must lie inside a root, compared
  component-wise (``/ws-evil`` is not inside ``/ws``);
- ``..`` components, NUL bytes and empty paths are refused outright;
- symbolic links are never followed, not even ones that point back inside;
- a regular file with more than one hard link is refused for reading and writing, because its
  other name may lie outside the workspace (a hard link carries no target to check);
- only regular files are read or written (no FIFOs, devices or sockets); opening never blocks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from ..protocol.errors import ErrorCode, OpenFoalError

__all__ = [
    "Confined",
    "ConfinementError",
    "Resolved",
    "Roots",
    "append_bytes",
    "check_regular",
    "lstat_at",
    "read_bytes",
    "split_under",
    "write_atomic",
]

#: Each step of a walk opens the entry itself, never what a symlink points to: with O_PATH
#: (Linux) a symlink opens as a link we can see in fstat; elsewhere O_NOFOLLOW fails with ELOOP.
_STEP_FLAGS = getattr(os, "O_PATH", os.O_RDONLY | os.O_NONBLOCK) | os.O_NOFOLLOW | os.O_CLOEXEC
#: Files are opened non-blocking so a FIFO cannot hang us; regular files ignore the flag.
_FILE_BASE = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
RootT = TypeVar("RootT", str, Path)
_HARDLINK = "has more than one hard link (its other name may lie outside the workspace)"


class ConfinementError(OpenFoalError):
    """A path that leaves the workspace or is not allowed (code ``FORBIDDEN``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, f"path {path!r} refused: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Resolved:
    """A path split into its root and the components below it (no ``..``, no empty parts)."""

    root: Path
    parts: tuple[str, ...]
    shown: str  # how the path is reported back (relative to the workspace when inside it)

    @property
    def lexical(self) -> Path:
        """The path as a string path (for tools such as a subprocess ``cwd``)."""
        return self.root.joinpath(*self.parts)


class Roots:
    """The directories a session may touch; the first one is the workspace."""

    def __init__(self, workspace: Path, extra: list[Path] | None = None) -> None:
        # Roots are trusted configuration: resolve their own symlinks once, here.
        self.workspace = _root(workspace)
        seen = [self.workspace]
        for root in extra or []:
            r = _root(root)
            if r not in seen:
                seen.append(r)
        self.all: tuple[Path, ...] = tuple(seen)

    def resolve(self, path: str) -> Resolved:
        """Split ``path`` into (root, components); raise :class:`ConfinementError` if outside."""
        root, rest = split_under(path, self.all, relative_to=self.workspace)
        if root == self.workspace:
            return Resolved(root, rest, "/".join(rest) or ".")
        return Resolved(root, rest, str(root.joinpath(*rest)))


def split_under(
    path: str, roots: Sequence[RootT], *, relative_to: RootT
) -> tuple[RootT, tuple[str, ...]]:
    """The one path rule of every executor: ``(root, components below it)`` or a refusal.

    Empty paths, NUL bytes and ``..`` are refused; a relative path lies below
    ``relative_to``; an absolute one must lie inside a root, compared component-wise.
    """
    if not isinstance(path, str) or path.strip() == "":
        raise ConfinementError(str(path), "empty path")
    if "\x00" in path:
        raise ConfinementError(path, "NUL byte in path")
    p = PurePosixPath(path)
    if ".." in p.parts:
        raise ConfinementError(path, "'..' is not allowed in paths")
    if not p.is_absolute():
        return relative_to, _clean(p.parts)
    for root in roots:
        root_parts = PurePosixPath(root).parts
        if p.parts[: len(root_parts)] == root_parts:
            return root, _clean(p.parts[len(root_parts) :])
    raise ConfinementError(path, "outside the workspace roots")


def _clean(parts: Sequence[str]) -> tuple[str, ...]:
    return tuple(x for x in parts if x not in ("", "."))


def _root(path: Path) -> Path:
    """A root folder, resolved; a missing one is a clear error, not a traceback."""
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise OpenFoalError(ErrorCode.NOT_FOUND, f"workspace root {path} is not a folder")
    return resolved


class Confined:
    """Descriptor-relative file operations below a set of :class:`Roots`."""

    def __init__(self, roots: Roots) -> None:
        self.roots = roots

    @contextmanager
    def open_dir(self, path: str, *, create: bool = False) -> Iterator[tuple[int, Resolved]]:
        """Yield a descriptor of the directory ``path`` (created when ``create``)."""
        res = self.roots.resolve(path)
        fd = self._walk(res, res.parts, create=create)
        try:
            yield fd, res
        finally:
            os.close(fd)

    @contextmanager
    def open_parent(
        self, path: str, *, create: bool = False
    ) -> Iterator[tuple[int, str, Resolved]]:
        """Yield (descriptor of the parent directory, final name, resolved path)."""
        res = self.roots.resolve(path)
        if not res.parts:
            raise ConfinementError(path, "is a workspace root, not a file")
        fd = self._walk(res, res.parts[:-1], create=create)
        try:
            yield fd, res.parts[-1], res
        finally:
            os.close(fd)

    def open_file(self, path: str, flags: int, *, mode: int = 0o644) -> tuple[int, Resolved]:
        """Open a regular file inside the roots; the caller closes the descriptor."""
        creating = bool(flags & os.O_CREAT)
        with self.open_parent(path, create=creating) as (parent, name, res):
            # O_TRUNC would act before we can check the link count: truncate afterwards.
            fd = self._open_at(res, parent, name, (flags & ~os.O_TRUNC) | _FILE_BASE, mode)
        try:
            check_regular(fd, res.shown)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            if flags & os.O_TRUNC:
                os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        return fd, res

    def _walk(self, res: Resolved, parts: tuple[str, ...], *, create: bool) -> int:
        """A readable descriptor of root/parts, walked one component at a time."""
        fd = os.open(res.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in parts:
                if create:
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass  # an existing entry is checked by the no-follow open below
                    except OSError as exc:
                        raise _translate(exc, res.shown) from exc
                nxt = self._open_at(res, fd, name, _STEP_FLAGS, 0)
                os.close(fd)
                fd = nxt
                mode = os.fstat(fd).st_mode
                if stat.S_ISLNK(mode):
                    raise ConfinementError(res.shown, f"{name!r} is a symbolic link")
                if not stat.S_ISDIR(mode):
                    msg = f"{res.shown}: {name!r} is not a directory"
                    raise OpenFoalError(ErrorCode.INVALID_REQUEST, msg)
            # Reopen what we reached as a readable directory ("." cannot be swapped).
            nxt = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _open_at(res: Resolved, dir_fd: int, name: str, flags: int, mode: int) -> int:
        try:
            return os.open(name, flags, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK) or (
                exc.errno == errno.ENOTDIR and _is_link(dir_fd, name)
            ):
                raise ConfinementError(res.shown, f"{name!r} is a symbolic link") from exc
            if exc.errno == errno.ENXIO:  # a FIFO with no reader, a socket, a device
                raise ConfinementError(res.shown, "not a regular file") from exc
            raise _translate(exc, res.shown) from exc


def check_regular(fd: int, shown: str) -> os.stat_result:
    """Refuse anything but a regular file with a single hard link."""
    st = os.fstat(fd)
    _check_kind(st, shown)
    if st.st_nlink > 1:
        raise ConfinementError(shown, _HARDLINK)
    return st


def _check_kind(st: os.stat_result, shown: str) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"{shown}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ConfinementError(shown, "not a regular file")


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in ``dir_fd``, or ``None`` when it does not exist."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _is_link(dir_fd: int, name: str) -> bool:
    st = lstat_at(dir_fd, name)
    return st is not None and stat.S_ISLNK(st.st_mode)


def _translate(exc: OSError, shown: str) -> OpenFoalError:
    """Turn an OS error into a protocol error with a clear message."""
    if exc.errno == errno.ENOENT:
        return OpenFoalError(ErrorCode.NOT_FOUND, f"{shown}: no such file or directory")
    if exc.errno == errno.ENOTDIR:
        return OpenFoalError(ErrorCode.INVALID_REQUEST, f"{shown}: a component is not a directory")
    if exc.errno == errno.EISDIR:
        return OpenFoalError(ErrorCode.INVALID_REQUEST, f"{shown}: is a directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return OpenFoalError(ErrorCode.FORBIDDEN, f"{shown}: permission denied")
    return OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, f"{shown}: {exc.strerror or exc}")


def read_bytes(confined: Confined, path: str, max_bytes: int) -> bytes:
    """Return at most ``max_bytes`` bytes from the start of a confined regular file."""
    fd, _ = confined.open_file(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(max_bytes)


def write_atomic(confined: Confined, path: str, data: bytes) -> int:
    """Replace a confined file by ``data`` (temp file, fsync, rename); return bytes written."""
    with confined.open_parent(path, create=True) as (parent, name, res):
        st = lstat_at(parent, name)
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                raise ConfinementError(res.shown, f"{name!r} is a symbolic link")
            _check_kind(st, res.shown)
            if st.st_nlink > 1:
                raise ConfinementError(res.shown, _HARDLINK)
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o644
        tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, mode, dir_fd=parent)
        except OSError as exc:
            raise _translate(exc, res.shown) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            # rename replaces the directory entry itself: it never writes through a link.
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            if isinstance(exc, OSError):
                raise _translate(exc, res.shown) from exc
            raise
        with suppress(OSError):
            os.fsync(parent)  # make the rename durable
    return len(data)


def append_bytes(confined: Confined, path: str, data: bytes) -> int:
    """Append ``data`` to a confined file (created when missing), fsynced; return bytes written."""
    fd, res = confined.open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        with os.fdopen(fd, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise _translate(exc, res.shown) from exc
    return len(data)
