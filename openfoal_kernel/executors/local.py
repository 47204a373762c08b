"""The local executor: tool effects on the host that runs the agent kernel.

Shell commands run as ``/bin/bash -c`` in a session (and process group) of their own, so an
abort or a timeout kills every process they started; files are opened through
:mod:`.confine`; Python runs in the session's code kernel, never in this process.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..protocol.errors import ErrorCode, OpenFoalError
from .base import CodeResult, CommandResult, Executor, FileEntry
from .code_kernel import BINDING_KEY, CodeKernel
from .confine import Confined, Roots, append_bytes, read_bytes, write_atomic

__all__ = ["LocalExecutor", "scrubbed_env"]

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
#: After the shell exits (or is killed), how long stray holders of its pipes may keep them.
_PIPE_GRACE_S = 1.0
#: Names of environment variables that hold credentials: not handed to commands or code.
_SECRET_ENV = re.compile(r"API_?KEY|TOKEN|SECRET|PASSW(OR)?D|CREDENTIAL", re.IGNORECASE)
#: Hard bound on names read from one directory before sorting.
_MAX_SCAN = 100_000


def scrubbed_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for commands and code kernels: the kernel's own minus credentials."""
    env = dict(os.environ if base is None else base)
    return {k: v for k, v in env.items() if not _SECRET_ENV.search(k)}


class LocalExecutor(Executor):
    """Runs tool effects on this host, confined to the workspace roots."""

    mode = "local"

    def __init__(
        self,
        workspace: Path,
        *,
        roots: list[Path] | None = None,
        code_kernel: CodeKernel | None = None,
        code_kernel_connection: dict[str, Any] | None = None,
        code_kernel_provider: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        notebook_bound: bool | None = None,
    ) -> None:
        self.roots = Roots(Path(workspace), roots)
        self.workspace = self.roots.workspace
        self.confined = Confined(self.roots)
        self.env = scrubbed_env()
        self._code_kernel = code_kernel
        self._connection = code_kernel_connection
        #: asked for the connection at the first python.exec (the gateway starts the kernel)
        self._provider = code_kernel_provider
        self._own_kernel = False  # True once we created the CodeKernel (we close it)
        self._kernel_lock = asyncio.Lock()
        if notebook_bound is None:
            binding = (code_kernel_connection or {}).get(BINDING_KEY)
            notebook_bound = binding == "notebook"
        #: True when python.exec runs in a user's notebook kernel (a high-risk call).
        self.notebook_bound = notebook_bound

    # -- shell -----------------------------------------------------------------------------

    async def run_command(
        self, command: str, *, timeout_s: float, max_output_bytes: int, cwd: str = "."
    ) -> CommandResult:
        """Run ``command`` with bash in ``cwd``; timeout or cancellation kills its group."""
        with self.confined.open_dir(cwd) as (_, res):
            workdir = str(res.lexical)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        transport, proto = await loop.subprocess_exec(
            lambda: _Collector(loop, max_output_bytes),
            SHELL,
            "-c",
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=self.env,
            start_new_session=True,  # its own process group: killpg reaches grandchildren
        )
        pgid = transport.get_pid()
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(proto.exited), timeout_s)
            except asyncio.TimeoutError:
                timed_out = True
            # Kill what is left of the group: the command on timeout, stray background jobs
            # otherwise (they would hold the pipes open and outlive the call).
            _kill_group(pgid)
            await proto.exited
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(proto.closed), _PIPE_GRACE_S)
        except BaseException:
            _kill_group(pgid)  # abort: task cancellation must not leave processes behind
            transport.close()
            raise
        transport.close()
        code = transport.get_returncode()
        return CommandResult(
            exit_code=-1 if code is None else code,
            stdout=proto.out.decode("utf-8", "replace"),
            stderr=proto.err.decode("utf-8", "replace"),
            truncated=proto.truncated,
            timed_out=timed_out,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    # -- files -----------------------------------------------------------------------------

    async def read_file(self, path: str, *, max_bytes: int) -> bytes:
        """Return at most ``max_bytes`` bytes from the start of a workspace file."""
        return await asyncio.to_thread(read_bytes, self.confined, path, max_bytes)

    async def write_file(self, path: str, data: bytes, *, append: bool = False) -> int:
        """Write (atomically) or append to a workspace file; return the bytes written."""
        op = append_bytes if append else write_atomic
        return await asyncio.to_thread(op, self.confined, path, data)

    async def list_dir(self, path: str, *, max_entries: int) -> list[FileEntry]:
        """List a workspace directory, sorted by name, at most ``max_entries`` entries."""
        return await asyncio.to_thread(self._list, path, max_entries)

    def _list(self, path: str, max_entries: int) -> list[FileEntry]:
        with self.confined.open_dir(path) as (fd, res):
            names: list[str] = []
            with os.scandir(fd) as it:
                for entry in it:
                    names.append(entry.name)
                    if len(names) >= _MAX_SCAN:
                        break
            names.sort()
            out: list[FileEntry] = []
            prefix = "" if res.shown == "." else res.shown.rstrip("/") + "/"
            for name in names[:max_entries]:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we listed
                out.append(FileEntry(path=prefix + name, kind=_kind(st.st_mode), size=st.st_size))
            return out

    # -- python ----------------------------------------------------------------------------

    async def code_kernel(self) -> CodeKernel:
        """The session's code kernel: the given one, a client of the given one (or of the
        one the provider had the gateway start), or our own."""
        async with self._kernel_lock:
            if self._own_kernel and self._code_kernel is not None:
                if self._code_kernel.owned and not await self._code_kernel.is_alive():
                    # Our own kernel died (a crash, out of memory): start a fresh one.
                    dead, self._code_kernel = self._code_kernel, None
                    await dead.aclose()
            if self._code_kernel is None:
                if not self._connection and self._provider is not None:
                    self._connection = await self._provider()
                if self._connection:
                    self._code_kernel = CodeKernel.connect(self._connection)
                else:
                    try:
                        self._code_kernel = await CodeKernel.start(cwd=self.workspace, env=self.env)
                    except Exception as exc:
                        msg = f"could not start a code kernel: {exc}"
                        raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, msg) from exc
                self._own_kernel = True
            return self._code_kernel

    async def run_python(self, code: str, *, timeout_s: float, max_output_bytes: int) -> CodeResult:
        """Run ``code`` in the session's code kernel (variables persist across calls)."""
        kernel = await self.code_kernel()
        return await kernel.execute(code, timeout_s=timeout_s, max_output_bytes=max_output_bytes)

    async def aclose(self) -> None:
        """Close the code kernel client we created (and the kernel, when we started it)."""
        if self._own_kernel and self._code_kernel is not None:
            kernel, self._code_kernel = self._code_kernel, None
            self._own_kernel = False
            await kernel.aclose()


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the first ``cap`` bytes of each stream and drains the rest (the child never blocks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: int) -> None:
        self.cap = cap
        self.out = bytearray()
        self.err = bytearray()
        self.truncated = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self.out if fd == 1 else self.err
        room = self.cap - len(buf)
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        buf += data

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.closed.done():
            self.closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"
