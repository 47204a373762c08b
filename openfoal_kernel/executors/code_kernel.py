"""A session's code kernel: a plain ipykernel that runs ``python.exec``, never the agent kernel.

:class:`CodeKernel` is a client of one kernel. It either connects to a running kernel from its
connection info (the gateway starts code kernels through Jupyter's kernel manager, so their
variables outlive an agent-kernel restart; a notebook's kernel is bound the same way) or starts
its own ``python3`` ipykernel over the IPC transport. Only a kernel it started is shut down by
:meth:`CodeKernel.aclose`; a connected one merely loses this client.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from queue import Empty
from typing import Any, cast

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir

from ..protocol.errors import ErrorCode, OpenFoalError
from .base import CodeResult

__all__ = ["BINDING_KEY", "CodeKernel"]

#: Key the gateway adds to a connection-info dict: ``"notebook"`` marks a user's notebook kernel.
BINDING_KEY = "openfoal_binding"
_CONNECTION_KEYS = (
    "transport",
    "ip",
    "shell_port",
    "iopub_port",
    "stdin_port",
    "hb_port",
    "control_port",
    "key",
    "signature_scheme",
    "kernel_name",
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
#: After an interrupt, how long the kernel gets to report idle before we give up on it.
_INTERRUPT_GRACE_S = 5.0
#: How long a kernel started elsewhere may leave a heartbeat unanswered before it counts as dead
#: (jupyter_client's 1 s is missed by a live kernel on a machine whose cores are all busy).
_HEARTBEAT_MARGIN_S = 5.0
#: How often a silent execution checks that its kernel is still alive.
_LIVENESS_POLL_S = 1.0
#: Bound on the rich displays of one call (their JSON size) and their number.
MAX_DISPLAY_BYTES = 4 * 1024 * 1024
MAX_DISPLAYS = 20
_MAX_ERROR_BYTES = 16 * 1024


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (ipykernel colours its tracebacks)."""
    return _ANSI.sub("", text)


def _new_connection_file() -> Path:
    """A fresh connection-file path in Jupyter's runtime directory."""
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    # The IPC socket paths derive from this name: keep it short (socket paths max ~107 bytes).
    return runtime / f"openfoal-code-{uuid.uuid4().hex[:12]}.json"


class CodeKernel:
    """A client of one plain ipykernel; one execution at a time."""

    def __init__(
        self, connection_info: dict[str, Any], *, manager: AsyncKernelManager | None = None
    ) -> None:
        self._info = {k: connection_info[k] for k in _CONNECTION_KEYS if k in connection_info}
        if isinstance(self._info.get("key"), bytes):
            self._info["key"] = self._info["key"].decode("ascii")
        self._manager = manager
        self._client: AsyncKernelClient | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def connect(cls, connection_info: dict[str, Any]) -> CodeKernel:
        """A client of an already running kernel (it is not shut down on close)."""
        return cls(connection_info)

    @classmethod
    async def start(
        cls,
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        kernel_name: str = "python3",
        startup_timeout: float = 60.0,
    ) -> CodeKernel:
        """Start a plain ipykernel of our own over IPC, in ``cwd``."""
        conn_file = _new_connection_file()
        km = AsyncKernelManager(
            kernel_name=kernel_name, transport="ipc", connection_file=str(conn_file)
        )
        kw: dict[str, Any] = {"cwd": str(cwd)}
        if env is not None:
            kw["env"] = env
        await km.start_kernel(**kw)
        kernel = cls(dict(km.get_connection_info()), manager=km)
        try:
            await kernel._ensure_client(startup_timeout)
        except BaseException:
            await kernel.aclose()
            raise
        return kernel

    @property
    def connection_info(self) -> dict[str, Any]:
        """JSON-ready connection info (what a new client, or the gateway, needs)."""
        return dict(self._info)

    @property
    def owned(self) -> bool:
        """True when this object started the kernel (and shuts it down on close)."""
        return self._manager is not None

    def _new_client(self) -> AsyncKernelClient:
        """A client whose liveness check suits the kernel.

        For a kernel we started, the manager's client asks whether the process runs: a
        standalone client judges by the heartbeat instead, which a kernel still starting on
        a busy machine misses for a second ("Kernel died before replying to kernel_info").
        A kernel started elsewhere has only its heartbeat, given a generous margin.
        """
        if self._manager is not None:
            return cast(AsyncKernelClient, self._manager.client())
        client = AsyncKernelClient()
        client.load_connection_info(cast(KernelConnectionInfo, self._info))
        client.hb_channel.time_to_dead = _HEARTBEAT_MARGIN_S
        return client

    async def _ensure_client(self, timeout: float = 30.0) -> AsyncKernelClient:
        if self._client is None:
            client = self._new_client()
            client.start_channels()
            try:
                await client.wait_for_ready(timeout=timeout)
            except BaseException:
                client.stop_channels()
                raise
            self._client = client
        return self._client

    async def execute(self, code: str, *, timeout_s: float, max_output_bytes: int) -> CodeResult:
        """Run ``code``; on timeout interrupt the kernel and return what it printed so far."""
        async with self._lock:
            client = await self._ensure_client()
            msg_id = client.execute(
                code, store_history=True, allow_stdin=False, stop_on_error=False
            )
            out = _Collector(max_output_bytes)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            timed_out = False
            try:
                idle = await self._drain(client, msg_id, out, deadline)
                if not idle:
                    timed_out = True
                    await self.interrupt()
                    await self._drain(client, msg_id, out, loop.time() + _INTERRUPT_GRACE_S)
                else:
                    await self._shell_reply(client, msg_id, loop.time() + _INTERRUPT_GRACE_S)
            except asyncio.CancelledError:
                # Abort: stop the code, then let the cancellation through.
                await asyncio.shield(self.interrupt())
                raise
            return out.result(timed_out=timed_out, timeout_s=timeout_s)

    async def interrupt(self) -> None:
        """Interrupt the running execution (an ``interrupt_request`` on the control channel)."""
        if self._client is None:
            return
        msg = self._client.session.msg("interrupt_request", content={})
        self._client.control_channel.send(msg)

    async def is_alive(self) -> bool:
        """Whether the kernel still runs (its process for ours, its heartbeat otherwise)."""
        if self._manager is not None:
            return bool(await self._manager.is_alive())
        if self._client is None:
            return True  # not connected yet: nothing known against it
        return bool(await self._client.is_alive())

    async def _drain(
        self, client: AsyncKernelClient, msg_id: str, out: _Collector, deadline: float
    ) -> bool:
        """Collect iopub output of ``msg_id`` until it reports idle (True) or the deadline."""
        loop = asyncio.get_running_loop()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                # Short waits, so a kernel that died is noticed instead of waited out.
                msg = await client.get_iopub_msg(timeout=min(remaining, _LIVENESS_POLL_S))
            except Empty:
                if not await self.is_alive():
                    died = "the code kernel died during the execution (its variables are lost)"
                    raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, died) from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue  # another client's traffic (a bound notebook) or an earlier call
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                return True
            out.add(msg["msg_type"], msg["content"])

    @staticmethod
    async def _shell_reply(client: AsyncKernelClient, msg_id: str, deadline: float) -> None:
        """Consume our execute_reply so the shell queue holds no stale replies."""
        loop = asyncio.get_running_loop()
        while (remaining := deadline - loop.time()) > 0:
            try:
                reply = await client.get_shell_msg(timeout=remaining)
            except Empty:
                return
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return

    async def aclose(self) -> None:
        """Close this client; shut the kernel down only when this object started it."""
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if self._manager is not None:
            km, self._manager = self._manager, None
            if km.has_kernel:
                # Also removes the connection file and IPC sockets.
                await km.shutdown_kernel(now=False)


class _Collector:
    """Gathers one execution's output: text for the model, rich bundles for clients."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.text: list[str] = []
        self.size = 0
        self.truncated = False
        self.displays: list[dict[str, Any]] = []
        self.display_bytes = 0
        self.dropped_displays = 0
        self.error: tuple[str, str, str] | None = None

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        """Take one iopub message addressed to our execution."""
        if msg_type == "stream":
            self._text(content.get("text", ""))
        elif msg_type in ("execute_result", "display_data"):
            data = content.get("data", {})
            plain = data.get("text/plain")
            rich = [m for m in data if m != "text/plain"]
            if plain is not None:
                self._text(plain if plain.endswith("\n") else plain + "\n")
            elif rich:
                self._text(f"[{', '.join(rich)} output]\n")
            if rich:
                self._display({"data": data, "metadata": content.get("metadata", {})})
        elif msg_type == "error":
            tb = strip_ansi("\n".join(content.get("traceback", [])))
            self.error = (content.get("ename", "Error"), content.get("evalue", ""), tb)

    def _text(self, piece: str) -> None:
        data = piece.encode("utf-8", "replace")
        room = self.max_bytes - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
            piece = data.decode("utf-8", "ignore")
        if piece:
            self.text.append(piece)
            self.size += len(data)

    def _display(self, bundle: dict[str, Any]) -> None:
        size = len(json.dumps(bundle, default=str))
        if len(self.displays) >= MAX_DISPLAYS or self.display_bytes + size > MAX_DISPLAY_BYTES:
            self.dropped_displays += 1
            return
        self.displays.append(bundle)
        self.display_bytes += size

    def result(self, *, timed_out: bool, timeout_s: float) -> CodeResult:
        """The :class:`CodeResult` of what was gathered."""
        text = "".join(self.text)
        if self.truncated:
            text += f"\n[output truncated at {self.max_bytes} bytes]"
        if self.dropped_displays:
            text += f"\n[{self.dropped_displays} rich outputs dropped: over the display cap]"
        if timed_out:
            text += f"\n[timed out after {timeout_s:g} s; the kernel was interrupted]"
            return CodeResult(status="timeout", text=text.lstrip("\n"), displays=self.displays)
        if self.error is not None:
            name, value, tb = self.error
            tail = tb.encode("utf-8")[-_MAX_ERROR_BYTES:].decode("utf-8", "ignore")
            text = (text + "\n" if text and not text.endswith("\n") else text) + tail
            return CodeResult(
                status="error",
                text=text,
                displays=self.displays,
                error_name=name,
                error_value=value,
            )
        return CodeResult(status="ok", text=text, displays=self.displays)
