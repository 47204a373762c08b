"""The kernel's side of the sandbox's Python REPL (:mod:`..inside.repl_server` runs inside).

One attached exec (the bridge) per client; the REPL server it reaches keeps the variables,
so a new executor (say, after an agent kernel restart) finds them again. A timeout is
enforced in the server (SIGALRM); if the server does not answer a few seconds after it, it
is killed and the next call starts a fresh one. An abort sends SIGINT and leaves the reply
to be discarded by the next call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from contextlib import suppress
from typing import Any

from ...executors.base import CodeResult
from ...protocol.errors import ErrorCode, OpenFoalError
from ..inside import source
from .execs import Execs
from .stream import STDOUT, ExecStream

__all__ = ["ReplClient"]

log = logging.getLogger(__name__)

REPL_SOURCE = source("repl_server")
SOCKET = "/tmp/.openfoal/repl.sock"
_LEN = struct.Struct(">I")
#: How long the server may take to start and greet us.
_START_TIMEOUT_S = 20.0
#: How long after its own timeout the server may take to answer before it is killed.
_HARD_GRACE_S = 5.0
#: How long the reply of an interrupted call may take before the server is killed.
_DISCARD_TIMEOUT_S = 5.0
_MAX_REPLY = 64 * 1024 * 1024
_MAX_ERROR_BYTES = 16 * 1024


class _Gone(Exception):
    """The bridge's stream ended: the server died or was killed."""


class ReplClient:
    """Talks to the REPL server of one sandbox through a bridge exec."""

    def __init__(self, execs: Execs, python: str, *, memory: str | None = None) -> None:
        self.execs = execs
        self.python = python
        self.memory = memory
        self._stream: ExecStream | None = None
        self._buf = bytearray()
        self._pid: int | None = None
        self._pending = False  # an interrupted call's reply is still to come

    async def _connect(self) -> ExecStream:
        if self._stream is not None:
            return self._stream
        exec_id = await self.execs.create(
            [self.python, "-u", "-c", REPL_SOURCE, SOCKET], stdin=True
        )
        stream = await self.execs.start(exec_id)
        self._stream, self._buf = stream, bytearray()
        try:
            hello = await asyncio.wait_for(self._read(), _START_TIMEOUT_S)
        except (asyncio.TimeoutError, _Gone) as exc:
            self._drop()
            code = await self.execs.exit_code(exec_id)
            if code == -1:  # the bridge still runs: the REPL is held or busy, not broken
                msg = (
                    f"the sandbox's Python REPL did not answer within {_START_TIMEOUT_S:g} s "
                    "(another connection of this session holds it, or it is still busy)"
                )
            else:
                msg = f"the Python REPL did not start in the sandbox (exit code {code})"
            raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, msg) from exc
        self._pid = int(hello.get("pid") or 0) or None
        return stream

    async def _read(self) -> dict[str, Any]:
        """The next frame of the server (stdout of the bridge)."""
        assert self._stream is not None
        while True:
            if len(self._buf) >= _LEN.size:
                (size,) = _LEN.unpack(self._buf[: _LEN.size])
                if size > _MAX_REPLY:
                    raise _Gone(f"a {size}-byte reply")
                if len(self._buf) >= _LEN.size + size:
                    body = bytes(self._buf[_LEN.size : _LEN.size + size])
                    del self._buf[: _LEN.size + size]
                    try:
                        obj = json.loads(body.decode("utf-8"))
                    except ValueError as exc:
                        raise _Gone("an unreadable reply") from exc
                    if not isinstance(obj, dict):
                        raise _Gone("an unreadable reply")
                    return obj
            frame = await self._stream.read_frame()
            if frame is None:
                raise _Gone("end of stream")
            if frame[0] == STDOUT:
                self._buf += frame[1]
            else:
                log.debug("repl bridge stderr: %r", frame[1][:500])

    async def execute(self, code: str, *, timeout_s: float, max_output_bytes: int) -> CodeResult:
        """Run ``code`` in the session's REPL; state persists across calls."""
        stream = await self._connect()
        if self._pending:
            try:
                await asyncio.wait_for(self._read(), _DISCARD_TIMEOUT_S)
                self._pending = False
            except (asyncio.TimeoutError, _Gone):
                await self.kill()
                stream = await self._connect()
        request = {"code": code, "timeout": timeout_s, "max_output": max_output_bytes}
        data = json.dumps(request).encode("utf-8", "surrogatepass")
        try:
            await stream.write(_LEN.pack(len(data)) + data)
            reply = await asyncio.wait_for(self._read(), timeout_s + _HARD_GRACE_S)
        except asyncio.TimeoutError:
            await self.kill()
            text = (
                f"[timed out after {timeout_s:g} s; the Python process did not stop and was "
                "restarted, so its variables are lost]"
            )
            return CodeResult(status="timeout", text=text)
        except (_Gone, ConnectionError) as exc:
            self._drop()
            limit = f" (limit {self.memory})" if self.memory else ""
            msg = (
                "the Python process in the sandbox died during the execution, most likely "
                f"out of memory{limit}; its variables are lost"
            )
            raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, msg) from exc
        except asyncio.CancelledError:
            self._pending = True
            await asyncio.shield(self.interrupt())
            raise
        return _result(reply, max_output_bytes, timeout_s)

    async def interrupt(self) -> None:
        """SIGINT to the server: the running code raises KeyboardInterrupt."""
        if self._pid:
            with suppress(Exception):
                await self.execs.control(_signal_cmd("INT", self._pid))

    async def kill(self) -> None:
        """Kill the server (its variables are lost); the next call starts a new one.

        When no process can start to do it (the pids limit is held), the container is
        restarted instead: a server left running would keep the next call from connecting.
        """
        pid = self._pid
        self._drop()
        if not pid:
            return
        try:
            await self.execs.control(_signal_cmd("KILL", pid))
        except Exception as exc:
            log.warning("could not kill the sandbox's Python REPL (%s); restarting", exc)
            await self.execs.restart()

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream, self._pid, self._pending = None, None, False
        self._buf = bytearray()

    async def aclose(self) -> None:
        """Close the bridge; the server and its variables stay for the next client."""
        self._drop()


def _signal_cmd(signal: str, pid: int) -> list[str]:
    """Send ``signal`` to ``pid`` with the shell's builtin (images need not ship ``/bin/kill``)."""
    return ["/bin/sh", "-c", 'kill -s "$1" "$2"', "openfoal", signal, str(pid)]


def _result(reply: dict[str, Any], max_bytes: int, timeout_s: float) -> CodeResult:
    """The :class:`CodeResult` of a server reply (all of it bounded: it is untrusted)."""
    text = str(reply.get("output") or "")
    truncated = bool(reply.get("truncated"))
    status = reply.get("status")
    if status == "ok" and reply.get("result") is not None:
        value = str(reply["result"])
        text = (text + "\n" if text and not text.endswith("\n") else text) + value + "\n"
    raw = text.encode("utf-8", "replace")
    if len(raw) > max_bytes:
        truncated = True
        text = raw[:max_bytes].decode("utf-8", "ignore")
    if truncated:
        text += f"\n[output truncated at {max_bytes} bytes]"
    if status == "timeout":
        text += f"\n[timed out after {timeout_s:g} s; the execution was interrupted]"
        return CodeResult(status="timeout", text=text.lstrip("\n"))
    if status == "error":
        tb = str(reply.get("traceback") or "")
        tail = tb.encode("utf-8", "replace")[-_MAX_ERROR_BYTES:].decode("utf-8", "ignore")
        text = (text + "\n" if text and not text.endswith("\n") else text) + tail
        return CodeResult(
            status="error",
            text=text,
            error_name=str(reply.get("error_name") or "Error")[:200],
            error_value=str(reply.get("error_value") or "")[:2000],
        )
    return CodeResult(status="ok", text=text)
