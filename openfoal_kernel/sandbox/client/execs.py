"""Processes in a sandbox container: create an exec, stream it, bound it, and kill it.

Every call is tagged with a random token in its environment (``OPENFOAL_RUN``); a timeout or
an abort kills every process that carries it, from inside the container. When even that
cannot run (a fork bomb holds the pids limit, so no new process starts), the container is
restarted: its processes die, the workspace stays, the tmpfs and Python state are lost.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from ..docker_api import Endpoint, blocking, unavailable
from ..handle import SandboxHandle
from .commands import KILL, TOKEN_VAR
from .stream import STDOUT, ExecStream, open_exec

__all__ = ["ExecOutput", "Execs"]

log = logging.getLogger(__name__)

#: After a kill, how long the rest of the output may take to arrive.
_DRAIN_GRACE_S = 2.0
#: How long the in-container killer may take before the container is restarted instead.
_KILL_TIMEOUT_S = 5.0


@dataclass(kw_only=True)
class ExecOutput:
    """What one exec produced (each stream capped)."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool
    duration_s: float


class _Collect:
    """Keeps the first ``cap`` bytes of stdout and stderr; drains the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.out = bytearray()
        self.err = bytearray()
        self.truncated = False

    async def drain(self, stream: ExecStream) -> None:
        while (frame := await stream.read_frame()) is not None:
            kind, data = frame
            buf = self.out if kind == STDOUT else self.err
            room = self.cap - len(buf)
            if len(data) > room:
                self.truncated = True
                data = data[: max(room, 0)]
            buf += data


class Execs:
    """Runs processes in one sandbox container as its unprivileged user."""

    def __init__(self, handle: SandboxHandle, client: docker.DockerClient) -> None:
        self.handle = handle
        self.client = client
        self.endpoint = Endpoint(handle.docker_host, handle.api_version)
        #: Called after the container was restarted (its Python state is gone).
        self.on_reset: list[Any] = []

    async def create(
        self, cmd: Sequence[str], *, env: dict[str, str] | None = None, stdin: bool = False
    ) -> str:
        """Create (not start) an exec of ``cmd``; return its id."""
        environment = {**self.handle.env, **(env or {})}
        try:
            res = await blocking(
                self.client.api.exec_create,
                self.handle.container_id,
                list(cmd),
                stdout=True,
                stderr=True,
                stdin=stdin,
                user=self.handle.user,
                environment=environment,
                workdir=self.handle.workdir,
                what="exec_create",
            )
        except docker.errors.NotFound as exc:
            raise unavailable(
                "this session's sandbox container is gone (reaped or removed); "
                "the next turn gets a new one"
            ) from exc
        except docker.errors.APIError as exc:
            raise unavailable(f"the sandbox refused a process: {exc.explanation or exc}") from exc
        return str(res["Id"])

    async def start(self, exec_id: str) -> ExecStream:
        """Start ``exec_id`` attached."""
        return await open_exec(self.endpoint, exec_id)

    async def exit_code(self, exec_id: str) -> int:
        """The exit code of a finished exec (-1 when Docker does not know it)."""
        for _ in range(100):
            info = await blocking(self.client.api.exec_inspect, exec_id, what="exec_inspect")
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await asyncio.sleep(0.005)  # the stream can end a moment before the state does
        return -1

    async def run(
        self,
        cmd: Sequence[str],
        *,
        timeout_s: float,
        max_output_bytes: int,
        data: bytes | None = None,
    ) -> ExecOutput:
        """Run ``cmd`` to the end or ``timeout_s``; cancellation kills what it started."""
        token = secrets.token_hex(8)
        started = time.perf_counter()
        exec_id = await self.create(cmd, env={TOKEN_VAR: token}, stdin=data is not None)
        collect = _Collect(max_output_bytes)
        timed_out = False
        stream = await self.start(exec_id)
        try:
            if data is not None:
                await stream.write(data)
                stream.close_stdin()
            try:
                await asyncio.wait_for(collect.drain(stream), timeout_s)
            except asyncio.TimeoutError:
                timed_out = True
                await self.kill(token)
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(collect.drain(stream), _DRAIN_GRACE_S)
        except BaseException:
            # An abort (or a broken stream): nothing the call started may outlive it.
            await asyncio.shield(self.kill(token))
            raise
        finally:
            stream.close()
        code = await self.exit_code(exec_id)
        return ExecOutput(
            exit_code=code,
            stdout=bytes(collect.out),
            stderr=bytes(collect.err),
            truncated=collect.truncated,
            timed_out=timed_out,
            duration_s=time.perf_counter() - started,
        )

    async def control(self, cmd: Sequence[str], *, timeout_s: float = _KILL_TIMEOUT_S) -> int:
        """Run a short control command of our own (no token, no output kept); its exit code."""
        exec_id = await self.create(cmd)
        stream = await self.start(exec_id)
        try:
            await asyncio.wait_for(_Collect(0).drain(stream), timeout_s)
        finally:
            stream.close()
        return await self.exit_code(exec_id)

    async def kill(self, token: str) -> None:
        """Kill every process of the call ``token``; restart the container if that fails."""
        try:
            code = await self.control(["/bin/sh", "-c", KILL, "openfoal", token])
            if code == 0:
                return
            log.warning("sandbox %s: the killer exited %s", self.handle.name, code)
        except Exception as exc:  # no process can start (pids limit), or the stream broke
            log.warning("sandbox %s: could not run the killer: %s", self.handle.name, exc)
        await self.restart()

    async def restart(self) -> None:
        """Kill every process in the container and start it again (the workspace stays)."""
        log.warning("sandbox %s: restarting the container to stop its processes", self.handle.name)
        container = await blocking(
            self.client.containers.get, self.handle.container_id, what="inspect"
        )
        await blocking(container.restart, timeout=0, what="restart")
        if self.handle.relay_id:
            # The relay shares the sandbox's network namespace, which a restart replaces.
            relay = await blocking(self.client.containers.get, self.handle.relay_id, what="inspect")
            await blocking(relay.restart, timeout=0, what="restart relay")
        for callback in self.on_reset:
            callback()
