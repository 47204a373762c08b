"""The cloud executor: tool effects inside the session's Docker sandbox container.

Every effect is a ``docker exec`` into the container, as its unprivileged user: shell
commands through :data:`.commands.RUN`, files through the small shell programs beside it
(confined to ``/workspace``, no ``..``, no symbolic links), Python through a persistent REPL
server in the container's tmpfs (:mod:`..inside.repl_server`), so variables live across calls.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import docker

from ...executors.base import CodeResult, CommandResult, Executor, FileEntry
from ...executors.confine import ConfinementError
from ...protocol.errors import ErrorCode, OpenFoalError
from ..budget import Ledger
from ..docker_api import blocking, connect
from ..handle import SandboxHandle
from . import commands as sh
from .execs import ExecOutput, Execs
from .python import ReplClient

__all__ = ["DockerExecutor", "SandboxHandle"]

#: Timeout for the file helpers (they only touch the workspace).
_FILE_TIMEOUT_S = 60.0


class DockerExecutor(Executor):
    """Runs tool effects in one session's sandbox container (runtime mode ``cloud``)."""

    mode = "cloud"

    def __init__(self, handle: SandboxHandle, *, client: docker.DockerClient | None = None) -> None:
        self.handle = handle
        self._client = client
        self._own_client = client is None
        self._execs: Execs | None = None
        self._lock = asyncio.Lock()
        self.ledger = Ledger(handle.ledger) if handle.ledger else None
        self._repl: ReplClient | None = None

    def _path(self, path: str) -> tuple[str, str]:
        """``(inside, shown)`` of a tool path; host paths under the workspace are accepted."""
        return sh.container_path(path, host_workspace=self.handle.host_workspace)

    async def _get(self) -> Execs:
        async with self._lock:
            if self._execs is None:
                if self._client is None:
                    self._client = await blocking(
                        connect,
                        self.handle.docker_host,
                        api_version=self.handle.api_version,
                        what="connect",
                    )
                self._execs = Execs(self.handle, self._client)
            return self._execs

    async def _run(
        self, cmd: list[str], *, timeout_s: float, max_output_bytes: int, data: bytes | None = None
    ) -> ExecOutput:
        """Run one exec under the session's budget and charge the time it took."""
        if self.ledger is not None:
            self.ledger.check(self.handle.budget_s)
        execs = await self._get()
        started = time.perf_counter()
        try:
            return await execs.run(
                cmd, timeout_s=timeout_s, max_output_bytes=max_output_bytes, data=data
            )
        finally:
            if self.ledger is not None:
                self.ledger.charge(time.perf_counter() - started)

    # -- shell -----------------------------------------------------------------------------

    async def run_command(
        self, command: str, *, timeout_s: float, max_output_bytes: int, cwd: str = "."
    ) -> CommandResult:
        """Run ``command`` with bash (or sh) in ``cwd``; timeout or cancellation kills it."""
        inside, shown = self._path(cwd)
        out = await self._run(
            ["/bin/sh", "-c", sh.RUN, "openfoal", command, inside],
            timeout_s=timeout_s,
            max_output_bytes=max_output_bytes,
        )
        stderr = out.stderr.decode("utf-8", "replace")
        if out.exit_code == sh.EXIT_CWD_MISSING and stderr.startswith(sh.CWD_MARKER):
            raise OpenFoalError(ErrorCode.NOT_FOUND, f"{shown}: no such directory")
        return CommandResult(
            exit_code=-1 if out.timed_out else out.exit_code,
            stdout=out.stdout.decode("utf-8", "replace"),
            stderr=stderr,
            truncated=out.truncated,
            timed_out=out.timed_out,
            duration_ms=out.duration_s * 1000,
        )

    # -- files -----------------------------------------------------------------------------

    async def read_file(self, path: str, *, max_bytes: int) -> bytes:
        """Return at most ``max_bytes`` bytes from the start of a workspace file."""
        inside, shown = self._path(path)
        if shown == ".":
            raise ConfinementError(path, "is the workspace root, not a file")
        out = await self._run(
            ["/bin/sh", "-c", sh.READ, "openfoal", inside, str(max(max_bytes, 0))],
            timeout_s=_FILE_TIMEOUT_S,
            max_output_bytes=max(max_bytes, 0),
        )
        _check(out, shown)
        return out.stdout

    async def write_file(self, path: str, data: bytes, *, append: bool = False) -> int:
        """Write (atomically) or append to a workspace file; return the bytes written."""
        inside, shown = self._path(path)
        if shown == ".":
            raise ConfinementError(path, "is the workspace root, not a file")
        out = await self._run(
            ["/bin/sh", "-c", sh.WRITE, "openfoal", inside, "a" if append else "w"],
            timeout_s=_FILE_TIMEOUT_S,
            max_output_bytes=4096,
            data=data,
        )
        _check(out, shown)
        return len(data)

    async def list_dir(self, path: str, *, max_entries: int) -> list[FileEntry]:
        """List a workspace directory, sorted by name, at most ``max_entries`` entries."""
        inside, shown = self._path(path)
        out = await self._run(
            ["/bin/sh", "-c", sh.LIST, "openfoal", inside],
            timeout_s=_FILE_TIMEOUT_S,
            max_output_bytes=64 * 1024 * 1024,
        )
        _check(out, shown)
        return sh.parse_listing(out.stdout.decode("utf-8", "replace"), shown, max_entries)

    # -- python ----------------------------------------------------------------------------

    async def run_python(self, code: str, *, timeout_s: float, max_output_bytes: int) -> CodeResult:
        """Run ``code`` in the sandbox's REPL server (variables persist across calls)."""
        if not self.handle.python:
            raise OpenFoalError(
                ErrorCode.TOOL_EXEC_FAILED,
                f"the sandbox image {self.handle.image or '?'} has no Python; "
                "use the openfoal/sandbox-python image",
            )
        if self.ledger is not None:
            self.ledger.check(self.handle.budget_s)
        execs = await self._get()
        if self._repl is None:
            self._repl = ReplClient(execs, self.handle.python, memory=self.handle.memory)
            # A restarted container lost its REPL server: reconnect on the next call.
            execs.on_reset.append(self._repl._drop)
        started = time.perf_counter()
        try:
            return await self._repl.execute(
                code, timeout_s=timeout_s, max_output_bytes=max_output_bytes
            )
        finally:
            if self.ledger is not None:
                self.ledger.charge(time.perf_counter() - started)

    async def aclose(self) -> None:
        """Close the REPL bridge and the Docker client we opened (the container stays)."""
        if self._repl is not None:
            repl, self._repl = self._repl, None
            await repl.aclose()
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            self._execs = None
            with suppress(Exception):
                await asyncio.to_thread(client.close)


def _check(out: ExecOutput, shown: str) -> None:
    """Turn a file helper's reserved exit code into the protocol error it stands for."""
    code = out.exit_code
    if code == 0 and not out.timed_out:
        return
    if code == sh.EXIT_NOT_FOUND:
        raise OpenFoalError(ErrorCode.NOT_FOUND, f"{shown}: no such file or directory")
    if code == sh.EXIT_IS_DIR:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"{shown}: is a directory")
    if code == sh.EXIT_NOT_DIR:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"{shown}: not a directory")
    if code == sh.EXIT_NOT_REGULAR:
        raise ConfinementError(shown, "not a regular file")
    if code == sh.EXIT_NO_PARENT:
        detail = out.stderr.decode("utf-8", "replace").strip()[-300:]
        raise OpenFoalError(
            ErrorCode.INVALID_REQUEST, f"{shown}: cannot create its parent folder: {detail}"
        )
    if code == sh.EXIT_SYMLINK:
        raise ConfinementError(shown, "a path component is a symbolic link")
    detail = out.stderr.decode("utf-8", "replace").strip()[-500:]
    if out.timed_out:
        raise OpenFoalError(ErrorCode.TOOL_TIMEOUT, f"{shown}: the file operation timed out")
    raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, f"{shown}: failed (exit {code}): {detail}")
