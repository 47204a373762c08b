"""A gateway-side client of one agent kernel: sends runs, reads its iopub stream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.session import Session as JupyterSession

from openfoal_kernel.protocol.kernel_wire import (
    GATEWAY_ATTACH_MSG_TYPE,
    KERNEL_EVENT_MSG_TYPE,
    RUN_METADATA_KEY,
    KernelEvent,
    RunSpec,
)

log = logging.getLogger(__name__)

EventCallback = Callable[["KernelBridge", KernelEvent], Awaitable[None]]


class KernelBridge:
    """Talks to one OpenFoal kernel over its Jupyter channels.

    It has its own Jupyter ``Session`` object (same key as the kernel's): iopub is
    broadcast, and two subscribers sharing one Session would reject each other's
    messages as replays.
    """

    def __init__(self, kernel_id: str, km: Any, *, on_event: EventCallback, owned: bool) -> None:
        self.kernel_id = kernel_id
        self.km = km
        self.owned = owned  # started by the gateway (an agent kernel) vs. a notebook's kernel
        self.session_id: str | None = None
        self.last_used = time.monotonic()
        self.last_iopub = time.monotonic()  # when the latest iopub message was read
        self.on_event = on_event
        self.client = self._new_client()
        self._tasks: list[asyncio.Task[None]] = []
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # iopub is a PUB/SUB socket: until our subscription reaches the kernel's publisher
        # (after a start or a restart), its messages are dropped. A run is sent only once a
        # status message of ours has come back on iopub.
        self.iopub_synced = False
        self._probes: dict[str, asyncio.Future[None]] = {}

    def _new_client(self) -> AsyncKernelClient:
        """A client of the kernel's current ports (a client's channels start only once)."""
        km = self.km
        session = JupyterSession(
            key=km.session.key,
            signature_scheme=km.session.signature_scheme,
            username="openfoal-gateway",
        )
        client = AsyncKernelClient(session=session)
        client.load_connection_info(km.get_connection_info(session=False))
        return client

    async def start(self, *, wait_ready: bool) -> None:
        """Open the channels and start reading iopub (and shell replies)."""
        self.client.start_channels(stdin=False, hb=False, control=True)
        if wait_ready:
            await self.client.wait_for_ready(timeout=60)
        self._tasks = [
            asyncio.create_task(self._read_iopub()),
            asyncio.create_task(self._read_shell()),
        ]
        if wait_ready:
            await self.sync_iopub()

    async def sync_iopub(self, timeout: float = 30.0) -> None:
        """Wait until iopub delivers: probe with kernel_info until its status comes back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.iopub_synced:
            msg = self.client.session.msg("kernel_info_request", {})
            probe: asyncio.Future[None] = loop.create_future()
            self._probes[msg["header"]["msg_id"]] = probe
            self.client.shell_channel.send(msg)
            try:
                await asyncio.wait_for(probe, 0.5)
                self.iopub_synced = True
            except asyncio.TimeoutError:
                if loop.time() > deadline:
                    raise TimeoutError(
                        f"kernel {self.kernel_id} does not answer on iopub"
                    ) from None
            finally:
                self._probes.pop(msg["header"]["msg_id"], None)

    async def attach_notebook(self, timeout: float = 60.0) -> None:
        """Sync iopub through the control channel, then tell the kernel it is heard.

        A notebook's kernel may be busy with a cell (waiting for exactly this), so the
        probe goes on control, which the kernel serves while its shell is busy.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = self.client.session.msg(GATEWAY_ATTACH_MSG_TYPE, {"synced": False})
            probe: asyncio.Future[None] = loop.create_future()
            self._probes[msg["header"]["msg_id"]] = probe
            self.client.control_channel.send(msg)
            try:
                await asyncio.wait_for(probe, 0.5)
                break
            except asyncio.TimeoutError:
                if loop.time() > deadline:
                    raise TimeoutError(
                        f"kernel {self.kernel_id} does not answer on iopub"
                    ) from None
            finally:
                self._probes.pop(msg["header"]["msg_id"], None)
        self.iopub_synced = True
        self.client.control_channel.send(
            self.client.session.msg(GATEWAY_ATTACH_MSG_TYPE, {"synced": True})
        )

    async def execute(self, spec: RunSpec, code: str) -> asyncio.Future[dict[str, Any]]:
        """Send a run as an execute_request; return the future of its execute_reply."""
        self.last_used = time.monotonic()
        if not self.iopub_synced:
            await self.sync_iopub()
        content = {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        msg = self.client.session.msg(
            "execute_request", content, metadata={RUN_METADATA_KEY: spec.model_dump(mode="json")}
        )
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[msg["header"]["msg_id"]] = reply
        self.client.shell_channel.send(msg)
        return reply

    async def _read_iopub(self) -> None:
        while True:
            try:
                msg = await self.client.get_iopub_msg()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading iopub of kernel %s", self.kernel_id)
                await asyncio.sleep(0.1)
                continue
            self.last_iopub = time.monotonic()
            if msg["msg_type"] != KERNEL_EVENT_MSG_TYPE:
                if self._probes and msg["msg_type"] == "status":
                    probe = self._probes.get(msg["parent_header"].get("msg_id", ""))
                    if probe is not None and not probe.done():
                        probe.set_result(None)
                continue
            try:
                event = KernelEvent.model_validate(msg["content"])
            except Exception:
                log.warning("kernel %s sent a malformed event: %r", self.kernel_id, msg["content"])
                continue
            try:
                await self.on_event(self, event)
            except Exception:
                log.exception("handling an event of kernel %s", self.kernel_id)

    async def _read_shell(self) -> None:
        while True:
            try:
                msg = await self.client.get_shell_msg()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading shell replies of kernel %s", self.kernel_id)
                await asyncio.sleep(0.1)
                continue
            fut = self.replies.pop(msg["parent_header"].get("msg_id", ""), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def send_gate_reply(self, gate_id: str, decision: str, resolved_by: str) -> None:
        """Deliver a gate decision to the waiting kernel (control channel)."""
        msg = self.client.session.msg(
            "openfoal_gate_reply",
            {"gateId": gate_id, "decision": decision, "resolvedBy": resolved_by},
        )
        self.client.control_channel.send(msg)

    async def interrupt(self) -> None:
        """Interrupt by message (kernel spec ``interrupt_mode: message``)."""
        await self.km.interrupt_kernel()

    async def close(self) -> None:
        """Stop reading and close the channels."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self.client.stop_channels()

    async def reconnect(self, before: Any = None, timeout: float = 60.0) -> None:
        """After a restart: reopen the channels on the kernel's current ports.

        A kernel that dies early is restarted on new random ports; channels left on the old
        ones would never hear it again. ``before`` is the kernel manager's ``ready`` future
        from before the restart began: the ports are known once a newer one is done.
        """
        await self.close()
        self.iopub_synced = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while before is not None and loop.time() < deadline:
            ready = getattr(self.km, "ready", None)
            if ready is None or (ready is not before and ready.done()):
                break
            await asyncio.sleep(0.05)
        self.client = self._new_client()
        self.client.start_channels(stdin=False, hb=False, control=True)
        self._tasks = [
            asyncio.create_task(self._read_iopub()),
            asyncio.create_task(self._read_shell()),
        ]
